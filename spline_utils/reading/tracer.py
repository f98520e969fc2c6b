"""A traced network as a graph of affine maps and ReLU nodes: the input of the graph partition engine.

:func:`trace_graph` traces a model's forward with ``torch.fx`` (so reused modules, custom ``forward`` methods,
functional calls and residual connections are all seen as they run) and turns each operation into

* an :class:`AffineNode`: ``y = linear(x_1, ..., x_m) + offset`` (Linear, Conv2d, eval BatchNorm, pooling by
  averages, residual addition, concatenation, reshapes, ...; see :mod:`spline_utils.reading.graph_ops`), or
* a :class:`ReluNode`: ``y = max(x, slope * x)``.

A MaxPool2d with ``K`` window elements becomes a cascade ``m_k = m_{k-1} + relu(mask_k * (x_k - m_{k-1}))`` over
its valid window elements ``x_0 .. x_{K-1}`` (row-major kernel order, padding skipped): ``K - 1`` ReLU nodes, one
per comparison, each of the pooling's output shape. The ReLU nodes, in the order the forward runs them, are the
hidden layers of the partition and the blocks of its codes.

The graph is checked against the model's own forward pass on random inputs before use: a trace that does not
reproduce it (an in-place operation on a tensor used again, a batch-mixing reshape) is refused.
"""
from __future__ import annotations

import operator
import threading
import weakref
from typing import Callable

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from spline_utils.reading import graph_ops as ops
from spline_utils.reading.graph_ir import AffineNode, Graph, ReluNode
from spline_utils.reading.operations import NONLINEARITIES, TRACED_AFFINE, TRACED_IDENTITY, TRACED_LINEAR, TRACED_RESHAPE
from spline_utils.reading.sequential import apply_affine, check_affine, check_no_hooks, effective_copy


class _Recorder(fx.Interpreter):
    """Runs a traced module and keeps a copy of every node's value (copied before any in-place change)."""

    def run_node(self, node):
        result = super().run_node(node)
        self.values[node] = result.clone() if isinstance(result, torch.Tensor) else result
        return result


def float64_copy(model: nn.Module) -> nn.Module:
    """A float64, CPU, eval-mode copy of ``model`` without gradients."""
    network = effective_copy(model).to(dtype=torch.float64, device="cpu").eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


class _ThreadLocalTracer(fx.Tracer):
    """A tracer that leaves other threads' modules alone.

    While ``torch.fx`` traces, it replaces ``nn.Module.__call__`` and ``__getattr__`` process-wide; a plain
    ``model(x)`` in another thread would then be routed into this trace and fail. Calls from other threads run the
    module as usual, and attributes read from other threads are the plain attributes.
    """

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def call_module(self, module, forward, args, kwargs):
        if threading.get_ident() != self.thread:
            return forward(*args, **kwargs)
        return super().call_module(module, forward, args, kwargs)

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if threading.get_ident() != self.thread:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)


_TRACING = threading.Lock()  # one trace at a time: nested process-wide patches would be undone out of order


