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

Everything a partition holds (maps, codes, polygons) is counted against ``max_bytes``. A ReLU input too large to hold
is formed, cut and dropped a chunk of parent regions at a time (:meth:`_GraphCutter._cut_streamed`). A span whose
maps on every region of the layer would not fit (a skip connection or a MaxPool's running maximum, read again layers
later) is computed, with every later layer, a chunk of the layer's regions at a time
(:meth:`_GraphCutter._continue_in_region_chunks`). Past the cap even so (the codes and polygons alone do not fit) the
engine raises :class:`~spline_utils.engine.partition.MapsTooLarge`, and :mod:`spline_utils.engine.tiling` computes
the domain in tiles instead.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from spline_utils.engine.cutting import cut_by_layer, warn_unresolved
from spline_utils.engine.free_memory import concatenate_freeing, release_free_memory
from spline_utils.engine.kernel_threads import run_blocks, work_blocks
from spline_utils.engine.network_maps import CodedForward, apply_affine, input_of
from spline_utils.engine.partition import (LayerPartition, MapsTooLarge, Partition, ancestors, check_memory,
                                          readable_bytes)
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.propagate import RESTART, maps_from_heads, regions_of
from spline_utils.engine.region_bound import OutOfRoom, PartitionTooLarge, too_large
from spline_utils.engine.thread_pools import product_threads
from spline_utils.engine.tolerance import Frame
from spline_utils.reading.graph_ir import AffineNode, Graph, ReluNode

CHUNK_BYTES = 2**27  # maps of one chunk of regions while a span is run on them
MAX_JACOBIAN_ENTRIES = 2**25  # a span's Jacobian is formed only up to this many entries
DENSE_FILL = 0.1  # least nonzero fraction of a Jacobian for which heads go through it rather than the span
SMALL_PRODUCT = 2**26  # multiply-adds of a dense product that runs faster than head maps and corrections
# a region's multiply-adds up to which a dense product on every region beats head maps and corrections (measured:
# the paper CNN's output span, 7,680 a region, 3.5x faster direct; 2-64-64-64's hidden spans, 12,288, slower)
DIRECT_REGION_PRODUCT = 2**13
PRODUCT_CHUNK_BYTES = 2**20  # a chunk's layer outputs, formed in cache (L2) just before their dense product
BLOCK_MULTIPLY_ADDS = 2**22  # the least work of a thread forming outputs and their products (about a millisecond)
# a tensor read only by the next ReLU and larger than this is formed a chunk at a time: first touching fresh memory is
# slow (the paper CNN's 766 MB of layer-1 maps cost a fresh process about 1 s on the 2-core machine)
STREAM_BYTES = 2**26
STREAM_CHUNK_BYTES = 2**28  # the ReLU input maps of one chunk of parents, at most a sixteenth of max_bytes
REGION_CHUNK_BYTES = 2**28  # the span maps of one chunk of a layer's regions continued apart (at most half the room)
REGION_WORKING_BYTES = 2**29  # the maps a region chunk and its own chunks may hold beyond its start
POLYGON_BYTES = 8 * 16  # a region's polygon (about six vertices, its vertex count and start) and parent index
LEAST_POLYGON_BYTES = 3 * 16 + 2 * 8  # a region's fewest bytes in a layer: a triangle, its vertex count, its parent


def graph_partition2d(graph: Graph, bounds: tuple, plane, input_state: np.ndarray, domain: Polygons,
                      frame: Frame, max_regions: int, max_bytes: int, jacobians: dict | None = None,
                      chunk_outputs_kept: bool = True) -> Partition:
    """The engine behind :func:`spline_utils.partition2d`.

    ``input_state`` is the input as an affine map of the 2-D coordinates, shape ``(1, 3, *input_shape)``.
    ``jacobians`` keeps the spans' Jacobians (they depend on the graph alone) for later calls on the same graph, such
    as the tiles of one domain. Layers continued in region chunks keep their output maps with
    ``chunk_outputs_kept`` (a tile's: the merge reads them at once); else the output maps on them are computed again
    from the codes when asked for, a forward pass of the network for each region.
    """
    cutter = _GraphCutter(graph, domain, frame, max_regions, max_bytes, {} if jacobians is None else jacobians,
                          chunk_outputs_kept)
    return cutter.run(input_state, bounds, plane)


