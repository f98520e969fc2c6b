"""Activation codes from the model's own forward pass: the package's oracle for every partition.

:func:`activation_codes` runs the model itself (hooks on a plain ``nn.Sequential``; op by op with ``torch.fx`` for
any other model) and reads which hidden nodes are active, so it checks :func:`spline_utils.partition2d` without
sharing its arithmetic.
"""
from __future__ import annotations

import copy

import torch
import torch.fx as fx
import torch.nn as nn

from spline_utils.reading import graph_ops as ops
from spline_utils.reading.hooks import eval_with_hooks
from spline_utils.reading.operations import NONLINEARITIES
from spline_utils.reading.sequential import effective_copy, is_chain, to_chain
from spline_utils.reading.tracer import traced


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
        return graph_activation_codes(model, x, dtype)
    chain = to_chain(model)  # same validation (supported modules, finite weights, no hooks) as the partition engine
    if chain.input_shape is not None and tuple(x.shape[1:]) != chain.input_shape:
        raise ValueError(f"the model takes samples of shape {chain.input_shape}, got x of shape {tuple(x.shape)}; "
                         f"pass x of shape (n_samples, {', '.join(map(str, chain.input_shape))})")
    network = effective_copy(model).to(dtype=dtype, device="cpu").eval()
    recorded: list[torch.Tensor] = []

    def record_input(_module, inputs):  # before the module runs: an in-place ReLU overwrites its input
        recorded.append(inputs[0].detach() > 0)

    for module in _nonlinear_modules(network):  # a private copy: the hooks go with it
        module.register_forward_pre_hook(record_input)
    with eval_with_hooks(network):
        try:
            network(x.to(dtype=dtype, device="cpu", copy=True))  # an in-place first ReLU must not touch x
        except RuntimeError as error:
            raise ValueError(f"the model could not process inputs of shape {tuple(x.shape)[1:]}: {error}") from error
    if not recorded:
        return torch.zeros((x.shape[0], 0), dtype=torch.bool)
    return torch.cat([h.flatten(1) for h in recorded], dim=1)


def graph_activation_codes(model: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Activation codes of inputs ``x`` from the model's own forward pass, run op by op (``torch.fx``).

    Each ReLU / LeakyReLU call contributes its input's entries (> 0 is active), read before the call runs (so
    in-place calls are seen correctly); each MaxPool2d contributes its ``K - 1`` comparisons, read off its input
    (:func:`spline_utils.reading.graph_ops.max_pool_comparisons`). Blocks are in the order the forward runs them, each
    flattened in C order: the node order of :attr:`spline_utils.Partition.codes`.
    """
    _, traced_module = traced(model, tuple(x.shape[1:]))  # refuses what the partition engine refuses; no re-trace
    module = copy.deepcopy(traced_module).to(dtype=dtype)
    recorder = _CodeRecorder(module)
    with torch.no_grad():
        recorder.run(x.to(dtype=dtype, device="cpu").clone())
    if not recorder.codes:
        return torch.zeros((x.shape[0], 0), dtype=torch.bool)
    return torch.cat(recorder.codes, dim=1)


class _CodeRecorder(fx.Interpreter):
    def __init__(self, module: fx.GraphModule):
        super().__init__(module)
        self.named = dict(module.named_modules())
        self.codes: list[torch.Tensor] = []

    def run_node(self, node):
        module = self.named.get(node.target) if node.op == "call_module" else None
        is_method = node.op == "call_method"
        relu = isinstance(module, NONLINEARITIES) or (
            node.target in ops.RELU_METHODS if is_method else
            node.op == "call_function" and node.target in ops.RELU_FUNCTIONS | ops.LEAKY_RELU_FUNCTIONS)
        max_pool = isinstance(module, nn.MaxPool2d) or node.op == "call_function" and node.target in \
            ops.MAX_POOL_FUNCTIONS
        if relu or max_pool:
            argument = self.env[node.args[0]] if isinstance(node.args[0], fx.Node) else node.args[0]
            if relu:
                self.codes.append((argument > 0).reshape(argument.shape[0], -1))
            else:
                self.codes.extend(ops.max_pool_comparisons(argument, *ops.max_pool_arguments(node, module)))
        return super().run_node(node)
