"""The engine: the exact partition of a 2-D domain or slice for any read model (a chain is a graph without branches).

The ReLU nodes of a :class:`spline_utils.reading.graph_ir.Graph` are cut in forward (topological) order: cutting ReLU
node ``l`` refines the partition after nodes ``0 .. l-1``, on each of whose regions every tensor computed so far is
affine in the 2-D coordinates. Each tensor's per-region maps (rows offset, d/da, d/db) are stored once, on the
partition *level* at which it became affine (the number of ReLU nodes cut before its last ReLU ancestor), and read
on finer levels through the regions' ancestors: a skip connection from the input costs one map, not one per region.
A tensor's maps are dropped after its last reader; a ReLU node's output is never stored for every region (it is
``pre[parent] * gains``, formed for the regions that read it).

The affine nodes between ReLU node ``l`` and the next one (its *span*) are computed together. A span tensor ``T``
that depends on ReLU ``l`` is affine in that node's output ``z`` with everything older fixed:
``T(r) = z(r) J + C(parent(r))``, where ``J`` is the span's Jacobian with respect to ``z`` and ``C`` the span
evaluated with ``z = 0`` on the parent regions (one row when nothing older varies, as in a plain chain). Regions
then take their maps from a head region of the same parent plus a sparse correction
(:func:`spline_utils.engine.propagate.maps_from_heads`): siblings share every older input, so they differ only by
rank-one terms in the nodes whose gains differ, whatever the skips.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from spline_utils.engine.cutting import cut_by_layer
from spline_utils.engine.partition import LayerPartition, Partition, ancestors, check_memory
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.propagate import CHUNK_BYTES, DENSE_FILL, MAX_JACOBIAN_ENTRIES, RESTART, maps_from_heads
from spline_utils.engine.tolerance import Frame
from spline_utils.reading.graph_ir import AffineNode, Graph, ReluNode


def graph_partition2d(graph: Graph, bounds: tuple, plane, input_state: np.ndarray, domain: Polygons,
                      frame: Frame, max_regions: int, max_bytes: int) -> Partition:
    """The engine behind :func:`spline_utils.partition2d`.

    ``input_state`` is the input as an affine map of the 2-D coordinates, shape ``(1, 3, *input_shape)``.
    """
    return _GraphCutter(graph, domain, frame, max_regions, max_bytes).run(input_state, bounds, plane)


class _GraphCutter:
    """The state of one partition: maps of stored tensors, each tensor's level, the layers cut so far."""

    def __init__(self, graph: Graph, domain: Polygons, frame: Frame, max_regions: int, max_bytes: int):
        self.graph, self.domain, self.frame = graph, domain, frame
        self.max_regions, self.max_bytes = max_regions, max_bytes
        self.layers: list[LayerPartition] = []
        self.maps: dict[int, np.ndarray] = {}
        self.level: dict[int, int] = {0: -1}
        self.layer_of: dict[int, int] = {}  # ReLU node -> index of its layer
        self.last_reader = {}
        for index, node in enumerate(graph.nodes[1:], start=1):
            for source in _inputs(node):
                self.last_reader[source] = index
        self.last_reader[graph.output] = len(graph.nodes)

    def run(self, input_state: np.ndarray, bounds, plane) -> Partition:
        nodes = self.graph.nodes
        self.maps[0] = input_state.reshape(1, 3, -1)
        index = 1
        while index < len(nodes):
            if isinstance(nodes[index], ReluNode):
                self._cut(index)
                end = next((j for j in range(index + 1, len(nodes)) if isinstance(nodes[j], ReluNode)), len(nodes))
                self._span(index, list(range(index + 1, end)))
                self._forget(range(index, end), end)
                index = end
            else:
                self.level[index] = max(self.level[source] for source in nodes[index].inputs)
                self.maps[index] = self._evaluate([index], [index], self.level[index])[index]
                self._forget([index], index + 1)
                index += 1
        output = self.graph.output
        maps = self.maps[output] if output in self.maps else self._evaluate_relu_output(output)
        return Partition(self.graph, bounds, plane, self.domain, self.layers, maps, self.level[output])

    def _forget(self, readers, first_later: int) -> None:
        """Drop the maps of tensors whose last reader is among ``readers`` (all before ``first_later``)."""
        for reader in readers:
            for source in _inputs(self.graph.nodes[reader]):
                if self.last_reader[source] < first_later:
                    self.maps.pop(source, None)

    def _cut(self, index: int) -> None:
        """Cut the current partition by ReLU node ``index``."""
        node = self.graph.nodes[index]
        current = len(self.layers) - 1
        parents = self.domain if current < 0 else self.layers[current].polygons
        check_memory(len(parents), 3 * math.prod(node.shape) * 8, self.max_bytes)
        pre = self._source(node.input, current, np.arange(len(parents))).reshape(len(parents), 3, -1)
        pieces, parent, codes = cut_by_layer(parents, pre, self.frame, self.max_regions, len(self.layers))
        self.layers.append(LayerPartition(pieces, parent, codes, pre, node.slope, node.shape))
        self.level[index] = self.layer_of[index] = len(self.layers) - 1

    def _span(self, relu: int, span: list[int]) -> None:
        """Maps of the affine nodes after ReLU node ``relu`` (up to the next ReLU) that later nodes read."""
        nodes, level = self.graph.nodes, len(self.layers) - 1
        for index in span:
            self.level[index] = max(self.level[source] for source in nodes[index].inputs)
        for index in span:  # nodes that do not depend on this ReLU: on the coarser level they belong to
            if self.level[index] < level:
                self.maps[index] = self._evaluate([index], [index], self.level[index])[index]
        dependent = [index for index in span if self.level[index] == level]
        end = span[-1] + 1 if span else relu + 1
        stored = [index for index in dependent if self.last_reader[index] >= end]
        if not stored:
            return
        layer = self.layers[level]
        for index in stored:
            check_memory(layer.num_regions, 3 * math.prod(nodes[index].shape) * 8, self.max_bytes)
        jacobians = self._jacobians(relu, dependent, stored) if _worth_a_jacobian(layer) else None
        if jacobians is None:  # too large to form, or dearer than running the span: every region through the span
            self.maps.update(self._evaluate(dependent, stored, level))
            return
        constants = self._evaluate(dependent, stored, level - 1, zero_relu=relu)
        for target in stored:
            jacobian, constant = jacobians[target], constants[target]
            dense = np.count_nonzero(jacobian) >= DENSE_FILL * jacobian.size

            def direct(index, jacobian=jacobian, constant=constant, target=target, dense=dense):
                if not dense:
                    return self._evaluate(dependent, [target], level, index)[target]
                return _dense_maps(layer, index, jacobian, constant)

            self.maps[target] = maps_from_heads(layer, jacobian, direct)

    def _jacobians(self, relu: int, dependent: list[int], stored: list[int]) -> dict | None:
        """Each stored span tensor's Jacobian with respect to ReLU node ``relu``'s output, (n_nodes, size)."""
        nodes = self.graph.nodes
        n_nodes = math.prod(nodes[relu].shape)
        if n_nodes * max(math.prod(nodes[index].shape) for index in dependent) > MAX_JACOBIAN_ENTRIES:
            return None
        values = {relu: torch.eye(n_nodes, dtype=torch.float64).reshape(n_nodes, *nodes[relu].shape)}
        with torch.no_grad():
            for index in dependent:
                node = nodes[index]
                inputs = [values[source] if source in values else
                          torch.zeros((n_nodes, *_shape(self.graph, source)), dtype=torch.float64)
                          for source in node.inputs]
                values[index] = node.linear(*inputs)
        return {index: values[index].reshape(n_nodes, math.prod(nodes[index].shape)).numpy() for index in stored}

    def _source(self, source: int, level: int, index: np.ndarray) -> np.ndarray:
        """Maps of tensor ``source`` on regions ``index`` of partition level ``level``: (len(index), 3, size)."""
        at = ancestors(self.layers, level, self.level[source])[index]
        if source in self.layer_of:
            return self.layers[self.layer_of[source]].post_activations(at)
        return self.maps[source][at]

    def _evaluate_relu_output(self, relu: int) -> np.ndarray:
        layer = self.layers[self.layer_of[relu]]
        return layer.post_activations(np.arange(layer.num_regions))

    def _evaluate(self, span: list[int], targets: list[int], level: int, index: np.ndarray | None = None,
                  zero_relu: int | None = None) -> dict[int, np.ndarray]:
        """Maps of ``targets`` on regions ``index`` (default: all) of ``level``, by running the span's nodes.

        With ``zero_relu`` that ReLU node's output counts as zero (no offset, no slope): the span's part that does
        not depend on it. Results that do not vary from region to region come back as a single row.
        """
        n_regions = 1 if level < 0 else self.layers[level].num_regions
        index = np.arange(n_regions) if index is None else index
        outside = {source for i in span for source in self.graph.nodes[i].inputs} - set(span) - {zero_relu}
        if zero_relu is not None and not outside:  # nothing varies from region to region: one row does
            index = index[:1]
        widest = max([1] + [math.prod(self.graph.nodes[i].shape) for i in span])
        step = max(1, CHUNK_BYTES // (3 * 8 * widest * max(1, len(span))))
        parts: dict[int, list] = {target: [] for target in targets}
        for start in range(0, max(len(index), 1), step):
            chunk = index[start:start + step]
            values: dict[int, np.ndarray | None] = {}
            for node_index in span:
                node = self.graph.nodes[node_index]
                sources = [None if source == zero_relu else values[source] if source in values
                           else self._source(source, level, chunk) for source in node.inputs]
                values[node_index] = _apply(node, sources, [_shape(self.graph, s) for s in node.inputs])
            for target in targets:
                parts[target].append(values[target])
        result = {}
        for target in targets:
            pieces = parts[target]
            if pieces[0] is None:  # exactly zero
                result[target] = np.zeros((1, 3, math.prod(self.graph.nodes[target].shape)))
            elif len(pieces) == 1 or zero_relu is not None and len(pieces[0]) == 1 < min(step, len(index)):
                result[target] = pieces[0]  # all regions at once, or a row that does not vary
            else:
                result[target] = np.concatenate(pieces)
        return result


def _worth_a_jacobian(layer: LayerPartition) -> bool:
    """Whether forming the span's Jacobian (one pass of the span per node of the layer) costs less than running the
    span on every region (three passes per region), and there are enough regions for head maps to pay off."""
    return layer.num_regions >= 4 * RESTART and 3 * layer.num_regions >= layer.num_nodes


def _dense_maps(layer: LayerPartition, index: np.ndarray, jacobian: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """``z(r) J + C(parent(r))`` on regions ``index`` of ``layer`` through the dense Jacobian, in bounded chunks.

    BLAS does a multiply-add ~15x faster than a float64 convolution; the layer's outputs ``z`` are formed a chunk of
    regions at a time, never for all regions at once.
    """
    n_nodes, size = jacobian.shape
    maps = np.empty((len(index), 3, size))
    step = max(1, CHUNK_BYTES // (3 * 8 * max(n_nodes, 1)))
    for start in range(0, len(index), step):
        chunk = index[start:start + step]
        post = layer.post_activations(chunk).reshape(3 * len(chunk), n_nodes)
        np.matmul(post, jacobian, out=maps[start:start + step].reshape(3 * len(chunk), size))
        maps[start:start + step] += constant if len(constant) == 1 else constant[layer.parent[chunk]]
    return maps


def _apply(node: AffineNode, sources: list, shapes: list) -> np.ndarray | None:
    """``node`` on per-region maps (n, 3, size) or single rows (1, 3, size); ``None`` is an exact zero input.

    Returns ``None`` when every input is zero and the node has no offset; a single row when no input varies.
    """
    if all(source is None for source in sources):
        if node.offset is None:
            return None
        row = np.zeros((1, 3, math.prod(node.shape)))
        row[0, 0] = node.offset.reshape(-1).numpy()
        return row
    n = max(len(source) for source in sources if source is not None)
    tensors = [torch.zeros((3 * n, *shape), dtype=torch.float64) if source is None else
               torch.as_tensor(source).expand(n, *source.shape[1:]).reshape(3 * n, *shape)
               for source, shape in zip(sources, shapes)]
    with torch.no_grad():
        out = node.linear(*tensors).reshape(n, 3, math.prod(node.shape)).numpy().copy()
    if node.offset is not None:
        out[:, 0] += node.offset.reshape(-1).numpy()
    return out


def _shape(graph: Graph, index: int) -> tuple:
    return graph.input_shape if index == 0 else graph.nodes[index].shape


def _inputs(node) -> tuple[int, ...]:
    return node.inputs if isinstance(node, AffineNode) else (node.input,)