class _GraphCutter:
    """The state of one partition: maps of stored tensors, each tensor's level, the layers cut so far."""

    def __init__(self, graph: Graph, domain: Polygons, frame: Frame, max_regions: int, max_bytes: int,
                 jacobians: dict, chunk_outputs_kept: bool):
        self.graph, self.domain, self.frame, self.jacobian_cache = graph, domain, frame, jacobians
        self.max_regions, self.max_bytes = max_regions, max_bytes
        self.result_cap = max_bytes  # the user's max_bytes, for the result (a region chunk's max_bytes is smaller)
        self.layers: list[LayerPartition] = []
        self.maps: dict[int, np.ndarray] = {}
        self.level: dict[int, int] = {0: -1}
        self.layer_of: dict[int, int] = {}  # ReLU node -> index of its layer
        self.producers: dict[int, _Producer] = {}  # tensors too large to form: computed a chunk at a time
        self.pending: list[np.ndarray] = []  # the parts of a layer being cut a chunk at a time
        self.regions_before: dict[int, int] = {}  # layer -> its regions in earlier region chunks (the cap counts all)
        self.outside_bytes = 0  # bytes held for this partition outside the cutter (earlier region chunks' results)
        self.output_maps, self.output_level = None, -1
        self.keep_output = True  # whether the output maps are formed (:meth:`_plan_span`; see chunk_outputs_kept)
        self.chunk_outputs_kept = chunk_outputs_kept  # whether region chunks form and keep theirs
        self.input_state = None
        self.unresolved: dict[int, int] = {}  # layer -> lines within the resolution of a corner (region chunks add)
        self.last_reader = {}
        for index, node in enumerate(graph.nodes[1:], start=1):
            for source in _inputs(node):
                self.last_reader[source] = index
        self.last_reader[graph.output] = len(graph.nodes)

    def run(self, input_state: np.ndarray, bounds, plane) -> Partition:
        self.input_state = input_state
        self.maps[0] = input_state.reshape(1, 3, -1)
        self._run_from(1)
        for layer, unresolved in sorted(self.unresolved.items()):  # once a layer, not once a chunk
            warn_unresolved(layer, unresolved, self.frame)
        return Partition(self.graph, bounds, plane, self.domain, self.layers, self.output_maps, self.output_level)

    def _run_from(self, index: int) -> None:
        """Cut by the ReLU nodes from node ``index`` on; sets :attr:`output_maps` and :attr:`output_level`."""
        nodes = self.graph.nodes
        while index < len(nodes):
            if isinstance(nodes[index], ReluNode):
                end = _span_end(self.graph, index)
                span = list(range(index + 1, end))
                if nodes[index].input in self.producers:
                    spanned = self._cut_streamed(index, span)
                else:
                    self._cut(index)
                    spanned = self._span_fits(index)
                    if spanned:
                        self._span(index, span)
                if not spanned:
                    self._continue_in_region_chunks(index, span, end)
                    return
                self._forget(range(index, end), end)
                index = end
            else:
                self.level[index] = max(self.level[source] for source in nodes[index].inputs)
                self.maps[index] = self._evaluate([index], [index], self.level[index])[index]
                self._forget([index], index + 1)
                index += 1
        output = self.graph.output
        if output in self.maps:
            self.output_maps = self.maps[output]
        elif output in self.layer_of:  # a network ending in a ReLU: the last layer's outputs, computed when asked for
            self.output_maps = self.layers[self.layer_of[output]].all_post_activations
        else:  # not formed by a region chunk (keep_output)
            self.output_maps = None
        self.output_level = self.level[output]

    def _held_bytes(self) -> int:
        """Bytes this partition holds: stored tensors' maps, the layers' maps, codes and polygons."""
        arrays = list(self.maps.values()) + self.pending
        for layer in self.layers:
            arrays += [layer._pre_activations, layer.packed_codes, layer.parent, layer.polygons.vertices]
            arrays += list(getattr(layer._recompute, "sources", {}).values())
        for producer in self.producers.values():
            arrays += list(producer.sources.values())
        held = {id(array if array.base is None else array.base): array.nbytes for array in arrays if array is not None}
        return sum(held.values()) + self.outside_bytes

    def _check_memory(self, n_regions: int, bytes_per_region: int) -> None:
        """:func:`check_memory` counting everything this partition holds (:meth:`_held_bytes`)."""
        check_memory(n_regions, bytes_per_region, self.max_bytes, self._held_bytes())

    def _cut_by_layer(self, parents: Polygons, pre: np.ndarray, relu: int, regions_so_far: int = 0):
        """:func:`cut_by_layer` for ReLU node ``relu``, stopped early, with :class:`MapsTooLarge`, when the pieces'
        codes and polygons would not fit in ``max_bytes`` with what is held (the maps they will need are decided on
        after the cut: :meth:`_span_fits`)."""
        per_region = math.ceil(math.prod(self.graph.nodes[relu].shape) / 8) + POLYGON_BYTES
        room = max(0, self.max_bytes - self._held_bytes()) // per_region
        regions_so_far += self.regions_before.get(len(self.layers), 0)
        try:
            pieces, parent, codes, unresolved = cut_by_layer(parents, pre, self.frame,
                                                             self.max_regions - regions_so_far, len(self.layers), room)
            self.unresolved[len(self.layers)] = self.unresolved.get(len(self.layers), 0) + unresolved
            if regions_so_far + len(pieces) > self.max_regions:  # parents that no line cuts are not counted there
                raise too_large(len(self.layers), f"already has more than max_regions={self.max_regions} regions")
            return pieces, parent, codes
        except OutOfRoom:
            raise MapsTooLarge(f"hidden layer {len(self.layers)} has more than {room + regions_so_far} regions, "
                               f"whose codes and polygons need more than max_bytes={self.max_bytes} "
                               f"({readable_bytes(self.max_bytes)}); shrink the bounds, use a smaller model, or raise "
                               "max_bytes", 2 * self.max_bytes, self.max_bytes, per_region) from None

    def _span_bytes_per_region(self, relu: int, streamed: bool) -> int:
        """Bytes of the maps each region of ReLU node ``relu``'s layer holds for its span: the span tensors that
        later nodes read. A tensor that only the next ReLU reads is not counted (:meth:`_span` streams it), unless
        the layer keeps no maps to stream it from (``streamed``: it was cut a chunk at a time)."""
        nodes, end = self.graph.nodes, _span_end(self.graph, relu)
        return sum(3 * 8 * math.prod(nodes[target].shape) for target in range(relu + 1, end)
                   if self.last_reader.get(target, -1) >= end and (streamed or not self._streamable(target, end)))

    def _span_fits(self, relu: int) -> bool:
        """Whether the span maps of the layer just cut, on every region, fit in half the room ``max_bytes`` leaves
        (:meth:`_span_room`)."""
        layer = self.layers[-1]
        needed = layer.num_regions * self._span_bytes_per_region(relu, layer._pre_activations is None)
        return needed <= self._span_room()

    def _span_room(self) -> int:
        """The most bytes a layer's span maps on every region may take: half the room ``max_bytes`` leaves, the
        other half for the later layers. Span maps that filled the room (a MaxPool's running maximum, a skip) would
        stay held, mostly unread, while every later layer ran in region chunks squeezed into what is left;
        :meth:`_continue_in_region_chunks` forms them a chunk of regions at a time instead."""
        return max(0, self.max_bytes - self._held_bytes()) // 2

    def _streamable(self, target: int, end: int) -> bool:
        """Whether span tensor ``target`` is read by the next ReLU node (``end``) alone, as its input."""
        return end < len(self.graph.nodes) and self.last_reader[target] == end and self.graph.nodes[end].input == target

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
        if not self._held_whole(node.input, current):  # else read without a copy
            self._check_memory(len(parents), 3 * math.prod(node.shape) * 8)
        pre = self._source(node.input, current).reshape(len(parents), 3, -1)
        pieces, parent, codes = self._cut_by_layer(parents, pre, index)
        self.layers.append(LayerPartition(pieces, parent, codes, pre, node.slope, node.shape))
        self.level[index] = self.layer_of[index] = len(self.layers) - 1

    def _span(self, relu: int, span: list[int]) -> None:
        """Maps of the affine nodes after ReLU node ``relu`` (up to the next ReLU) that later nodes read.

        A tensor that only the next ReLU reads and that would take more than :data:`STREAM_BYTES`, or more than the
        room ``max_bytes`` leaves, is not formed: the next cut computes it a chunk of regions at a time
        (:meth:`_cut_streamed`).
        """
        plan = self._plan_span(relu, span)
        if plan is None:
            return
        layer, end = self.layers[plan.level], _span_end(self.graph, relu)
        for target in plan.stored:
            size = math.prod(self.graph.nodes[target].shape)
            room = min(STREAM_BYTES, self.max_bytes - self._held_bytes())
            streamable = self._streamable(target, end) and layer._pre_activations is not None
            if streamable and 3 * 8 * size * layer.num_regions > room:
                self.producers[target] = _Producer(layer, plan, target)
            else:
                self._check_memory(layer.num_regions, 3 * size * 8)
                self.maps[target] = plan.maps(layer, target)

    def _plan_span(self, relu: int, span: list[int]) -> "_SpanPlan | None":
        """Levels of the span's nodes, maps of those that do not depend on ``relu``, and how to compute the others."""
        level = len(self.layers) - 1
        self._older_span_nodes(span, level)
        dependent = [index for index in span if self.level[index] == level]
        end = _span_end(self.graph, relu)
        stored = [index for index in dependent if self.last_reader.get(index, -1) >= end]  # unread nodes: none
        if not self.keep_output and end == len(self.graph.nodes) == self.graph.output + 1:
            stored = [index for index in stored if index != self.graph.output]
        if not stored:
            return None
        jacobians = self._jacobians(relu, dependent, stored) if _worth_a_jacobian(self.layers[level]) else None
        return _SpanPlan(self, level, relu, dependent, stored, jacobians)

    def _older_span_nodes(self, span: list[int], level: int) -> None:
        """Set the levels of the span's nodes and compute the maps of those that do not depend on the ReLU just cut
        (layer ``level``), on the coarser level they belong to (once: region chunks find them computed)."""
        nodes = self.graph.nodes
        for index in span:
            self.level[index] = max(self.level[source] for source in nodes[index].inputs)
        for index in span:
            if self.level[index] < level and index not in self.maps:
                self.maps[index] = self._evaluate([index], [index], self.level[index])[index]

    def _cut_streamed(self, relu: int, span: list[int]) -> bool:
        """Cut by ReLU node ``relu`` and compute its span, a chunk of parent regions at a time.

        The ReLU's input maps on every parent would not fit: each chunk's are formed, cut, used for the chunk's
        children's span maps, and dropped. The layer keeps no maps; :attr:`LayerPartition.pre_activations`
        computes them again when asked. Returns whether the span was computed: not when its maps on every region
        would take more than half the room left (:meth:`_span_room`; :meth:`_continue_in_region_chunks` then
        computes it).
        """
        node, level = self.graph.nodes[relu], len(self.layers)
        producer, parents = self.producers.pop(node.input), self.layers[level - 1]
        plan = self._plan_span_after(relu, span)
        chunk_bytes = min(STREAM_CHUNK_BYTES, self.max_bytes // 16)  # a chunk's maps count against max_bytes
        step = max(1, chunk_bytes // (3 * 8 * max(1, math.prod(node.shape))))
        parts: dict = {"pieces": [], "parent": [], "codes": []}
        stored_parts: dict = {target: [] for target in (plan.stored if plan else [])}
        has_span_maps, cut_arrays, total = plan is not None, [], 0
        # the maps the producer reads: held through the cut, then by the layer, to compute its maps again
        self.pending = sources = list(producer.sources.values())
        span_room, span_bytes = self._span_room(), 0
        # one buffer for every chunk's maps, none of which outlives its chunk: writing fresh memory costs a page fault
        # every 4 KiB (about 5 ms for each of the paper CNN's 64 MB chunks)
        buffer = np.empty((min(step, parents.num_regions), 3, math.prod(node.shape)))
        self.pending = working = [buffer, *sources]  # counted against max_bytes with what the chunks keep
        for start in range(0, parents.num_regions, step):
            index = np.arange(start, min(start + step, parents.num_regions))
            pre = producer(index, buffer[:len(index)])
            try:
                pieces, local_parent, codes = self._cut_by_layer(parents.polygons.subset(index), pre, relu, total)
            except MapsTooLarge:
                raise
            except PartitionTooLarge:
                raise too_large(level, f"already has more than max_regions={self.max_regions} regions (counted a "
                                       "chunk of parent regions at a time)") from None
            total += len(pieces)
            chunk = LayerPartition(pieces, index[local_parent], codes, pre, node.slope, node.shape)
            chunk.pre_row = local_parent
            parts["pieces"].append(pieces), parts["parent"].append(chunk.parent), parts["codes"].append(codes)
            cut_arrays += [pieces.vertices, chunk.parent, codes]
            span_bytes += len(pieces) * self._span_bytes_per_region(relu, True)
            if plan is not None and span_bytes > span_room:  # the layer is cut first, its span in region chunks
                plan, stored_parts = None, {}
            if plan is not None:
                self.layers.append(chunk)
                for target in plan.stored:
                    stored_parts[target].append(plan.maps(chunk, target))
                self.layers.pop()
            self.pending = working + cut_arrays + [maps for pieces in stored_parts.values() for maps in pieces]
            release_free_memory()
        self.pending, cut_arrays = [], None  # the parts are joined freeing each one: the lists hold them alone
        producer.step = step
        layer = LayerPartition(_join_polygons(parts["pieces"]), concatenate_freeing(parts["parent"]),
                               concatenate_freeing(parts["codes"]), None, node.slope, node.shape, recompute=producer)
        self.layers.append(layer)
        producer.plan.cutter = self._older_layers(level)  # no cycle layer -> producer -> cutter -> layer
        for target, maps in stored_parts.items():
            self.maps[target] = concatenate_freeing(maps)
        return plan is not None or not has_span_maps

    def _older_layers(self, n_layers: int) -> "_GraphCutter":
        """A copy of this cutter that sees only its first ``n_layers`` layers and holds no maps: what a layer's
        producer reads when its maps are computed again after the cut. Referring to the cutter itself would close a
        reference cycle (layer, producer, cutter, layer) that only Python's cyclic collector frees: the maps of every
        earlier partition stayed in memory until it ran (about 0.1 GB a call on the paper CNN's canvas)."""
        older = copy.copy(self)
        older.layers, older.maps, older.producers, older.pending = self.layers[:n_layers], {}, {}, []
        return older

    def _continue_in_region_chunks(self, relu: int, span: list[int], end: int) -> None:
        """Compute the span of the layer just cut, and every later layer, a chunk of the layer's regions at a time.

        Used when the span's maps on every region of the layer would take more than half the room ``max_bytes``
        leaves (:meth:`_span_room`; a MaxPool's running maximum or a skip connection, as wide as the layer, read
        again layers later). The regions of later layers
        descend from one region of this layer each, so each chunk of its regions runs the rest of the network alone,
        and the chunks' later layers, joined in order, are exactly the whole run's. Their maps are not kept, nor are
        the output maps on them unless :attr:`chunk_outputs_kept` (240 B a region on the MaxPool CNN's canvas,
        0.42 GB): they are computed again from the codes when asked for
        (:class:`~spline_utils.engine.network_maps.CodedForward`).
        """
        layer, level = self.layers[-1], len(self.layers) - 1
        self._older_span_nodes(span, level)
        per_region = max(1, self._span_bytes_per_region(relu, False))
        later = range(level + 1, len(self.graph.relu_nodes))
        parts = {later_level: {"pieces": [], "parent": [], "codes": []} for later_level in later}
        counts, outputs, kept_bytes, start, most = dict.fromkeys(later, 0), [], 0, 0, layer.num_regions
        whole_room = False
        least_later, output_per_region, output_bytes = self._least_later_bytes(level), self._output_bytes(), 0
        while start < layer.num_regions:
            self._check_result_fits(level, kept_bytes + (layer.num_regions - start) * least_later,
                                    output_bytes + (layer.num_regions - start) * output_per_region)
            # half the room left for the chunk's span maps, half for its later layers; temporaries grow with a
            # chunk's maps, so never more than REGION_CHUNK_BYTES of them
            room = self.max_bytes - self._held_bytes() - kept_bytes
            step = min(room // 2, REGION_CHUNK_BYTES) // per_region
            if step < 1:
                raise MapsTooLarge(f"hidden layer {level}'s {layer.num_regions} regions and their later layers leave "
                                   f"no room in max_bytes={self.max_bytes} ({readable_bytes(self.max_bytes)}) for the "
                                   f"maps of even one region ({readable_bytes(per_region)}); shrink the bounds, use a "
                                   "smaller model, or raise max_bytes", self._held_bytes() + kept_bytes +
                                   (layer.num_regions - start) * per_region, self.max_bytes, per_region)
            index = np.arange(start, min(start + min(step, most), layer.num_regions))
            chunk = self._region_chunk(index, counts, kept_bytes, whole_room)
            try:
                chunk._span(relu, span)
                chunk._forget(range(relu, end), end)
                chunk._run_from(end)
            except MapsTooLarge:
                if len(index) == 1 and whole_room:
                    raise
                # its later layers did not fit: half as many regions; one region gets all the room left
                most, whole_room = max(1, len(index) // 2), len(index) == 1
                continue
            most, whole_room = 2 * most, False  # it fitted: twice as many may again
            kept_bytes += _keep_later_layers(chunk, level, start, parts, counts)
            # an older level's maps are the same in every chunk; a ReLU's outputs are formed when asked for
            keep = not outputs if chunk.output_level < level else self.chunk_outputs_kept
            if keep and not callable(chunk.output_maps):
                outputs.append(chunk.output_maps)
                kept_bytes += chunk.output_maps.nbytes
                output_bytes += chunk.output_maps.nbytes if chunk.output_level >= level else 0
            self.output_level = chunk.output_level
            start += len(index)
            del chunk
            release_free_memory()  # the chunk's temporaries, freed among the parts of the result kept so far
        for later_level in later:
            node = self.graph.nodes[self.graph.relu_nodes[later_level]]
            kept = parts.pop(later_level)
            self.layers.append(LayerPartition(_join_polygons(kept["pieces"]),
                                              concatenate_freeing(kept["parent"]),
                                              concatenate_freeing(kept["codes"]), None, node.slope, node.shape,
                                              recompute=CodedForward(self.graph, self.input_state, self.layers,
                                                                     later_level)))
            self.layer_of[self.graph.relu_nodes[later_level]] = later_level
        output = self.graph.output
        if output in self.layer_of:  # a network ending in a ReLU
            self.output_maps = self.layers[self.layer_of[output]].all_post_activations
        elif self.output_level < level:
            self.output_maps = outputs[0]
        elif self.chunk_outputs_kept:
            self.output_maps = concatenate_freeing(outputs)
        else:
            self.output_maps = CodedForward(self.graph, self.input_state, self.layers, self.output_level + 1,
                                            target=output).on_every_region

    def _least_later_bytes(self, level: int) -> int:
        """The fewest bytes the result holds for each region of layer ``level`` continued in region chunks: one
        region (a triangle, its code and parent) in every later layer, and its output maps where they are kept and
        are not a ReLU's outputs."""
        nodes = self.graph.nodes
        later = sum(math.ceil(math.prod(nodes[relu].shape) / 8) + LEAST_POLYGON_BYTES
                    for relu in self.graph.relu_nodes[level + 1:])
        return later + self._output_bytes()

    def _output_bytes(self) -> int:
        """Bytes of output maps the result keeps for each region continued in region chunks: none where they are not
        kept (:attr:`chunk_outputs_kept`) or are a ReLU's outputs (formed when asked for)."""
        output = self.graph.nodes[self.graph.output]
        kept = self.chunk_outputs_kept and not isinstance(output, ReluNode)
        return 3 * 8 * math.prod(output.shape) if kept else 0

    def _check_result_fits(self, level: int, later_bytes: int, output_bytes: int) -> None:
        """:class:`PartitionTooLarge` when layers ``0 .. level`` and ``later_bytes`` more of the result (of which
        ``output_bytes`` are output maps, which ``keep_output_maps=False`` leaves out) exceed ``max_bytes``: the
        partition itself does not fit, so neither chunks nor tiles can help."""
        result = self.outside_bytes + later_bytes + sum(_result_bytes(layer) for layer in self.layers[:level + 1])
        if result > self.result_cap:
            held = "polygons, codes and output maps" if output_bytes else "polygons and codes"
            lean = "" if not output_bytes else (
                f"; or pass keep_output_maps=False, which leaves the output maps ({readable_bytes(output_bytes)} of "
                "that) out of the result, to be computed when asked for")
            raise PartitionTooLarge(
                f"the partition itself needs more than max_bytes={self.result_cap} ({readable_bytes(self.result_cap)}): "
                f"hidden layer {level} has {self.layers[level].num_regions} regions, and with at least one region "
                f"each in every later layer its {held} take at least "
                f"{readable_bytes(result)}; raise max_bytes (the process needs more than that) or shrink the "
                f"bounds{lean}")

    def _region_chunk(self, index: np.ndarray, counts: dict, kept_bytes: int, whole_room: bool) -> "_GraphCutter":
        """A cutter for regions ``index`` of the layer just cut, as if they were all of it: earlier layers and maps
        shared, the layer's pre-activation maps on the regions' parents alone, the regions and bytes of earlier
        chunks (``counts`` per later layer, ``kept_bytes``) counted against the caps. Its maps may take
        :data:`REGION_WORKING_BYTES` beyond what it holds at the start (all the room left with ``whole_room``):
        temporaries grow with the maps, and the chunk's later layers chunk again past that."""
        layer = self.layers[-1]
        rows, local_row = np.unique(layer.pre_row[index], return_inverse=True)
        subset = LayerPartition(layer.polygons.subset(index), layer.parent[index], layer.packed_codes[index],
                                layer.pre_activation_rows(rows), layer.slope, layer.shape)
        subset.pre_row = local_row.reshape(-1)
        chunk = copy.copy(self)
        chunk.layers = self.layers[:-1] + [subset]
        chunk.maps, chunk.level, chunk.layer_of = dict(self.maps), dict(self.level), dict(self.layer_of)
        chunk.producers, chunk.pending, chunk.keep_output = {}, [], self.chunk_outputs_kept
        chunk.regions_before = {later: self.regions_before.get(later, 0) + count for later, count in counts.items()}
        chunk.outside_bytes = self.outside_bytes + kept_bytes + _result_bytes(layer)
        if not whole_room:
            chunk.max_bytes = min(self.max_bytes, chunk._held_bytes() + REGION_WORKING_BYTES)
        return chunk

    def _plan_span_after(self, relu: int, span: list[int]) -> "_SpanPlan | None":
        """:meth:`_plan_span` for the span of a ReLU whose layer is cut in chunks: planned on a stand-in layer."""
        self.layer_of[relu] = self.level[relu] = len(self.layers)
        node = self.graph.nodes[relu]
        n_parents = self.layers[-1].num_regions
        stand_in = LayerPartition(self.layers[-1].polygons, np.arange(n_parents), np.zeros((n_parents, math.ceil(
            math.prod(node.shape) / 8)), dtype=np.uint8), None, node.slope, node.shape)
        self.layers.append(stand_in)  # the Jacobian test counts regions: as many as the parents, at least
        try:
            return self._plan_span(relu, span)
        finally:
            self.layers.pop()

    def _jacobians(self, relu: int, dependent: list[int], stored: list[int]) -> dict | None:
        """Each stored span tensor's Jacobian with respect to ReLU node ``relu``'s output, (n_nodes, size)."""
        key = (relu, tuple(dependent), tuple(stored))
        if key not in self.jacobian_cache:
            self.jacobian_cache[key] = self._form_jacobians(relu, dependent, stored)
        return self.jacobian_cache[key]

    def _form_jacobians(self, relu: int, dependent: list[int], stored: list[int]) -> dict | None:
        nodes = self.graph.nodes
        n_nodes = math.prod(nodes[relu].shape)
        if n_nodes * max(math.prod(nodes[index].shape) for index in dependent) > MAX_JACOBIAN_ENTRIES:
            return None
        values = {relu: torch.eye(n_nodes, dtype=torch.float64).reshape(n_nodes, *nodes[relu].shape)}
        with torch.no_grad():
            for index in dependent:
                node = nodes[index]
                inputs = [values[source] if source in values else
                          torch.zeros((n_nodes, *input_of(self.graph, source)), dtype=torch.float64)
                          for source in node.inputs]
                values[index] = node.linear(*inputs)
        return {index: values[index].reshape(n_nodes, math.prod(nodes[index].shape)).numpy() for index in stored}

    def _source(self, source: int, level: int, index: np.ndarray | None = None) -> np.ndarray:
        """Maps of tensor ``source`` on regions ``index`` (default: all) of partition level ``level``:
        (len(index), 3, size). A stored tensor asked for on all regions of its own level comes back without a copy."""
        if index is None and self._held_whole(source, level):
            return self.maps[source]
        at = ancestors(self.layers, level, self.level[source])
        at = at if index is None else at[index]
        if source in self.layer_of:
            return self.layers[self.layer_of[source]].post_activations(at)
        return self.maps[source][at]

    def _held_whole(self, source: int, level: int) -> bool:
        """Whether tensor ``source`` is stored with one map per region of partition level ``level``."""
        return source in self.maps and self.level[source] == level

    def _evaluate(self, span: list[int], targets: list[int], level: int, index: np.ndarray | None = None,
                  zero_relu: int | None = None, out: np.ndarray | None = None) -> dict[int, np.ndarray]:
        """Maps of ``targets`` on regions ``index`` (default: all) of ``level``, by running the span's nodes.

        With ``zero_relu`` that ReLU node's output counts as zero (no offset, no slope): the span's part that does
        not depend on it. Results that do not vary from region to region come back as a single row. Only the nodes
        that ``targets`` depend on are run. Each chunk's maps are written into the result as they come (into ``out``,
        shape (len(index), 3, size), where given for a single target), not gathered and joined: that would hold them
        twice.
        """
        span = _needed_nodes(self.graph, span, targets)
        n_regions = 1 if level < 0 else self.layers[level].num_regions
        index = np.arange(n_regions) if index is None else index
        outside = _outside_inputs(self.graph, span) - {zero_relu}
        if zero_relu is not None and not outside:  # nothing varies from region to region: one row does
            index = index[:1]
        # the nodes' outputs and the tensors they read (a ReLU's output as wide as its layer) are formed per chunk
        widest = max([1] + [math.prod(input_of(self.graph, i)) for i in set(span) | outside])
        step = max(1, CHUNK_BYTES // (3 * 8 * widest * max(1, len(span))))
        result: dict[int, np.ndarray | None] = {}
        whole = set()  # targets whose first chunk is their result: all regions at once, a row that does not vary, zero
        for start in range(0, max(len(index), 1), step):
            chunk = index[start:start + step]
            values: dict[int, np.ndarray | None] = {}
            for node_index in span:
                node = self.graph.nodes[node_index]
                sources = [None if source == zero_relu else values[source] if source in values
                           else self._source(source, level, chunk) for source in node.inputs]
                values[node_index] = apply_affine(node, sources, [input_of(self.graph, s) for s in node.inputs])
            for target in targets:
                value = values[target]
                if start == 0:
                    if value is None or len(value) == len(index) or \
                            zero_relu is not None and len(value) == 1 < len(chunk):
                        result[target] = value
                        whole.add(target)
                        continue
                    result[target] = np.empty((len(index), *value.shape[1:])) if out is None else out
                if target not in whole:
                    result[target][start:start + len(chunk)] = value
            del values
        for target in targets:
            if result[target] is None:  # exactly zero
                result[target] = np.zeros((1, 3, math.prod(self.graph.nodes[target].shape)))
            if out is not None and result[target] is not out:  # one chunk, or a row that does not vary
                out[...] = result[target]
                result[target] = out
        return result


class _SpanPlan:
    """How to compute a span's stored tensors on any set of regions of its level (the whole layer or a chunk)."""

    def __init__(self, cutter: _GraphCutter, level: int, relu: int, dependent: list[int], stored: list[int],
                 jacobians):
        self.cutter, self.level, self.relu, self.dependent, self.stored = cutter, level, relu, dependent, stored
        self.jacobians = jacobians
        # else C is one row, the span's offsets alone (:meth:`_GraphCutter._evaluate` finds the same)
        self.constant_varies = bool(_outside_inputs(cutter.graph, dependent) - {relu})
        self.fixed_constants: dict[int, np.ndarray] = {}

    def constant(self, target: int, parents: np.ndarray) -> np.ndarray:
        """``C``: ``target`` with the ReLU's output set to zero, on regions ``parents`` of the level before, shape
        (len(parents), 3, size); one row (1, 3, size) where nothing older varies from region to region (kept).

        Computed for the parents asked for only: on every parent region at once it would be as large as the maps
        themselves (a skip connection's).
        """
        if target in self.fixed_constants:
            return self.fixed_constants[target]
        unique, inverse = np.unique(parents, return_inverse=True)
        rows = self.cutter._evaluate(self.dependent, [target], self.level - 1, unique, zero_relu=self.relu)[target]
        if not self.constant_varies:
            self.fixed_constants[target] = rows
        return rows if len(rows) == 1 else rows[inverse.reshape(-1)]

    def jacobian(self, target: int) -> np.ndarray | None:
        """``target``'s Jacobian with respect to the ReLU's output, or ``None`` where none was formed."""
        return None if self.jacobians is None else self.jacobians[target]

    def dense_jacobian(self, target: int) -> np.ndarray | None:
        """:meth:`jacobian` where it is filled enough (:data:`DENSE_FILL`) for a dense product, else ``None``."""
        jacobian = self.jacobian(target)
        return jacobian if jacobian is not None and np.count_nonzero(jacobian) >= DENSE_FILL * jacobian.size else None

    def maps(self, layer: LayerPartition, target: int) -> np.ndarray:
        """Maps of ``target`` on every region of ``layer`` (which stands at this plan's level)."""
        dense = self.dense_jacobian(target)
        if dense is not None and (3 * dense.size <= DIRECT_REGION_PRODUCT
                                  or 3 * layer.num_regions * dense.size <= SMALL_PRODUCT):
            return _dense_maps(layer, np.arange(layer.num_regions), dense,
                               lambda parents: self.constant(target, parents))
        return maps_from_heads(layer, self.jacobian(target), lambda index, out: self.direct(layer, target, index, out))

    def direct(self, layer: LayerPartition, target: int, index: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
        """Maps of ``target`` on regions ``index`` of ``layer`` without corrections (written into ``out`` where
        given)."""
        dense = self.dense_jacobian(target)
        if dense is None:
            return self.cutter._evaluate(self.dependent, [target], self.level, index, out=out)[target]
        return _dense_maps(layer, index, dense, lambda parents: self.constant(target, parents), out)


class _Producer:
    """Maps of a span tensor on chosen regions of its level, from head maps and corrections within them."""

    def __init__(self, layer: LayerPartition, plan: _SpanPlan, target: int):
        self.layer, self.plan, self.target = layer, plan, target
        self.n_parents, self.step = layer.num_regions, layer.num_regions
        cutter = plan.cutter  # the maps the span reads, kept for computing it again after the cut
        sources = {source for index in plan.dependent for source in cutter.graph.nodes[index].inputs}
        self.sources = {source: cutter.maps[source] for source in sources if source in cutter.maps}

    def __call__(self, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The maps on regions ``index``, (len(index), 3, size), written into ``out`` where given."""
        maps = self.plan.cutter.maps
        restored = [source for source in self.sources if source not in maps]
        maps.update({source: self.sources[source] for source in restored})
        try:
            return self._maps(index, out)
        finally:
            for source in restored:
                del maps[source]

    def _maps(self, index: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        layer = self.layer
        return maps_from_heads(regions_of(layer, index, layer._pre_activations), self.plan.jacobian(self.target),
                               lambda local, into: self.plan.direct(layer, self.target, index[local], into), out)


def _join_polygons(parts: list[Polygons]) -> Polygons:
    """:meth:`Polygons.concatenate` through :func:`concatenate_freeing`: ``parts`` is emptied."""
    if not parts:
        return Polygons.concatenate(parts)
    vertices, counts = [part.vertices for part in parts], [part.counts for part in parts]
    parts.clear()
    return Polygons(concatenate_freeing(vertices), concatenate_freeing(counts))


def _keep_later_layers(chunk: _GraphCutter, level: int, start: int, parts: dict, counts: dict) -> int:
    """Append to ``parts`` what the result keeps of the later layers of a region chunk (regions from ``start`` on of
    layer ``level``), its parents as rows of the whole layers (``counts``: each later layer's regions so far, updated);
    returns the bytes kept. Nothing else of the chunk is held: a layer of it would keep alive the maps its
    recomputation reads (256 MiB on the MaxPool CNN's canvas)."""
    offsets, kept_bytes = {level: start} | dict(counts), 0
    for later_level, kept in parts.items():
        layer = chunk.layers[later_level]
        kept["pieces"].append(layer.polygons), kept["codes"].append(layer.packed_codes)
        kept["parent"].append(layer.parent + offsets[later_level - 1])  # from the chunk's rows to the whole layer's
        counts[later_level] += layer.num_regions
        kept_bytes += _result_bytes(layer)
    return kept_bytes


def _outside_inputs(graph: Graph, span: list[int]) -> set[int]:
    """The tensors the nodes ``span`` read that they do not compute themselves."""
    return {source for index in span for source in graph.nodes[index].inputs} - set(span)


def _result_bytes(layer: LayerPartition) -> int:
    """Bytes of what the result keeps of a layer: its polygons (vertices and counts), parents and packed codes."""
    return layer.polygons.vertices.nbytes + layer.polygons.counts.nbytes + layer.parent.nbytes + \
        layer.packed_codes.nbytes


def _needed_nodes(graph: Graph, span: list[int], targets: list[int]) -> list[int]:
    """The nodes of ``span`` (in order) that ``targets`` depend on, the targets included."""
    needed = set(targets)
    for index in reversed(span):
        if index in needed:
            needed.update(graph.nodes[index].inputs)
    return [index for index in span if index in needed]


def _span_end(graph: Graph, relu: int) -> int:
    """The node after ReLU node ``relu``'s span: the next ReLU node, or the number of nodes if there is none."""
    return next((j for j in range(relu + 1, len(graph.nodes)) if isinstance(graph.nodes[j], ReluNode)),
                len(graph.nodes))


def _worth_a_jacobian(layer: LayerPartition) -> bool:
    """Whether forming the span's Jacobian (one pass of the span per node of the layer) costs less than running the
    span on every region (three passes per region), and there are enough regions for head maps to pay off."""
    return layer.num_regions >= 4 * RESTART and 3 * layer.num_regions >= layer.num_nodes


def _dense_maps(layer: LayerPartition, index: np.ndarray, jacobian: np.ndarray, constant,
                out: np.ndarray | None = None) -> np.ndarray:
    """``z(r) J + C(parent(r))`` on regions ``index`` of ``layer`` through the dense Jacobian, in bounded chunks;
    ``constant(parents)`` gives ``C`` on those parents (:meth:`_SpanPlan.constant`).

    BLAS does a multiply-add ~15x faster than a float64 convolution; the layer's outputs ``z`` are formed a chunk of
    regions at a time, never for all regions at once. ``C`` is computed for chunks of :data:`CHUNK_BYTES` (for a
    residual span that runs the span on each parent, at a fixed cost per call); the products within them take chunks of about
    :data:`PRODUCT_CHUNK_BYTES` that stay in cache, but never read fewer bytes of ``z`` than of ``J``.
    """
    n_nodes, size = jacobian.shape
    maps = np.empty((len(index), 3, size)) if out is None else out
    step = max(1, CHUNK_BYTES // (3 * 8 * max(n_nodes, 1)))
    product_step = max(1, PRODUCT_CHUNK_BYTES // (3 * 8 * max(n_nodes, 1)), -(-size // 3))
    # layer outputs formed from kept maps are safe to form in threads (recomputed ones are formed by the cutter)
    threads = product_threads() if layer._pre_activations is not None else 1

    def products(first_chunk: int, last_chunk: int) -> None:
        for first in firsts[first_chunk:last_chunk]:
            last = min(first + product_step, stop)
            post = layer.post_activations(index[first:last]).reshape(3 * (last - first), n_nodes)
            np.matmul(post, jacobian, out=maps[first:last].reshape(3 * (last - first), size))

    for start in range(0, len(index), step):
        stop = min(start + step, len(index))
        firsts = range(start, stop, product_step)
        run_blocks(products, work_blocks(np.full(len(firsts), min(product_step, stop - start) * n_nodes * size),
                                         threads, BLOCK_MULTIPLY_ADDS))
        maps[start:stop] += constant(layer.parent[index[start:stop]])
    return maps


def _inputs(node) -> tuple[int, ...]:
    return node.inputs if isinstance(node, AffineNode) else (node.input,)
