"""The network's nodes run on per-region affine maps: one affine node (:func:`apply_affine`), or every node up to
a layer with each region's gains fixed by its codes (:class:`CodedForward`)."""
from __future__ import annotations

import math

import numpy as np
import torch

from spline_utils.engine.partition import LayerPartition
from spline_utils.reading.graph_ir import AffineNode, Graph, ReluNode

CODED_FORWARD_BYTES = 2**27  # maps of one chunk of regions while pre-activations are computed again


def apply_affine(node: AffineNode, sources: list, shapes: list) -> np.ndarray | None:
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


def input_of(graph: Graph, index: int) -> tuple:
    """Per-sample shape of node ``index``'s output (the graph's input shape for node 0)."""
    return graph.input_shape if index == 0 else graph.nodes[index].shape


class CodedForward:
    """Pre-activation maps of layer ``level`` on chosen regions of layer ``level - 1``, from the network itself.

    On a region every ReLU's gains are fixed by the region's codes, so the network is affine there: running it on
    the input's affine map (rows offset, d/da, d/db) with those gains gives the layer's maps exactly. Used for a
    merged layer, whose tiles' maps were not kept, and (with ``target`` the network's output, ``level`` one past the
    output's layer) for output maps that a run in region chunks did not keep.
    """

    def __init__(self, graph: Graph, input_state: np.ndarray, layers: list[LayerPartition], level: int,
                 target: int | None = None):
        self.graph, self.input_state, self.level = graph, input_state, level
        # the older layers only: holding the list that will hold this layer would close a reference cycle
        self.layers = layers[:level]
        self.target = graph.nodes[graph.relu_nodes[level]].input if target is None else target
        self.n_parents = 1 if level == 0 else None
        widest = max(math.prod(input_of(graph, index)) for index in range(self.target + 1))
        self.step = max(1, CODED_FORWARD_BYTES // (3 * 8 * widest * 4))  # about four tensors alive at once

    def on_every_region(self) -> np.ndarray:
        """The maps on every region of layer ``level - 1``, a chunk of :attr:`step` regions at a time."""
        n_regions = self.layers[-1].num_regions if self.layers else 1
        return np.concatenate([self(np.arange(start, min(start + self.step, n_regions)))
                               for start in range(0, n_regions, self.step)])

    def __call__(self, parent_index: np.ndarray) -> np.ndarray:
        """Maps of the target (the layer's pre-activations) on regions ``parent_index`` of layer ``level - 1``:
        (n, 3, size)."""
        gains, index = {}, np.asarray(parent_index, dtype=np.int64)
        for level in range(self.level - 1, -1, -1):
            layer = self.layers[level]
            gains[self.graph.relu_nodes[level]] = np.where(layer.codes_of(index), 1.0, layer.slope)
            index = layer.parent[index]
        target = self.target
        last_reader = {source: reader for reader in range(1, target + 1)
                       for source in _sources(self.graph.nodes[reader])}
        values = {0: self.input_state.reshape(1, 3, -1)}
        for node_index in range(1, target + 1):
            node = self.graph.nodes[node_index]
            if isinstance(node, ReluNode):
                values[node_index] = values[node.input] * gains[node_index][:, None, :]
            else:
                values[node_index] = apply_affine(node, [values[source] for source in node.inputs],
                                                  [input_of(self.graph, source) for source in node.inputs])
            for source in _sources(node):
                if last_reader[source] == node_index and source != target:
                    del values[source]
        maps = values[target]
        return np.broadcast_to(maps, (len(parent_index), *maps.shape[1:])).copy() if len(maps) == 1 else maps


def _sources(node) -> tuple[int, ...]:
    return (node.input,) if isinstance(node, ReluNode) else node.inputs
