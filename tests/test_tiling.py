"""Partitions in tiles (spline_utils.engine.tiling) equal the whole partition, checked by the model's own forward.

A small ``max_bytes`` makes the engine refuse the whole domain and cut it into tiles; the merged partition must have
the same regions per layer (as sets of codes), the same areas and vertices, output maps equal to the model's
forward at interior points, and pre-activation maps (computed again from the codes) equal to the whole run's.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
from spline_utils.engine import graph_partition, hull_kernel, tiling
from tests.helpers import assert_agrees_with_the_models_forward, held_bytes, randomize_batchnorm


class Residual(nn.Module):
    def __init__(self, width=16, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Linear(2, width)
        self.block = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, width))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(h + self.block(h))
        return self.head(h)


def cases():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(),
                        nn.Linear(24, 3))
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(3, 3))
    plane = su.image_canvas(torch.rand(1, 6, 6), torch.rand(1, 6, 6))
    return {"mlp": (mlp, (-2.0, 2.0, -2.0, 2.0), None),
            "residual": (randomize_batchnorm(Residual(), seed=1), (-4.0, 4.0, -3.0, 5.0), None),
            "maxpool-cnn": (cnn, (-1.0, 2.0, -1.0, 2.0), plane)}


def whole_and_tiled(monkeypatch, model, bounds, plane, shrink=2):
    """The partition computed whole, and again with ``max_bytes`` a ``shrink``-th of what the whole one held."""
    whole = su.partition2d(model, bounds, plane=plane)
    held = held_bytes(whole)
    tiles = record_tiles(monkeypatch)
    tiled = su.partition2d(model, bounds, plane=plane, max_bytes=max(1, held // shrink))
    return whole, tiled, tiles


def record_tiles(monkeypatch) -> list:
    """Let tiles hold as few as one region's maps; returns the list that records each rectangle the engine runs."""
    monkeypatch.setattr(tiling, "MIN_TILE_REGIONS", 1)
    tiles = []
    run = graph_partition.graph_partition2d
    monkeypatch.setattr(tiling, "graph_partition2d", lambda graph, tile, *rest, **options: tiles.append(tile) or
                        run(graph, tile, *rest, **options))
    return tiles


def by_code(partition, layer):
    """Row of each region of ``layer`` by its codes: {packed codes: index}."""
    return {row.tobytes(): index for index, row in enumerate(np.packbits(partition.codes_up_to(layer), axis=1))}


@pytest.mark.parametrize("name", ["mlp", "residual", "maxpool-cnn"])
def test_a_partition_in_tiles_equals_the_whole_partition(monkeypatch, name):
    model, bounds, plane = cases()[name]
    whole, tiled, tiles = whole_and_tiled(monkeypatch, model, bounds, plane)
    assert len(tiles) > 4  # the whole domain was refused, then tiles ran
    assert [layer.num_regions for layer in tiled.layers] == [layer.num_regions for layer in whole.layers]
    assert whole.num_regions > 100
    for layer in range(len(whole.layers)):
        whole_rows, tiled_rows = by_code(whole, layer), by_code(tiled, layer)
        assert whole_rows.keys() == tiled_rows.keys()
        match = np.array([whole_rows[key] for key in tiled_rows])
        order = np.array(list(tiled_rows.values()))
        np.testing.assert_allclose(tiled.layers[layer].polygons.areas()[order],
                                   whole.layers[layer].polygons.areas()[match], rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(tiled.layers[layer].polygons.counts[order],
                                      whole.layers[layer].polygons.counts[match])
        parents = whole.layers[layer].parent[match]
        tiled_parents = tiled.layers[layer].parent[order]
        if layer:
            parent_match = np.array([by_code(whole, layer - 1)[key] for key in by_code(tiled, layer - 1)])
            np.testing.assert_array_equal(parent_match[tiled_parents], parents)
            rows = np.arange(len(parent_match))[::-3]  # a few parents, out of order: computed for those alone
            np.testing.assert_allclose(tiled.layers[layer].pre_activation_rows(rows),
                                       whole.layers[layer].pre_activations[parent_match[rows]], atol=1e-12)
            np.testing.assert_allclose(tiled.layers[layer].pre_activations,
                                       whole.layers[layer].pre_activations[parent_match], atol=1e-12)
    np.testing.assert_allclose(tiled.areas().sum(), np.prod(np.diff(np.reshape(bounds, (2, 2))), axis=None),
                               rtol=1e-12)
    assert_agrees_with_the_models_forward(tiled, model, plane)
    np.testing.assert_allclose(np.abs(tiled.layer_spline_segments(1)[:, 1] - tiled.layer_spline_segments(1)[:, 0])
                               .sum(), np.abs(whole.layer_spline_segments(1)[:, 1] -
                                              whole.layer_spline_segments(1)[:, 0]).sum(), rtol=1e-9)


def test_tiles_are_refused_when_max_bytes_holds_too_few_regions():
    model = cases()["mlp"][0]
    with pytest.raises(su.PartitionTooLarge, match="max_bytes"):
        su.partition2d(model, max_bytes=20_000)


def test_too_many_tiles_are_refused_with_a_clear_message(monkeypatch):
    model, bounds, plane = cases()["mlp"]
    monkeypatch.setattr(tiling, "MIN_TILE_REGIONS", 1)
    monkeypatch.setattr(tiling, "MAX_TILES", 4)
    with pytest.raises(su.PartitionTooLarge, match="even in tiles: the tile a in"):
        su.partition2d(model, bounds, max_bytes=40_000)  # holds the partition itself, not its maps


def test_the_convex_hull_of_a_region_split_by_tile_borders_has_only_its_corners():
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    pieces = [square * [0.5, 1.0], square * [0.5, 1.0] + [0.5, 0.0]]  # the square cut at x = 0.5
    hull = hull_kernel.hull(np.concatenate(pieces), 1e-12)
    assert len(hull) == 4
    np.testing.assert_allclose(sorted(map(tuple, hull)), sorted(map(tuple, square)))
    signed_area = 0.5 * (np.dot(hull[:, 0], np.roll(hull[:, 1], -1)) - np.dot(hull[:, 1], np.roll(hull[:, 0], -1)))
    assert signed_area == pytest.approx(1.0)  # counter-clockwise
