"""Region chunks: when a span's maps on every region of a layer would not fit in ``max_bytes``, the engine computes
the span and every later layer a chunk of that layer's regions at a time
(``_GraphCutter._continue_in_region_chunks``). The result must be the whole partition itself: the same regions in
the same order, the same codes and parents, the same maps up to rounding, checked against the model's own forward.

A cap that makes every layer's span too large for ``max_bytes`` forces chunks of a few regions at every layer, so
the chunks nest (a chunk's later layers are chunked again).
"""
import warnings

import numpy as np
import pytest
import torch

import spline_utils as su
from spline_utils.engine import graph_partition, tiling
from spline_utils.engine.network_maps import CodedForward
from tests.helpers import assert_agrees_with_the_models_forward, held_bytes
from spline_utils.engine.tolerance import ResolutionWarning
from tests.test_partition import random_mlp, stream_every_layer
from tests.test_tiling import cases, record_tiles

REGIONS_PER_CHUNK = 8


def chunk_every_span(monkeypatch, max_bytes: int = 2**30) -> list[int]:
    """Count each region's span maps as ``max_bytes / (2 * REGIONS_PER_CHUNK)`` bytes, so that every layer with a
    span read later is continued in chunks of about ``REGIONS_PER_CHUNK`` regions; returns the list that records the
    number of regions of each layer that was."""
    continued = []
    run = graph_partition._GraphCutter._continue_in_region_chunks

    def recording(cutter, relu, span, end):
        continued.append(cutter.layers[-1].num_regions)
        return run(cutter, relu, span, end)

    monkeypatch.setattr(graph_partition._GraphCutter, "_span_bytes_per_region",
                        lambda cutter, relu, streamed: max_bytes // (2 * REGIONS_PER_CHUNK))
    monkeypatch.setattr(graph_partition._GraphCutter, "_continue_in_region_chunks", recording)
    return continued


@pytest.mark.parametrize("streamed", [False, True], ids=["held", "streamed"])
@pytest.mark.parametrize("name", ["mlp", "residual", "maxpool-cnn"])
def test_a_partition_continued_in_region_chunks_is_the_whole_partition(monkeypatch, name, streamed):
    model, bounds, plane = cases()[name]
    whole = su.partition2d(model, bounds, plane=plane)
    if streamed:
        stream_every_layer(monkeypatch)
    continued = chunk_every_span(monkeypatch)
    chunked = su.partition2d(model, bounds, plane=plane)
    assert len(continued) > len(whole.layers)  # chunks were chunked again
    assert max(continued) > 10 * REGIONS_PER_CHUNK
    for layer, whole_layer in zip(chunked.layers, whole.layers, strict=True):
        np.testing.assert_array_equal(layer.packed_codes, whole_layer.packed_codes)
        np.testing.assert_array_equal(layer.parent, whole_layer.parent)
        np.testing.assert_array_equal(layer.polygons.counts, whole_layer.polygons.counts)
        np.testing.assert_allclose(layer.polygons.vertices, whole_layer.polygons.vertices, rtol=0, atol=1e-12)
        np.testing.assert_allclose(layer.pre_activations, whole_layer.pre_activations, rtol=0, atol=1e-12)
    assert isinstance(chunked.layers[-1]._recompute, CodedForward)  # the chunks' maps were not kept
    assert not callable(chunked._level_output_maps)  # their output maps were
    np.testing.assert_allclose(chunked.output_maps(), whole.output_maps(), rtol=0, atol=1e-12)
    assert_agrees_with_the_models_forward(chunked, model, plane)


@pytest.mark.parametrize("name", ["mlp", "residual", "maxpool-cnn"])
def test_output_maps_not_kept_are_computed_from_the_codes_when_asked_for(monkeypatch, name):
    """``keep_output_maps=False``: the chunks do not form their output maps; the partition computes them from the
    codes when first asked for, equal to the whole run's."""
    model, bounds, plane = cases()[name]
    whole = su.partition2d(model, bounds, plane=plane)
    continued = chunk_every_span(monkeypatch)
    formed = []
    plan_maps = graph_partition._SpanPlan.maps
    monkeypatch.setattr(graph_partition._SpanPlan, "maps", lambda plan, layer, target: formed.append(target) or
                        plan_maps(plan, layer, target))
    chunked = su.partition2d(model, bounds, plane=plane, keep_output_maps=False)
    assert continued and callable(chunked._level_output_maps)
    assert chunked.network.output not in formed  # no chunk formed them
    np.testing.assert_allclose(chunked.output_maps(), whole.output_maps(), rtol=0, atol=1e-12)
    assert_agrees_with_the_models_forward(chunked, model, plane)
    with pytest.raises(TypeError, match="keep_output_maps must be True or False"):
        su.partition2d(model, bounds, plane=plane, keep_output_maps=0)


def test_the_region_cap_counts_the_regions_of_every_chunk(monkeypatch):
    model, bounds, plane = cases()["maxpool-cnn"]
    whole = su.partition2d(model, bounds, plane=plane)
    chunk_every_span(monkeypatch)
    assert su.partition2d(model, bounds, plane=plane, max_regions=whole.num_regions).num_regions == whole.num_regions
    with pytest.raises(su.PartitionTooLarge, match=f"more than max_regions={whole.num_regions - 1}"):
        su.partition2d(model, bounds, plane=plane, max_regions=whole.num_regions - 1)


def test_a_network_ending_in_a_relu_continued_in_chunks_has_its_last_layers_outputs(monkeypatch):
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 4), torch.nn.ReLU())
    whole = su.partition2d(model, (-3.0, 3.0, -3.0, 3.0))
    chunk_every_span(monkeypatch)
    chunked = su.partition2d(model, (-3.0, 3.0, -3.0, 3.0))
    np.testing.assert_array_equal(chunked.codes, whole.codes)
    np.testing.assert_allclose(chunked.output_maps(), whole.output_maps(), rtol=0, atol=1e-12)


