"""Partitions whose maps do not fit in memory at once: the domain cut into tiles, each partitioned alone, then merged.

The region of the partition after hidden layer ``l`` that holds a point is the set of points with the same codes in
layers ``0..l``; it is convex (each layer's pre-activations are affine on a region of the previous layer, so its
code adds half-planes). Pieces of it found in different tiles are therefore parts of one convex polygon, and their
union is the convex hull of their vertices: merging the tiles' pieces with equal codes gives the partition of the
whole domain exactly, layer by layer. No tile's maps are kept: a merged layer computes its pre-activations again on
request by running the network with each region's gains fixed (:class:`~spline_utils.engine.network_maps.CodedForward`).
"""
from __future__ import annotations

import gc
import math

import numpy as np

from spline_utils.engine.free_memory import release_free_memory
from spline_utils.engine.graph_partition import graph_partition2d
from spline_utils.engine.hull_kernel import merged_regions
from spline_utils.engine.network_maps import CodedForward
from spline_utils.engine.partition import LayerPartition, MapsTooLarge, Partition, readable_bytes
from spline_utils.engine.polygons import Polygons, rectangle
from spline_utils.engine.region_bound import PartitionTooLarge, too_large
from spline_utils.engine.tolerance import Frame
from spline_utils.reading.graph_ir import Graph

MIN_TILE_REGIONS = 1000  # max_bytes must hold the maps of this many regions for tiles to be worth their overhead
MAX_TILES = 256  # more tiles than this: refused (each tile pays the per-call cost of every layer)
MAX_SPLITS = 3  # a tile refused after this many splits (1/8 of the domain's side or less at 2x2): refused
TILE_HEADROOM = 2  # a refused tile is cut into about this many times (maps needed / max_bytes) tiles


def partition_in_tiles(graph: Graph, bounds: tuple, plane, input_state: np.ndarray, frame: Frame,
                       max_regions: int, max_bytes: int, keep_output_maps: bool = True) -> Partition:
    """The partition of the rectangle ``bounds``, in tiles when its maps would hold more than ``max_bytes`` at once.

    The whole rectangle is tried first; when the memory cap stops it, the rectangle is cut into tiles, and a tile
    that the cap stops again into smaller ones, at most :data:`MAX_SPLITS` times. Raises :class:`PartitionTooLarge`
    when ``max_bytes`` holds the maps of fewer than :data:`MIN_TILE_REGIONS` regions, when a tile split
    :data:`MAX_SPLITS` times is still too large (regions that crowd around a point: a smaller tile would not hold
    fewer of them), or when more than :data:`MAX_TILES` tiles would be needed. Without ``keep_output_maps`` the
    whole rectangle's region chunks leave their output maps to be computed when asked; tiles keep theirs.
    """
    jacobians = {}  # the same for every tile

    def run(tile):  # a tile's output maps are merged at once: kept even where its layers run in region chunks
        return graph_partition2d(graph, tile, plane, input_state, rectangle(tile), frame, max_regions, max_bytes,
                                 jacobians, chunk_outputs_kept=keep_output_maps or tile is not bounds)

    try:
        return run(bounds)
    except MapsTooLarge as error:
        if max_bytes < MIN_TILE_REGIONS * error.bytes_per_region:
            raise
        pending, done = [(tile, 1) for tile in _split(bounds, error)], []
        del error
    gc.collect()  # the refused run's maps, held in reference cycles through the traceback
    while pending:
        tile, splits = pending.pop()
        try:
            done.append(_TilePieces(run(tile)))
            release_free_memory()  # the tile's maps and temporaries, freed among the tiles kept
        except MapsTooLarge as error:
            if splits == MAX_SPLITS or len(done) + len(pending) > MAX_TILES:
                raise PartitionTooLarge(
                    f"the per-region maps need more than max_bytes={max_bytes} ({readable_bytes(max_bytes)}) even "
                    f"in tiles: the tile a in [{tile[0]:.6g}, {tile[1]:.6g}], b in [{tile[2]:.6g}, {tile[3]:.6g}] "
                    f"still does: {str(error).split(';')[0]}; the regions crowd around a point there, so smaller "
                    "tiles would not help; shrink the bounds, use a smaller model, or raise max_bytes") from None
            pending += [(part, splits + 1) for part in _split(tile, error)]
            del error
            gc.collect()  # the failed tile's maps, held in reference cycles through the traceback
    return merge_tiles(done, graph, bounds, plane, input_state, frame, max_regions)


