"""Region chunks: when a span's maps on every region of a layer would not fit in ``max_bytes``, the engine computes
the span and every later layer a chunk of that layer's regions at a time
(``_GraphCutter._continue_in_region_chunks``). The result must be the whole partition itself: the same regions in
the same order, the same codes and parents, the same maps up to rounding, checked against the model's own forward.

A cap that makes every layer's span too large for ``max_bytes`` forces chunks of a few regions at every layer, so
the chunks nest (a chunk's later layers are chunked again).
"""
import re
import sys
import warnings
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import spline_utils as su
from spline_utils.engine import free_memory, graph_partition, polygons, tiling
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


@pytest.mark.parametrize("name", ["residual", "maxpool-cnn"])
def test_nothing_a_finished_region_chunk_formed_is_held_while_the_next_chunk_runs(monkeypatch, name):
    """Each span map a region chunk forms (and its own chunks form) must be freed by the time its parent starts the
    next chunk: a chunk's maps are as large as the room allows, and one finished chunk's held beside the next one
    took 256 MiB beyond the engine's count on the MaxPool CNN's canvas."""
    model, bounds, plane = cases()[name]
    stream_every_layer(monkeypatch)
    chunk_every_span(monkeypatch)
    formed = []  # (cutter that formed it, weak reference to the maps): all but the output maps, which are kept
    plan_maps = graph_partition._SpanPlan.maps

    def recorded_maps(plan, layer, target):
        maps = plan_maps(plan, layer, target)
        if target != plan.cutter.graph.output:
            formed.append((getattr(plan.cutter, "serial", None), weakref.ref(maps)))
        return maps

    monkeypatch.setattr(graph_partition._SpanPlan, "maps", recorded_maps)
    parent_of, checked = {}, []  # chunk -> the cutter that made it (numbered: ids come back); maps found freed
    make_chunk = graph_partition._GraphCutter._region_chunk

    def descends_from(serial, ancestor) -> bool:
        while serial in parent_of:
            serial = parent_of[serial]
            if serial == ancestor:
                return True
        return False

    def region_chunk(cutter, *arguments):
        serial = getattr(cutter, "serial", None)
        earlier = [maps for by, maps in formed if descends_from(by, serial)]
        assert all(maps() is None for maps in earlier), "maps formed by a finished chunk are still held"
        checked.append(len(earlier))
        chunk = make_chunk(cutter, *arguments)
        chunk.serial = len(parent_of)
        parent_of[chunk.serial] = serial
        return chunk

    monkeypatch.setattr(graph_partition._GraphCutter, "_region_chunk", region_chunk)
    partition = su.partition2d(model, bounds, plane=plane)
    assert sum(checked) > 20  # many maps of finished chunks were checked
    assert_agrees_with_the_models_forward(partition, model, plane)


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


@pytest.mark.parametrize("name, streamed, first", [("residual", False, 0), ("maxpool-cnn", False, 0),
                                                   ("maxpool-cnn", True, 3)], ids=["residual", "maxpool", "streamed"])
