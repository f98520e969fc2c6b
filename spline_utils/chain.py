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
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .hooks import eval_with_hooks
from .modules import AFFINE_LAYERS, BATCHNORMS, NONLINEARITIES, PARAMETER_FREE_AFFINE, batchnorm_scale_shift, leaves

AFFINE_MODULES = (*AFFINE_LAYERS, *BATCHNORMS, *PARAMETER_FREE_AFFINE)
SUPPORTED = ("Linear, Conv2d, BatchNorm1d/2d (eval statistics), Flatten, AvgPool2d, Identity, Dropout, "
             "ReLU, LeakyReLU, nested in nn.Sequential")


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
        If a parameter or BatchNorm statistic is not finite, or a Conv2d uses non-zero padding modes.
    """
    modules = leaves(model)
    blocks, nonlinearities = [AffineBlock()], []
    for name, module in modules:
        if isinstance(module, NONLINEARITIES) and not _own_forward(module):
            slope = float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
            nonlinearities.append(Nonlinearity(slope))
            blocks.append(AffineBlock())
        elif isinstance(module, AFFINE_MODULES + NONLINEARITIES) and _own_forward(module):
            raise TypeError(f"module {name} ({type(module).__name__}) overrides forward; a chain cannot represent it")
        elif isinstance(module, AFFINE_MODULES):
            check_affine(name, module)
            if not isinstance(module, (nn.Identity, nn.Dropout)):
                blocks[-1].modules.append(_float64_copy(module))
        else:
            raise TypeError(
                f"unsupported module {name or 'model'} ({type(module).__name__}); spline_utils handles {SUPPORTED}. "
                "Rewrite the model as an nn.Sequential of those, or partition a supported sub-network.")
    return Chain(blocks, nonlinearities, _input_shape(modules))


def is_chain(model: nn.Module) -> bool:
    """Whether :func:`to_chain` represents ``model`` exactly: plain (nested) ``nn.Sequential`` of supported modules,
    each used once.

    Models for which this is ``False`` go through the ``torch.fx`` graph engine (:mod:`spline_utils.graph`).
    """
    try:
        modules = leaves(model)
    except TypeError:
        return False
    return all(isinstance(module, AFFINE_MODULES + NONLINEARITIES) and not _own_forward(module)
               for _, module in modules)


def _own_forward(module: nn.Module) -> bool:
    """A subclass of a supported module that overrides its ``forward``."""
    base = next(cls for cls in AFFINE_MODULES + NONLINEARITIES if isinstance(module, cls))
    return type(module).forward is not base.forward


def check_affine(name: str, module: nn.Module) -> None:
    """Refuse an affine module the engine cannot represent: non-finite values, a non-zero padding mode, a BatchNorm
    without running statistics (``ValueError`` naming the module)."""
    for tensor_name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"module {name} ({type(module).__name__}) has non-finite values in '{tensor_name}'; "
                             "fix or re-initialize the weights before computing its partition.")
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        raise ValueError(f"Conv2d {name} uses padding_mode='{module.padding_mode}'; only 'zeros' is supported.")
    if isinstance(module, BATCHNORMS) and not module.track_running_stats:
        raise ValueError(f"BatchNorm {name} has no running statistics (track_running_stats=False), so it is not "
                         "affine at evaluation time; use track_running_stats=True.")


def _float64_copy(module: nn.Module) -> nn.Module:
    copied = copy.deepcopy(module).to(dtype=torch.float64, device="cpu")
    copied.eval()
    for parameter in copied.parameters():
        parameter.requires_grad_(False)
    return copied


def _input_shape(modules) -> tuple | None:
    for _, module in modules:
        if isinstance(module, nn.Linear):
            return (module.in_features,)
        if isinstance(module, (nn.Identity, nn.Dropout)):
            continue
        return None
    return None


def apply_affine(module: nn.Module, x: torch.Tensor, with_offset: bool) -> torch.Tensor:
    """One affine module on a batch ``x``: ``W x + b`` (``with_offset``) or its linear part ``W x``."""
    if isinstance(module, nn.Linear):
        return F.linear(x, module.weight, module.bias if with_offset else None)
    if isinstance(module, nn.Conv2d):
        return F.conv2d(x, module.weight, module.bias if with_offset else None, module.stride, module.padding,
                        module.dilation, module.groups)
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


def _nonlinear_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, NONLINEARITIES)]


def activation_codes(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Activation codes of inputs ``x``: which hidden nodes are active, in layer order.

    Computed from the model's own forward pass in eval mode and ``dtype`` (hooks that read the input of each
    ReLU/LeakyReLU module before it runs; for models that are not plain ``nn.Sequential`` chains, the forward run
    operation by operation with ``torch.fx``), so it is an independent check of :func:`spline_utils.partition2d`.

    Parameters
    ----------
    model : torch.nn.Module
        The network; it is not modified (a copy runs in eval mode).
    x : torch.Tensor, shape (n_samples, *input_shape)
    dtype : torch.dtype, default float64

    Returns
    -------
    torch.Tensor of bool, shape (n_samples, n_nodes)
        Entry ``[i, k]`` is ``True`` where hidden node ``k``'s pre-activation at ``x[i]`` is > 0. Nodes are ordered
        layer by layer, each layer's nodes flattened in C order, the same order as ``partition2d(...).codes``.
        A layer is each call of a ReLU/LeakyReLU, in the order the forward runs them (a module called twice gives
        two layers). A MaxPool2d with ``K`` window elements gives ``K - 1`` layers where it runs, each of its
        output's shape: layer ``k`` (1..K-1) is active where the ``k``-th valid window element (row-major kernel
        order, padding skipped) is strictly greater than all earlier ones (inactive where the window has fewer).
    """
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() < 2:
        raise ValueError(f"x must have shape (n_samples, *input_shape); got shape {tuple(x.shape)}. "
                         "Add a batch dimension with x[None].")
    if not is_chain(model):
        from .graph_partition import graph_activation_codes  # here: graph_partition imports this module
        return graph_activation_codes(model, x, dtype)
    to_chain(model)  # same validation (supported modules, finite weights) as the partition engine
    network = copy.deepcopy(model).to(dtype=dtype, device="cpu").eval()
    recorded: list[torch.Tensor] = []

    def record_input(_module, inputs):  # before the module runs: an in-place ReLU overwrites its input
        recorded.append(inputs[0].detach() > 0)

    for module in _nonlinear_modules(network):  # a private copy: the hooks go with it
        module.register_forward_pre_hook(record_input)
    with eval_with_hooks(network):
        try:
            network(x.to(dtype=dtype, device="cpu"))
        except RuntimeError as error:
            raise ValueError(f"the model could not process inputs of shape {tuple(x.shape)[1:]}: {error}") from error
    if not recorded:
        return torch.zeros((x.shape[0], 0), dtype=torch.bool)
    return torch.cat([h.reshape(h.shape[0], -1) for h in recorded], dim=1)