def _split(tile: tuple, error: MapsTooLarge) -> list[tuple]:
    """``tile`` cut into a k x k grid of tiles, k from how far the maps exceeded the cap; last tile first."""
    side = max(2, math.ceil(math.sqrt(TILE_HEADROOM * error.needed / error.max_bytes)))
    xs, ys = np.linspace(tile[0], tile[1], side + 1), np.linspace(tile[2], tile[3], side + 1)
    xs[-1], ys[-1] = tile[1], tile[3]
    return [(xs[i], xs[i + 1], ys[j], ys[j + 1]) for j in reversed(range(side)) for i in reversed(range(side))]


class _TilePieces:
    """What the merge needs of one tile's partition: every layer's pieces, parents and codes, the output maps."""

    def __init__(self, partition: Partition):
        self.layers = [(layer.polygons, layer.parent, layer.packed_codes) for layer in partition.layers]
        self.output_maps = partition.output_maps()


def merge_tiles(tiles: list[_TilePieces], graph: Graph, bounds: tuple, plane, input_state: np.ndarray, frame: Frame,
                max_regions: int) -> Partition:
    """One partition of ``bounds`` from the partitions of tiles that cover it: pieces with equal codes merged.

    Regions of a layer are ordered by their parent, then by their codes. Each tile's pieces of a layer are let go
    once that layer is merged, so the merge holds about one layer's pieces twice, not the whole result.
    """
    relus = [graph.nodes[index] for index in graph.relu_nodes]
    region_of_piece = [np.zeros(1, dtype=np.int64) for _ in tiles]  # each tile's pieces -> regions of the layer
    layers: list[LayerPartition] = []
    for level, relu in enumerate(relus):
        keys = np.concatenate([_piece_keys(region_of_piece[t][tile.layers[level][1]], tile.layers[level][2])
                               for t, tile in enumerate(tiles)])
        piece_counts = [len(tile.layers[level][1]) for tile in tiles]
        _, first, region = np.unique(keys.view(np.dtype((np.void, keys.shape[1]))).ravel(), return_index=True,
                                     return_inverse=True)
        if len(first) > max_regions:
            raise too_large(level, f"has {len(first)} regions, more than max_regions={max_regions}")
        parent = keys[first, :8].view(">i8").reshape(-1).astype(np.int64)
        codes = keys[first, 8:]
        del keys
        pieces = Polygons.concatenate([tile.layers[level][0] for tile in tiles])
        for tile in tiles:
            tile.layers[level] = None
        polygons = merge_pieces(pieces, region.reshape(-1), len(first), frame)
        del pieces
        layers.append(LayerPartition(polygons, parent, codes, None, relu.slope, relu.shape,
                                     recompute=CodedForward(graph, input_state, layers, level)))
        region_of_piece = np.split(region.reshape(-1), np.cumsum(piece_counts)[:-1])
    final = np.concatenate([tile.output_maps for tile in tiles])  # one row per piece of the last layer
    for tile in tiles:
        tile.output_maps = None
    return Partition(graph, bounds, plane, rectangle(bounds), layers, final[first], len(layers) - 1)


def _piece_keys(parent: np.ndarray, packed_codes: np.ndarray) -> np.ndarray:
    """Each piece's parent region (8 bytes, big-endian, so that keys sort by parent first), then its packed code:
    uint8 (n_pieces, 8 + n_code_bytes)."""
    return np.concatenate([parent.astype(">i8").view(np.uint8).reshape(-1, 8), packed_codes], axis=1)


def merge_pieces(pieces: Polygons, region: np.ndarray, n_regions: int, frame: Frame) -> Polygons:
    """Polygon ``g`` is the convex hull of the pieces ``i`` with ``region[i] == g``, without vertices on a straight
    edge; a region of one piece is that piece.

    A turn smaller than 1e-12 of the domain's size squared counts as straight: the vertices the tile borders add on a
    region's edges are dropped, the region's own corners kept.
    """
    piece_order = np.argsort(region, kind="stable")
    region_first = np.searchsorted(region[piece_order], np.arange(n_regions + 1))
    vertices, counts = merged_regions(pieces.vertices, pieces.starts, pieces.counts, piece_order, region_first,
                                      1e-12 * frame.half**2)
    return Polygons(vertices, counts)