def test_span_maps_that_would_take_most_of_the_room_are_formed_a_region_chunk_at_a_time(monkeypatch, name, streamed,
                                                                                          first):
    """Span maps on every region of a layer that would fill three quarters of the room are not formed: they would
    stay held while every later layer squeezed into the quarter left. The layer continues in region chunks, each
    forming its own regions' span maps, and the result is still the whole partition. Streamed (the earlier
    layers' spans made to fit), the MaxPool CNN's fourth layer is cut a chunk of parents at a time and stops forming
    its span maps (the running maximum) once they pass half the room."""
    model, bounds, plane = cases()[name]
    whole = su.partition2d(model, bounds, plane=plane)
    max_bytes = 2**30
    if streamed:
        stream_every_layer(monkeypatch)
    monkeypatch.setattr(graph_partition._GraphCutter, "_span_bytes_per_region", lambda cutter, relu, streamed: 0 if
                        cutter.graph.relu_nodes.index(relu) < first else
                        3 * max_bytes // (4 * whole.layers[cutter.graph.relu_nodes.index(relu)].num_regions))
    continued = []  # (layer, whether it was cut a chunk of parents at a time) of each layer continued in chunks
    run = graph_partition._GraphCutter._continue_in_region_chunks
    monkeypatch.setattr(graph_partition._GraphCutter, "_continue_in_region_chunks", lambda cutter, relu, *rest:
                        continued.append((len(cutter.layers) - 1, cutter.layers[-1]._pre_activations is None)) or
                        run(cutter, relu, *rest))
    chunked = su.partition2d(model, bounds, plane=plane, max_bytes=max_bytes)
    assert continued[0] == (first, streamed)
    np.testing.assert_array_equal(chunked.codes, whole.codes)
    np.testing.assert_allclose(chunked.output_maps(), whole.output_maps(), rtol=0, atol=1e-12)
    assert_agrees_with_the_models_forward(chunked, model, plane)


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


@pytest.mark.parametrize("shapes", [[(5, 3, 4), (1, 3, 4), (0, 3, 4), (7, 3, 4)], [(4,)], [(2, 2), (3, 2)]])
def test_parts_joined_freeing_each_one_equal_numpys_concatenation(shapes):
    generator = np.random.default_rng(0)
    parts = [generator.normal(size=shape) for shape in shapes]
    expected = np.concatenate(parts)
    given = list(parts)
    joined = free_memory.concatenate_freeing(given)
    assert given == [] and joined.shape == expected.shape and np.array_equal(joined, expected)
    pieces = [polygons.Polygons(part.reshape(-1, 2), np.full(len(part.reshape(-1, 2)) // 2, 2)) for part in parts
              if part.size % 4 == 0]
    expected_polygons = polygons.Polygons.concatenate(pieces)
    given = list(pieces)
    joined_polygons = graph_partition._join_polygons(given)
    assert given == [] and np.array_equal(joined_polygons.vertices, expected_polygons.vertices)
    assert np.array_equal(joined_polygons.counts, expected_polygons.counts)


def _resident_bytes(field: str) -> int:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, from /proc/self/status."""
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


@pytest.mark.skipif(free_memory.heap_free_bytes() == 0, reason="needs glibc's mallinfo2 and malloc_trim")
def test_joining_small_parts_gives_their_memory_back_as_it_goes(monkeypatch):
    """Parts of 96 KiB live in the heap, where freeing them does not return their memory: the join releases it every
    FREE_BYTES_TO_TRIM bytes copied (16 MiB here), so 160 MiB of parts are joined within a fraction of their size
    more, where np.concatenate takes all of it (a region-chunked layer's thousands of parts)."""
    monkeypatch.setattr(free_memory, "FREE_BYTES_TO_TRIM", 2**24)
    n_parts, part_values = 1706, 96 * 128

    def peak_above_the_parts(join) -> int:
        parts = [np.full(part_values, float(index)) for index in range(n_parts)]
        Path("/proc/self/clear_refs").write_text("5")
        before = _resident_bytes("VmRSS")
        joined = join(parts)
        del parts
        peak = _resident_bytes("VmHWM") - before
        assert np.array_equal(joined[::part_values], np.arange(n_parts, dtype=float))
        return peak

    total = n_parts * part_values * 8
    assert peak_above_the_parts(np.concatenate) >= 0.9 * total
    assert peak_above_the_parts(free_memory.concatenate_freeing) <= 0.4 * total


@pytest.mark.skipif(free_memory.heap_free_bytes() == 0, reason="needs glibc's mallinfo2 and malloc_trim")
def test_joins_each_below_the_trim_threshold_still_give_their_memory_back_together(monkeypatch):
    """A run's layers are joined one after another, each below FREE_BYTES_TO_TRIM (16 MiB here) alone: eight joins of
    10 MiB of 96 KiB parts, made chunk after chunk as a run makes them. The bytes copied are counted across the joins,
    so the freed parts go back as they would in one join; counted per join, none trimmed and the RSS rose by all
    eight layers."""
    monkeypatch.setattr(free_memory, "FREE_BYTES_TO_TRIM", 2**24)
    monkeypatch.setattr(free_memory, "_copied_since_trim", 0)
    n_layers, n_parts, part_values = 8, 107, 96 * 128
    layers = [[] for _ in range(n_layers)]
    for index in range(n_parts):  # chunk after chunk, a part of every layer: each layer's parts lie among the others
        for parts in layers:
            parts.append(np.full(part_values, float(index)))
    Path("/proc/self/clear_refs").write_text("5")
    before = _resident_bytes("VmRSS")
    joined = [free_memory.concatenate_freeing(parts) for parts in layers]
    peak = _resident_bytes("VmHWM") - before
    assert all(np.array_equal(layer[::part_values], np.arange(n_parts, dtype=float)) for layer in joined)
    assert peak <= 0.4 * n_layers * n_parts * part_values * 8


def test_joining_parts_freeing_each_one_peaks_at_the_result_and_one_part(monkeypatch):
    """Resident memory, the kernel's own count: np.concatenate adds the whole result to the parts, the freeing join
    one part (the result's pages fill as the parts' go back). The region chunks' output maps and a streamed layer's
    span maps are joined this way. Parts of 36 MiB: above glibc's dynamic mmap threshold, so normally freed at once;
    in the whole test session they were not (three parts above, the cause not found), and the join's trims every
    FREE_BYTES_TO_TRIM bytes copied, set here to 16 MiB, are what keeps the peak within two parts there."""
    monkeypatch.setattr(free_memory, "FREE_BYTES_TO_TRIM", 2**24)
    part_bytes, n_parts = 36 * 2**20, 6

    def peak_above_the_parts(join) -> int:
        parts = [np.full(part_bytes // 8, float(index)) for index in range(n_parts)]
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        before = _resident_bytes("VmRSS")
        joined = join(parts)
        del parts
        peak = _resident_bytes("VmHWM") - before
        assert np.array_equal(joined[::2**16], np.repeat(np.arange(n_parts, dtype=float), part_bytes // 8)[::2**16])
        return peak

    assert peak_above_the_parts(np.concatenate) >= 0.9 * n_parts * part_bytes
    assert peak_above_the_parts(free_memory.concatenate_freeing) <= 2.5 * part_bytes


def test_the_engine_offers_freed_memory_back_after_every_region_chunk_and_streamed_chunk(monkeypatch):
    """The chunks' temporaries, freed among the result's parts, fragment the heap: after each region chunk and each
    chunk of a streamed layer the engine asks for the free memory to go back
    (:mod:`~spline_utils.engine.free_memory`)."""
    model, bounds, plane = cases()["maxpool-cnn"]
    stream_every_layer(monkeypatch)
    continued = chunk_every_span(monkeypatch)
    asked = []  # the engine's method that asked, each time
    monkeypatch.setattr(graph_partition, "release_free_memory", lambda: asked.append(sys._getframe(1).f_code.co_name))
    su.partition2d(model, bounds, plane=plane)
    assert asked.count("_continue_in_region_chunks") >= sum(-(-regions // REGIONS_PER_CHUNK) for regions in continued)
    assert asked.count("_cut_streamed") > 10


@pytest.mark.skipif(free_memory.heap_free_bytes() == 0, reason="needs glibc's mallinfo2 and malloc_trim")
def test_releasing_free_memory_gives_a_fragmented_heaps_free_pages_back():
    """Arrays of 96 KiB (below glibc's mmap threshold, so in the heap), every other one freed and the last one kept:
    the free memory sits between live arrays, where freeing alone never returns it. The trim gives it back."""
    arrays = [np.ones(96 * 128) for _ in range(2048)]  # 192 MiB
    del arrays[::2]
    freed = 96 * 1024 * 1024
    assert free_memory.heap_free_bytes() >= 0.9 * freed
    assert not free_memory.release_free_memory(limit=free_memory.heap_free_bytes())  # not above the limit: no trim
    before = _resident_bytes("VmRSS")
    assert free_memory.release_free_memory(limit=freed // 2)
    assert before - _resident_bytes("VmRSS") >= 0.8 * freed
    assert all(array[0] == 1.0 and array[-1] == 1.0 for array in arrays)  # the live arrays untouched