def trace_module(network: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace`` that is safe beside other threads, with an error that says what to do when the
    forward cannot be traced."""
    try:
        with _TRACING:
            tracer = _ThreadLocalTracer()
            graph = tracer.trace(network)
        return fx.GraphModule(tracer.root, graph, type(network).__name__)
    except Exception as error:  # fx raises many types (TraceError, TypeError, NotImplementedError, ...)
        raise TypeError(
            f"torch.fx cannot trace {type(network).__name__}.forward ({type(error).__name__}: {error}); the exact "
            "engine needs a forward without data-dependent control flow, built from: "
            f"{ops.SUPPORTED_OPERATIONS}") from error


_TRACES: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()
_TRACES_LOCK = threading.Lock()


def traced(model: nn.Module, input_shape: tuple) -> tuple[Graph, fx.GraphModule]:
    """The model's :class:`Graph` and its traced float64 ``fx.GraphModule``, traced once per model and weights.

    A model is traced again only when a module, parameter or buffer was replaced or changed in place (an optimizer
    step), or for another input shape. Safe to call from several threads.
    """
    key = (tuple(input_shape), _weights_version(model))
    with _TRACES_LOCK:
        entry = _TRACES.get(model)
    if entry is not None and entry[0] == key:
        return entry[1], entry[2]
    graph, module = _trace(model, tuple(input_shape))
    with _TRACES_LOCK:
        _TRACES[model] = (key, graph, module)
    return graph, module


def _weights_version(model: nn.Module) -> tuple:
    """Changes whenever a module, parameter or buffer of ``model`` is replaced or its values change (hashes of the
    values themselves: an in-place change through ``.data`` leaves no version counter behind)."""
    tensors = [tensor.detach() for tensor in [*model.parameters(), *model.buffers()]]
    return (tuple(id(module) for module in model.modules()),
            tuple((tensor.dtype, tuple(tensor.shape), hash(tensor.cpu().contiguous().numpy().tobytes()))
                  for tensor in tensors if not tensor.is_meta))


def trace_graph(model: nn.Module, input_shape: tuple) -> Graph:
    """The model's :class:`Graph` for inputs of per-sample ``input_shape`` (:func:`traced`; the model is not
    modified)."""
    return traced(model, input_shape)[0]


def _trace(model: nn.Module, input_shape: tuple) -> tuple[Graph, fx.GraphModule]:
    """Trace ``model`` (a float64 copy; the model is not modified) for inputs of per-sample ``input_shape``.

    Raises
    ------
    TypeError
        The forward cannot be traced, uses an unsupported operation (named), or the trace does not reproduce it.
    ValueError
        The model cannot take inputs of ``input_shape``, or has non-finite weights.
    """
    check_no_hooks(model)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not tensor.is_meta and not torch.isfinite(tensor).all():
            raise ValueError(f"the model has non-finite values in '{name}'; fix or re-initialize the weights before "
                             "computing its partition or codes.")
    network = float64_copy(model)
    module = trace_module(network)
    # a prime batch larger than every per-sample size: an operation that mixes samples cannot pass for a per-sample one
    batch = next(n for n in range(max((3, *input_shape)) + 1, 10**6) if all(n % k for k in range(2, n)))
    sample = torch.randn((batch, *input_shape), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    recorder = _Recorder(module)
    recorder.values = {}
    try:
        recorder.run(sample.clone())
        with torch.no_grad():
            expected = network(sample.clone())
    except Exception as error:
        raise ValueError(f"the model cannot take inputs of shape {tuple(input_shape)}: {error}") from error
    graph = _Builder(module, recorder.values, tuple(input_shape), batch).build()
    if not isinstance(expected, torch.Tensor) or expected.shape != graph.forward(sample)[0].shape or \
            not torch.allclose(graph.forward(sample)[0], expected, rtol=1e-9, atol=1e-9):
        raise TypeError(f"the traced graph of {type(model).__name__} does not reproduce its forward pass (an "
                        "in-place operation on a tensor that is used again, or a reshape across the batch?); "
                        "the engine refuses what it cannot represent exactly")
    return graph, module


class _Builder:
    """Turns the fx nodes of a traced module into :class:`AffineNode` / :class:`ReluNode` entries."""

    def __init__(self, module: fx.GraphModule, values: dict, input_shape: tuple, batch: int):
        self.module, self.values, self.input_shape, self.batch = module, values, input_shape, batch
        self.modules = dict(module.named_modules())
        self.index: dict = {}  # traced tensor fx node -> graph node index
        self.traced: set = set()  # fx nodes that depend on the input
        self.nodes: list = [None]
        self.position = {node: index for index, node in enumerate(module.graph.nodes)}

    def build(self) -> Graph:
        placeholders = [node for node in self.module.graph.nodes if node.op == "placeholder"]
        if len(placeholders) != 1:
            raise TypeError(f"the model's forward takes {len(placeholders)} inputs; the engine needs exactly one")
        output = None
        for node in self.module.graph.nodes:
            if node.op == "placeholder":
                self.index[node], self.traced = 0, {node}
            elif node.op == "output":
                output = node.args[0]
            elif any(arg in self.traced for arg in node.all_input_nodes):
                self.traced.add(node)
                if isinstance(self.values[node], torch.Tensor):
                    self._check_batch(node)
                    self.index[node] = self._add(node)
        if output not in self.index:
            raise TypeError("the model's forward must return one tensor that depends on its input")
        return Graph(self.nodes, self.index[output], self.input_shape)

    def _check_batch(self, node) -> None:
        if self.values[node].dim() == 0 or self.values[node].shape[0] != self.batch:
            raise TypeError(f"{ops.operation_name(node)} does not keep the batch dimension first; the engine "
                            "needs every operation to act on each sample separately")

    def _shape(self, node) -> tuple:
        return tuple(self.values[node].shape[1:])

    def _append(self, node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def _affine(self, node, inputs, linear, offset=None) -> int:
        return self._append(AffineNode(tuple(self.index[i] for i in inputs), linear, offset, self._shape(node),
                                       node.name))

    def _add(self, node) -> int:
        module = self.modules.get(node.target) if node.op == "call_module" else None
        inputs = [arg for arg in node.all_input_nodes if isinstance(arg, fx.Node) and arg in self.traced]
        reshape = isinstance(module, TRACED_RESHAPE) or (
            node.target in ops.RESHAPE_METHODS if node.op == "call_method" else node.target in ops.RESHAPE_FUNCTIONS)
        if reshape and inputs[0] is node.args[0]:
            return self._add_reshape(node, inputs[:1])
        for arg in inputs:
            if arg not in self.index:
                raise TypeError(f"{ops.operation_name(node)} uses the shape of a tensor as a number; the engine "
                                "allows shapes only in reshapes (view, reshape, flatten)")
        if node.op == "call_module":
            return self._add_module(node, module, inputs)
        target, is_method = node.target, node.op == "call_method"
        if is_method and target in ops.IN_PLACE_METHODS:
            self._check_in_place(node, node.args[0])
        if (target in ops.RELU_METHODS) if is_method else (target in ops.RELU_FUNCTIONS | ops.LEAKY_RELU_FUNCTIONS):
            return self._add_relu(node, None, inputs)
        if not is_method and target in ops.MAX_POOL_FUNCTIONS:
            return self._add_max_pool(node, None, inputs)
        if is_method and target in ops.IDENTITY_METHODS:
            return self._affine(node, inputs, lambda x: x)
        if target is torch.nn.functional.dropout:
            training = node.args[2] if len(node.args) > 2 else node.kwargs.get("training", True)
            if training:
                raise TypeError(f"{ops.operation_name(node)} with training=True is random; pass training=False "
                                "(e.g. training=self.training with the model in eval mode)")
            return self._affine(node, inputs, lambda x: x)
        if (target in ops.LINEAR_METHODS) if is_method else (target in ops.LINEAR_FUNCTIONS):
            return self._add_call(node, inputs, constants_allowed=False)
        if (target in ops.SCALING_METHODS) if is_method else (target in ops.SCALING_FUNCTIONS):
            divides = target in ("div", "div_") or target in (torch.div, operator.truediv)
            operands = [arg for arg in list(node.args) + list(node.kwargs.values())
                        if isinstance(arg, fx.Node) and arg in self.traced]
            if len(operands) != 1 or divides and node.args[0] not in self.traced:
                raise TypeError(f"{ops.operation_name(node)} multiplies or divides by a tensor that depends on the "
                                "input, which is not affine")
            if node.kwargs.get("rounding_mode") is not None:
                raise TypeError(f"{ops.operation_name(node)} with rounding_mode is not affine")
            return self._add_call(node, inputs, constants_allowed=True)
        if (target in ops.ADDITIVE_METHODS) if is_method else (target in ops.ADDITIVE_FUNCTIONS):
            return self._add_additive(node, inputs)
        raise TypeError(f"unsupported operation {ops.operation_name(node)} in the model's forward; the exact "
                        f"engine handles {ops.SUPPORTED_OPERATIONS}")

    def _add_module(self, node, module, inputs) -> int:
        name = node.target
        if isinstance(module, TRACED_AFFINE):
            check_affine(name, module)
            offset = apply_affine(module, torch.zeros((1, *self._shape(inputs[0])), dtype=torch.float64), True)[0]
            return self._affine(node, inputs, lambda x: apply_affine(module, x, False), offset)
        if isinstance(module, TRACED_LINEAR):
            return self._affine(node, inputs, module)
        if isinstance(module, TRACED_IDENTITY):
            return self._affine(node, inputs, lambda x: x)
        if isinstance(module, NONLINEARITIES):
            return self._add_relu(node, module, inputs)
        if isinstance(module, nn.MaxPool2d):
            return self._add_max_pool(node, module, inputs)
        raise TypeError(f"unsupported module {name} ({type(module).__name__}); the exact engine handles "
                        f"{ops.SUPPORTED_OPERATIONS}")

    def _add_reshape(self, node, inputs) -> int:
        shape = self._shape(node)
        return self._affine(node, inputs, lambda x: x.reshape(x.shape[0], *shape))

    def _add_call(self, node, inputs, constants_allowed: bool) -> int:
        """Calls whose result is linear in the traced arguments (the other arguments are constants)."""
        if not constants_allowed:
            for arg in node.all_input_nodes:
                if arg not in self.traced and isinstance(self.values.get(arg), torch.Tensor) \
                        and node.target is not operator.getitem:
                    raise TypeError(f"{ops.operation_name(node)} of a constant tensor and the input is not supported")
        return self._affine(node, inputs, self._call_with(node, inputs))

    def _add_additive(self, node, inputs) -> int:
        """``a + b`` / ``a - b``: the linear part sets constant operands to zero; their sum is the offset."""
        linear = self._call_with(node, inputs, zero_constants=True)
        zeros = [torch.zeros((1, *self._shape(arg)), dtype=torch.float64) for arg in inputs]
        offset = self._call_with(node, inputs)(*zeros)[0]
        has_constant = len(inputs) < 2 or any(arg not in self.traced for arg in node.all_input_nodes)
        return self._affine(node, inputs, linear, offset if has_constant else None)

    def _call_with(self, node, inputs, zero_constants: bool = False) -> Callable:
        """``f(*tensors)``: the node's call with traced arguments replaced by ``tensors``."""
        values, target = self.values, node.target

        def argument(arg, env):
            if arg in env:
                return env[arg]
            value = values[arg]
            return torch.zeros_like(value) if zero_constants and isinstance(value, torch.Tensor) else value

        def call(*tensors):
            env = dict(zip(inputs, tensors))
            args = fx.node.map_arg(node.args, lambda arg: argument(arg, env))
            kwargs = fx.node.map_arg(node.kwargs, lambda arg: argument(arg, env))
            if zero_constants:
                args = tuple(0 if isinstance(a, (int, float)) and i < 2 else a for i, a in enumerate(args))
            if node.op == "call_method":
                return getattr(args[0], target)(*args[1:], **kwargs)
            return target(*args, **kwargs)

        return call

    def _add_relu(self, node, module, inputs) -> int:
        slope = ops.leaky_slope(node, module)
        if not np.isfinite(slope):
            raise ValueError(f"{ops.operation_name(node)} has a non-finite negative slope {slope}")
        if ops.is_in_place(node, module):
            self._check_in_place(node, inputs[0])
        return self._append(ReluNode(self.index[inputs[0]], slope, self._shape(node), node.name))

    def _check_in_place(self, node, argument) -> None:
        """An in-place operation is represented only if nothing reads the tensor it overwrites afterwards."""
        chain = [argument]
        while self._is_view(chain[-1]):
            chain.append(chain[-1].all_input_nodes[0])
        for tensor in chain:
            for user in tensor.users:
                later = user.op == "output" or self.position[user] > self.position[node]
                reads = user.op == "output" or isinstance(self.values.get(user), torch.Tensor)
                if user is not node and user not in chain and later and reads:
                    raise TypeError(f"in-place {ops.operation_name(node)} overwrites a tensor that "
                                    f"{ops.operation_name(user) if user.op != 'output' else 'the output'} reads "
                                    "afterwards; the engine cannot represent that: use inplace=False")

    def _is_view(self, node) -> bool:
        if node.op not in ("call_method", "call_function", "call_module"):
            return False
        if node.op == "call_module":
            return isinstance(self.modules.get(node.target), TRACED_RESHAPE + TRACED_IDENTITY)
        return node.target in ops.RESHAPE_METHODS | ops.RESHAPE_FUNCTIONS | {"contiguous", "detach"} or \
            node.target is operator.getitem

    def _add_max_pool(self, node, module, inputs) -> int:
        kernel, stride, padding, dilation = ops.max_pool_arguments(node, module)
        shape = self._shape(inputs[0])
        if len(shape) != 3:
            raise TypeError(f"{ops.operation_name(node)} needs (batch, channels, height, width) inputs")
        index, valid, out_shape = ops.max_pool_windows(shape, kernel, stride, padding, dilation)
        source = self.index[inputs[0]]
        gathers = [_gather(torch.as_tensor(i), out_shape) for i in index]
        masks = [torch.as_tensor(v, dtype=torch.float64).reshape(out_shape) for v in valid]
        running = self._append(AffineNode((source,), gathers[0], None, out_shape, f"{node.name}.window0"))
        for k in range(1, len(gathers)):
            difference = self._append(AffineNode(
                (source, running), lambda x, m, g=gathers[k], mask=masks[k]: ops.pooled_difference(g(x), m) * mask,
                None, out_shape, f"{node.name}.difference{k}"))
            beats = self._append(ReluNode(difference, 0.0, out_shape, f"{node.name}.comparison{k}"))
            running = self._append(AffineNode((running, beats), lambda m, r: m + r, None, out_shape,
                                              f"{node.name}.max{k}"))
        return running


def _gather(index: torch.Tensor, shape: tuple) -> Callable:
    return lambda x: x.reshape(x.shape[0], -1)[:, index].reshape(x.shape[0], *shape)
