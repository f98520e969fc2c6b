"""A network as a chain of affine blocks and max-affine nonlinearities.

Every tool in :mod:`spline_utils` works on this chain. A supported ``torch.nn.Module`` is converted once:
consecutive affine modules (Linear, Conv2d, eval-mode BatchNorm, Flatten, AvgPool, Dropout/Identity) are grouped
into one :class:`AffineBlock`, and every ReLU / LeakyReLU becomes a :class:`Nonlinearity`. The chain is a float64
copy: converting never changes the model.

A layer's *nodes* are the entries of the nonlinearity's input (for a conv layer, every (channel, row, column)),
flattened in PyTorch's C order. Node ``k`` is active (code 1) where its pre-activation is strictly positive.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.modules.module as module_hooks
import torch.nn.utils.prune as torch_prune
from torch.nn.utils import remove_spectral_norm, remove_weight_norm
from torch.nn.utils.spectral_norm import SpectralNorm
from torch.nn.utils.weight_norm import WeightNorm

from spline_utils.reading.graph_ir import AffineNode, Graph, ReluNode
from spline_utils.reading.operations import (BATCHNORMS, NONLINEARITIES, SEQUENTIAL_AFFINE, SEQUENTIAL_SUPPORTED,
                                             batchnorm_scale_shift, leaves)

CONVOLUTION_COLUMN_BYTES = 2**22  # the unfolded input of one batch of a convolution (see :func:`convolve`)


@dataclass
class AffineBlock:
    """A run of affine modules, applied to a batch with or without their offsets (biases, BN shifts).

    ``apply(x, with_offset=False)`` is the linear part ``W x``; ``with_offset=True`` gives ``W x + b``.
    """

    modules: list = field(default_factory=list)

    def apply(self, x: torch.Tensor, with_offset: bool = True) -> torch.Tensor:
        for module in self.modules:
            x = apply_affine(module, x, with_offset)
        return x


@dataclass
class Nonlinearity:
    """``z = max(h, slope * h)`` elementwise: ReLU (slope 0) or LeakyReLU (any slope)."""

    slope: float

    def apply(self, h: torch.Tensor) -> torch.Tensor:
        return torch.where(h > 0, h, self.slope * h)


@dataclass
class Chain:
    """``blocks[0], nonlinearities[0], blocks[1], ..., nonlinearities[L-1], blocks[L]``.

    ``blocks`` has one more entry than ``nonlinearities``; the last block (possibly empty) is the classifier.
    ``input_shape`` is the per-sample input shape when it is known from the first module, else ``None``.
    """

    blocks: list
    nonlinearities: list
    input_shape: tuple | None

    @property
    def num_layers(self) -> int:
        """Number of nonlinear (hidden) layers."""
        return len(self.nonlinearities)

    def layer_shapes(self, input_shape: tuple) -> list[tuple]:
        """Per-sample shape of each hidden layer's pre-activation, then of the output.

        Raises ``ValueError`` if the chain cannot take inputs of shape ``input_shape``.
        """
        x = torch.zeros((1, *input_shape), dtype=torch.float64)
        shapes = []
        try:
            for block, nonlinearity in zip(self.blocks, self.nonlinearities):
                x = block.apply(x)
                shapes.append(tuple(x.shape[1:]))
                x = nonlinearity.apply(x)
            shapes.append(tuple(self.blocks[-1].apply(x).shape[1:]))
        except RuntimeError as error:
            raise ValueError(f"the model cannot take inputs of shape {tuple(input_shape)}: {error}") from error
        return shapes

    def to_graph(self, input_shape: tuple, shapes: list[tuple] | None = None) -> Graph:
        """The chain as the engine's one representation: a :class:`Graph` without branches.

        Block ``l`` becomes an affine node (its linear part and its offset for inputs of the layer's shape), each
        nonlinearity a ReLU node; the last block is the output node, or the last ReLU node where the last block is
        empty (a network ending in a ReLU), so that its output is read from the last layer's codes, not computed.
        ``shapes`` are :meth:`layer_shapes` for ``input_shape`` where the caller has them.
        """
        shapes = self.layer_shapes(input_shape) if shapes is None else shapes
        nodes: list = [None]
        for layer, block in enumerate(self.blocks):
            if layer == self.num_layers > 0 and not block.modules:
                break
            in_shape = tuple(input_shape) if layer == 0 else shapes[layer - 1]
            with torch.no_grad():
                offset = block.apply(torch.zeros((1, *in_shape), dtype=torch.float64))[0]
            nodes.append(AffineNode((len(nodes) - 1,), functools.partial(block.apply, with_offset=False), offset,
                                    shapes[layer], f"block {layer}"))
            if layer < self.num_layers:
                nodes.append(ReluNode(len(nodes) - 1, self.nonlinearities[layer].slope, shapes[layer],
                                      f"nonlinearity {layer}"))
        return Graph(nodes, len(nodes) - 1, tuple(input_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output, computed through the chain."""
        for block, nonlinearity in zip(self.blocks, self.nonlinearities):
            x = nonlinearity.apply(block.apply(x))
        return self.blocks[-1].apply(x)

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every hidden layer's pre-activation at inputs ``x``, in float64.

        Parameters
        ----------
        x : torch.Tensor, shape (n_samples, *input_shape)

        Returns
        -------
        list of torch.Tensor, entry ``l`` of shape (n_samples, *layer_shape_l)
            The input of nonlinearity ``l``; node ``k`` of the layer is active where its flattened entry is > 0.
        """
        outputs, x = [], torch.as_tensor(x).to(torch.float64)
        with torch.no_grad():
            for block, nonlinearity in zip(self.blocks, self.nonlinearities):
                outputs.append(block.apply(x))
                x = nonlinearity.apply(outputs[-1])
        return outputs


def to_chain(model: nn.Module) -> Chain:
    """Convert ``model`` into a float64 :class:`Chain`.

    Parameters
    ----------
    model : torch.nn.Module
        A supported module or an ``nn.Sequential`` (possibly nested) of supported modules.

    Returns
    -------
    Chain

    Raises
    ------
    TypeError
        If a module is not supported (the message names it).
    ValueError
        If a parameter or BatchNorm statistic is not finite or has no values (``meta`` device), a BatchNorm's
        ``running_var + eps`` is not positive, a LeakyReLU slope is not finite, or a Conv2d uses non-zero padding
        modes.
    """
    check_no_hooks(model)
    modules = leaves(model)
    blocks, nonlinearities = [AffineBlock()], []
    for name, module in modules:
        if isinstance(module, NONLINEARITIES) and not _own_forward(module):
            slope = float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
            if not math.isfinite(slope):
                raise ValueError(f"LeakyReLU {name or 'model'} has negative_slope={slope}; the slope must be a finite "
                                 "number")
            nonlinearities.append(Nonlinearity(slope))
            blocks.append(AffineBlock())
        elif isinstance(module, SEQUENTIAL_AFFINE + NONLINEARITIES) and _own_forward(module):
            raise TypeError(f"module {name} ({type(module).__name__}) overrides forward; a chain cannot represent it")
        elif isinstance(module, SEQUENTIAL_AFFINE):
            check_affine(name, module)
            if not isinstance(module, (nn.Identity, nn.Dropout)):
                blocks[-1].modules.append(_float64_copy(module))
        else:
            raise TypeError(
                f"unsupported module {name or 'model'} ({type(module).__name__}); spline_utils handles {SEQUENTIAL_SUPPORTED}. "
                "Rewrite the model as an nn.Sequential of those, or partition a supported sub-network.")
    return Chain(blocks, nonlinearities, _input_shape(modules))


def is_chain(model: nn.Module) -> bool:
    """Whether :func:`to_chain` represents ``model`` exactly: plain (nested) ``nn.Sequential`` of supported modules,
    each used once.

    Models for which this is ``False`` go through the ``torch.fx`` graph engine (:mod:`spline_utils.reading.tracer`).
    """
    try:
        modules = leaves(model)
    except TypeError:
        return False
    return all(isinstance(module, SEQUENTIAL_AFFINE + NONLINEARITIES) and not _own_forward(module)
               for _, module in modules)


def _own_forward(module: nn.Module) -> bool:
    """A subclass of a supported module that overrides its ``forward``."""
    base = next(cls for cls in SEQUENTIAL_AFFINE + NONLINEARITIES if isinstance(module, cls))
    return type(module).forward is not base.forward


def check_affine(name: str, module: nn.Module) -> None:
    """Refuse an affine module the engine cannot represent: non-finite values, a non-zero padding mode, a BatchNorm
    without running statistics (``ValueError`` naming the module)."""
    for tensor_name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.is_meta:
            raise ValueError(f"module {name} ({type(module).__name__}) is on the 'meta' device: '{tensor_name}' has a "
                             "shape but no values. Materialize the model first (model.to_empty(device='cpu'), then "
                             "load its weights).")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"module {name} ({type(module).__name__}) has non-finite values in '{tensor_name}'; "
                             "fix or re-initialize the weights before computing its partition.")
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        raise ValueError(f"Conv2d {name} uses padding_mode='{module.padding_mode}'; only 'zeros' is supported.")
    if isinstance(module, BATCHNORMS) and not module.track_running_stats:
        raise ValueError(f"BatchNorm {name} has no running statistics (track_running_stats=False), so it is not "
                         "affine at evaluation time; use track_running_stats=True.")
    if isinstance(module, BATCHNORMS):
        scale, shift = batchnorm_scale_shift(module)
        if not (torch.isfinite(scale).all() and torch.isfinite(shift).all()):
            raise ValueError(f"BatchNorm {name} has running_var + eps <= 0 (or so close to 0 that 1/sqrt overflows) in "
                             f"some channel, so its eval-mode scale is not a number; a variance cannot be negative. "
                             "Re-estimate the statistics (reset_running_stats() and a pass over data in train mode).")


def effective_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose weights are the ones its forward pass uses, as plain parameters.

    Weights computed by forward pre-hooks are computed and made plain in the copy (``model`` keeps its hooks): a
    :mod:`torch.nn.utils.prune` mask (``weight = weight_orig * weight_mask``), and the hook-based
    ``torch.nn.utils.weight_norm`` and ``spectral_norm`` (``weight`` from ``weight_g``/``weight_v``, or
    ``weight_orig`` over its spectral norm as the model's eval forward uses it: no power iteration). Their stored
    ``weight`` attribute is stale after an optimizer step, so it is never read. A plain ``copy.deepcopy`` fails on such
    a model once it has run a forward pass with gradients, because its ``weight`` is then a computed (non-leaf) tensor.
    """
    memo = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    copied = copy.deepcopy(model, memo)
    for module in copied.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
            elif isinstance(hook, WeightNorm):
                with torch.no_grad():
                    remove_weight_norm(module, hook.name)
            elif isinstance(hook, SpectralNorm):
                with torch.no_grad():
                    remove_spectral_norm(module, hook.name)
    return copied


def check_no_hooks(model: nn.Module) -> None:
    """Refuse a model whose forward runs hooks the engine cannot see (``TypeError`` naming the module and hook).

    The engine reads the modules' weights; it does not run the forward, so a forward hook or pre-hook that changes
    a module's input or output would be silently ignored. The weight-computing pre-hooks that
    :func:`effective_copy` folds into plain weights (pruning masks, weight and spectral norm) are read correctly.
    """
    if global_forward_hooks():
        raise TypeError("global forward hooks are registered (torch.nn.modules.module.register_module_forward_hook "
                        "or ..._pre_hook); the exact engine cannot see what they do to each module's output. Remove "
                        "them (handle.remove()) before computing partitions or codes.")
    for name, module in model.named_modules():
        folded = (torch_prune.BasePruningMethod, WeightNorm, SpectralNorm)
        hooks = [hook for hook in module._forward_pre_hooks.values() if not isinstance(hook, folded)]
        hooks += list(module._forward_hooks.values())
        if hooks:
            hook_name = getattr(hooks[0], "__qualname__", type(hooks[0]).__name__)
            raise TypeError(f"module {name or 'model'} ({type(module).__name__}) has a forward hook or pre-hook "
                            f"({hook_name}); the exact engine reads weights without running the forward, so it cannot "
                            "honour what the hook does to the module's input or output. Remove the hook "
                            "(handle.remove()) or build its effect into the model.")


def global_forward_hooks() -> bool:
    """Whether any global (every-module) forward hook or pre-hook is registered."""
    return bool(module_hooks._global_forward_hooks or module_hooks._global_forward_pre_hooks)


def _float64_copy(module: nn.Module) -> nn.Module:
    """A float64 CPU copy of a leaf module in eval mode, with the weights its forward pass uses, sharing no tensor.

    A module without pre-hooks and tensor attributes (the usual case) gets new parameter and buffer tables only: a deep
    copy costs about 0.3 ms a module, a fifth of a small MLP's whole partition.
    """
    if module._forward_pre_hooks or any(isinstance(value, torch.Tensor) for value in vars(module).values()):
        copied = effective_copy(module).to(dtype=torch.float64, device="cpu")
        copied.eval()
        for parameter in copied.parameters():
            parameter.requires_grad_(False)
        return copied
    copied = copy.copy(module)
    copied.__dict__["_parameters"] = {
        name: None if value is None else
        nn.Parameter(value.detach().to("cpu", torch.float64, copy=True), requires_grad=False)
        for name, value in module._parameters.items()}
    copied.__dict__["_buffers"] = {
        name: None if value is None else
        value.detach().to("cpu", torch.float64 if value.is_floating_point() else value.dtype, copy=True)
        for name, value in module._buffers.items()}
    copied.training = False
    return copied


def _input_shape(modules) -> tuple | None:
    for _, module in modules:
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if isinstance(module, (nn.Identity, nn.Dropout)):
            continue
        return None
    return None


def convolve(module: nn.Conv2d, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``module``'s convolution of the batch ``x`` (with ``bias`` or none), a batch of samples at a time.

    torch's float64 convolution on the CPU unfolds the whole batch before its products: 11-18 times the input's
    bytes (a 64 MB batch of the MaxPool CNN's second-conv inputs took 0.74 GB more). Batches whose unfolded input
    takes at most :data:`CONVOLUTION_COLUMN_BYTES` stay in cache and ran 2.0-4.4 times faster on the book's
    convolutions. Each sample's products are the same in any batch, so the result is identical bit for bit.
    """
    def batch(part: torch.Tensor) -> torch.Tensor:
        return F.conv2d(part, module.weight, bias, module.stride, module.padding, module.dilation, module.groups)

    if len(x) <= 1:
        return batch(x)
    first = batch(x[:1])
    kernel_height, kernel_width = module.kernel_size
    column_bytes = module.in_channels * kernel_height * kernel_width * first[0, 0].numel() * x.element_size()
    step = max(1, CONVOLUTION_COLUMN_BYTES // column_bytes)
    out = torch.empty((len(x), *first.shape[1:]), dtype=first.dtype)
    out[:1] = first
    for start in range(1, len(x), step):
        out[start:start + step] = batch(x[start:start + step])
    return out


def apply_affine(module: nn.Module, x: torch.Tensor, with_offset: bool) -> torch.Tensor:
    """One affine module on a batch ``x``: ``W x + b`` (``with_offset``) or its linear part ``W x``."""
    if isinstance(module, nn.Linear):
        return F.linear(x, module.weight, module.bias if with_offset else None)
    if isinstance(module, nn.Conv2d):
        return convolve(module, x, module.bias if with_offset else None)
    if isinstance(module, BATCHNORMS):
        scale, shift = batchnorm_scale_shift(module)
        view = (1, -1) + (1,) * (x.dim() - 2)
        y = x * scale.view(view)
        return y + shift.view(view) if with_offset else y
    if isinstance(module, nn.Flatten):
        return module(x)
    if isinstance(module, nn.AvgPool2d):
        return module(x)
    raise TypeError(f"unsupported affine module {type(module).__name__}")