def test_resolution_warnings_come_once_a_layer_with_the_whole_runs_counts(monkeypatch):
    """Each chunk's cut counts the lines that came within the resolution of a corner; the partition warns once a
    layer with the sums, the same warnings as the whole run (at +-1e9 the resolution is 0.1 and regions merge)."""
    model, bounds = random_mlp((2, 16, 16, 16, 2), final_activation=False), (-1e9, 1e9, -1e9, 1e9)

    def warned():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            su.partition2d(model, bounds)
        return [str(warning.message) for warning in caught if warning.category is ResolutionWarning]

    whole = warned()
    assert whole
    continued = chunk_every_span(monkeypatch)
    assert warned() == whole
    assert continued


def test_a_partition_larger_than_max_bytes_itself_is_refused_without_tiles(monkeypatch):
    """The chunks' later layers are the result: once they (and at least one region a later layer for each region
    still to do) exceed ``max_bytes``, neither chunks nor tiles can help, so the engine stops, saying so."""
    model, bounds, plane = cases()["maxpool-cnn"]
    whole = su.partition2d(model, bounds, plane=plane)
    result_bytes = sum(layer.polygons.vertices.nbytes + layer.polygons.counts.nbytes + layer.parent.nbytes +
                       layer.packed_codes.nbytes for layer in whole.layers) + whole.output_maps().nbytes
    max_bytes = result_bytes // 3
    continued = chunk_every_span(monkeypatch, max_bytes)
    monkeypatch.setattr(tiling, "_split", lambda *args: pytest.fail("tiles cannot hold a result that does not fit"))
    with pytest.raises(su.PartitionTooLarge, match=f"the partition itself needs more than max_bytes={max_bytes}") \
            as refused:
        su.partition2d(model, bounds, plane=plane, max_bytes=max_bytes)
    assert continued
    assert "polygons, codes and output maps" in str(refused.value)
    assert "or pass keep_output_maps=False, which leaves the output maps" in str(refused.value)
    with pytest.raises(su.PartitionTooLarge) as refused_lean:  # without output maps: still too large, and it says so
        su.partition2d(model, bounds, plane=plane, max_bytes=max_bytes // 2, keep_output_maps=False)
    assert "its polygons and codes take" in str(refused_lean.value)
    assert "keep_output_maps" not in str(refused_lean.value)


def test_chunks_with_no_working_room_fall_back_to_single_regions_with_all_the_room(monkeypatch):
    """A chunk whose maps do not fit its working room is halved down to one region, which then gets all the room
    left: the result is still the whole partition."""
    model, bounds, plane = cases()["maxpool-cnn"]
    whole = su.partition2d(model, bounds, plane=plane)
    chunk_every_span(monkeypatch)
    monkeypatch.setattr(graph_partition, "REGION_WORKING_BYTES", 1)
    rooms, make_chunk = [], graph_partition._GraphCutter._region_chunk
    monkeypatch.setattr(graph_partition._GraphCutter, "_region_chunk", lambda cutter, index, counts, kept, whole_room:
                        rooms.append((len(index), whole_room)) or make_chunk(cutter, index, counts, kept, whole_room))
    chunked = su.partition2d(model, bounds, plane=plane)
    assert (1, True) in rooms and any(size > 1 for size, _ in rooms)
    np.testing.assert_array_equal(chunked.codes, whole.codes)
    np.testing.assert_allclose(chunked.output_maps(), whole.output_maps(), rtol=0, atol=1e-12)


def test_a_tiles_region_chunks_keep_their_output_maps(monkeypatch):
    """The merge of tiles reads every tile's output maps at once: a tile continued in region chunks keeps them
    rather than computing them again from the codes (a forward pass of the network per region)."""
    model, bounds, plane = cases()["maxpool-cnn"]
    whole = su.partition2d(model, bounds, plane=plane)
    whole_and_tiled_budget = held_bytes(whole) // 2
    continued = chunk_every_span(monkeypatch, whole_and_tiled_budget)
    tiles = record_tiles(monkeypatch)
    monkeypatch.setattr(CodedForward, "on_every_region", lambda coded: pytest.fail("a tile's outputs were dropped"))
    tiled = su.partition2d(model, bounds, plane=plane, max_bytes=whole_and_tiled_budget, keep_output_maps=False)
    assert len(tiles) > 1 and continued  # tiles, and region chunks in them
    assert tiled.num_regions == whole.num_regions
    assert_agrees_with_the_models_forward(tiled, model, plane)
