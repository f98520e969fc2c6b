"""The exact partition of a 2-D domain or slice for any traced ReLU graph (residual blocks, MaxPool, ...).

The ReLU nodes of a :class:`spline_utils.graph_ir.Graph` are cut in forward (topological) order: cutting ReLU node
``l`` refines the partition after nodes ``0 .. l-1``, on each of whose regions every tensor computed so far is
affine in the 2-D coordinates. Each tensor's per-region maps (rows offset, d/da, d/db) are stored once, on the
partition *level* at which it became affine (the number of ReLU nodes cut before its last ReLU ancestor), and
read on finer levels through the regions' ancestors: a skip connection from the input costs one map, not one per
region. A tensor's maps are dropped after its last reader.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from . import graph_ops as ops
from .cutting import cut_by_layer
from .graph import float64_copy, trace_graph, trace_module
from .graph_ir import AffineNode, Graph
from .partition import LayerPartition, Partition, check_memory
from .polygons import Polygons
from .tolerance import Frame
from .propagate import CHUNK_BYTES


class GraphPartition(Partition):
    """A :class:`spline_utils.Partition` of a traced graph; ``layers[l]`` is the cut by ReLU node ``l``.

    ``graph`` is the traced network. The node order of ``codes`` is that of :func:`graph_activation_codes`.
    """

    def __init__(self, graph: Graph, bounds, plane, domain: Polygons, layers: list[LayerPartition],
                 output_maps: np.ndarray, output_level: int):
        super().__init__(None, bounds, plane, domain, layers, None)
        self.graph = graph
        self._level_output_maps, self._output_level = output_maps, output_level

    def output_maps(self) -> np.ndarray:
        """Output affine maps packed as ``(num_regions, 3, n_outputs)``: rows offset, d/da, d/db."""
        if self._output_maps is None:
            index = ancestors(self.layers, len(self.layers) - 1, self._output_level)
            maps = self._level_output_maps
            self._output_maps = maps[index].reshape(len(index), 3, -1)
        return self._output_maps


def ancestors(layers: list[LayerPartition], level: int, ancestor_level: int) -> np.ndarray:
    """For every region of partition level ``level``, the index of the region of ``ancestor_level`` holding it.

    Level ``-1`` is the undivided domain (one region).
    """
    if level < 0:
        return np.zeros(1, dtype=np.int64)
    index = np.arange(layers[level].num_regions)
    for current in range(level, ancestor_level, -1):
        index = layers[current].parent[index]
    return index


def graph_partition2d(model: nn.Module, bounds: tuple, plane, input_state: np.ndarray, domain: Polygons,
                      frame: Frame, max_regions: int, max_bytes: int) -> GraphPartition:
    """The engine behind :func:`spline_utils.partition2d` for models that are not plain ``nn.Sequential`` chains.

    ``input_state`` is the input as an affine map of the 2-D coordinates, shape ``(1, 3, *input_shape)``.
    """
    graph = trace_graph(model, tuple(input_state.shape[2:]))
    last_reader = {}
    for index, node in enumerate(graph.nodes[1:], start=1):
        for source in _inputs(node):
            last_reader[source] = index
    last_reader[graph.output] = len(graph.nodes)
    maps, level = {0: input_state.reshape(1, 3, -1)}, {0: -1}
    layers: list[LayerPartition] = []
    for index, node in enumerate(graph.nodes[1:], start=1):
        if isinstance(node, AffineNode):
            level[index] = max(level[source] for source in node.inputs)
            n_regions = 1 if level[index] < 0 else layers[level[index]].num_regions
            check_memory(n_regions, 3 * int(np.prod(node.shape)) * 8, max_bytes)
            maps[index] = _apply_affine_node(node, [(maps[s], ancestors(layers, level[index], level[s]),
                                                     _shape(graph, s)) for s in node.inputs], n_regions)
        else:
            current = len(layers) - 1
            parents = domain if current < 0 else layers[current].polygons
            check_memory(len(parents), 3 * int(np.prod(node.shape)) * 8, max_bytes)
            pre = maps[node.input][ancestors(layers, current, level[node.input])].reshape(len(parents), 3, -1)
            pieces, parent, codes = cut_by_layer(parents, pre, frame, max_regions, len(layers))
            layers.append(LayerPartition(pieces, parent, codes, pre, node.slope, node.shape))
            level[index] = len(layers) - 1
            check_memory(len(pieces), 3 * int(np.prod(node.shape)) * 8, max_bytes)
            maps[index] = layers[-1].post_activations(np.arange(len(pieces)))
        for source in _inputs(node):
            if last_reader[source] == index:
                del maps[source]
    return GraphPartition(graph, bounds, plane, domain, layers, maps[graph.output], level[graph.output])


def _shape(graph: Graph, index: int) -> tuple:
    return graph.input_shape if index == 0 else graph.nodes[index].shape


def _inputs(node) -> tuple[int, ...]:
    return node.inputs if isinstance(node, AffineNode) else (node.input,)


def _apply_affine_node(node: AffineNode, sources: list, n_regions: int) -> np.ndarray:
    """``node`` applied to per-region maps, shape (n_regions, 3, node size).

    Each source is ``(maps, index, shape)``: its maps (n_source_regions, 3, size), the source region of each
    region, and its per-sample shape.
    """
    size = int(np.prod(node.shape))
    out = np.empty((n_regions, 3, size))
    widest = max([size] + [source_maps.shape[2] for source_maps, _, _ in sources])
    chunk = max(1, CHUNK_BYTES // (3 * 8 * widest))
    for start in range(0, n_regions, chunk):
        rows = slice(start, min(start + chunk, n_regions))
        tensors = [torch.as_tensor(source_maps[index[rows]]).reshape(-1, *shape)
                   for source_maps, index, shape in sources]
        with torch.no_grad():
            result = node.linear(*tensors).reshape(-1, 3, size)
        out[rows] = result.numpy()
        if node.offset is not None:
            out[rows, 0] += node.offset.reshape(-1).numpy()
    return out


def graph_activation_codes(model: nn.Module, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Activation codes of inputs ``x`` from the model's own forward pass, run op by op (``torch.fx``).

    Each ReLU / LeakyReLU call contributes its input's entries (> 0 is active), read before the call runs (so
    in-place calls are seen correctly); each MaxPool2d contributes its ``K - 1`` comparisons, read off its input
    (:func:`spline_utils.graph_ops.max_pool_comparisons`). Blocks are in the order the forward runs them, each
    flattened in C order: the node order of :class:`GraphPartition` codes.
    """
    trace_graph(model, tuple(x.shape[1:]))  # refuses what the partition engine refuses
    network = float64_copy(model).to(dtype=dtype)
    module = trace_module(network)
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
        relu = isinstance(module, ops.RELU_MODULES) or (
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
