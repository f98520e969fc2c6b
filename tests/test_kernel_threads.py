"""The compiled loops in threads: the same partition on one thread as on several, bit for bit.

The engine splits its loops into contiguous blocks of parents, pieces or regions and joins the blocks' results in
order (``kernel_threads.py``); a parent crossed by many lines is first cut by a few of them and its pieces cut on
their own (``cutting._cut_parents``). Neither may change a number: the thresholds are set so low here that every
loop splits, and the partitions on 1 and 3 threads must agree array for array, and with the model's own forward.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
from spline_utils.engine import cutting, graph_partition, kernel_threads, propagate
from spline_utils.engine.cut_kernel import CUT_DONE, CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM, cut_parents
from spline_utils.engine.polygons import Polygons
from spline_utils.engine.tolerance import Frame
from tests.helpers import assert_agrees_with_the_models_forward, randomize_batchnorm
from tests.test_cut_kernel import random_case
from tests.test_partition import stream_every_layer
from tests.test_tiling import Residual


@pytest.fixture
def torch_threads():
    """Set torch's thread count (the engine's loops use as many threads); restored after the test."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def split_everything(monkeypatch) -> list[int]:
    """Thresholds that split every loop into blocks and every parent crossed by 4 lines or more; returns a list
    that records the number of blocks of each split run."""
    for name in ("BLOCK_PAIRS", "BLOCK_LINES", "BLOCK_CODE_LINES"):
        monkeypatch.setattr(cutting, name, 1)
    monkeypatch.setattr(cutting, "SPLIT_LEAST_LINES", 4)
    monkeypatch.setattr(cutting, "SPLIT_LINES", 2)
    monkeypatch.setattr(graph_partition, "BLOCK_MULTIPLY_ADDS", 1)
    split = []
    run = kernel_threads.run_blocks

    def recording(function, blocks):
        split.append(len(blocks))
        return run(function, blocks)

    for module in (cutting, graph_partition, propagate):
        monkeypatch.setattr(module, "run_blocks", recording)
    return split


def models():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 40), nn.ReLU(), nn.Linear(40, 24), nn.ReLU(), nn.Linear(24, 3))
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 2 * 2, 3))
    plane = su.image_canvas(torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    return {"mlp": (mlp, (-2.0, 2.0, -2.0, 2.0), None),
            "residual": (randomize_batchnorm(Residual(), seed=1), (-4.0, 4.0, -3.0, 5.0), None),
            "maxpool-cnn": (cnn, (-1.0, 2.0, -1.0, 2.0), plane)}


def assert_identical(first, second):
    assert [layer.num_regions for layer in first.layers] == [layer.num_regions for layer in second.layers]
    for one, other in zip(first.layers, second.layers):
        np.testing.assert_array_equal(one.polygons.vertices, other.polygons.vertices)
        np.testing.assert_array_equal(one.polygons.counts, other.polygons.counts)
        np.testing.assert_array_equal(one.parent, other.parent)
        np.testing.assert_array_equal(one.packed_codes, other.packed_codes)
    np.testing.assert_array_equal(first.output_maps(), second.output_maps())


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("name", ["mlp", "residual", "maxpool-cnn"])
def test_one_thread_and_three_give_the_same_partition(monkeypatch, torch_threads, name, streamed):
    model, bounds, plane = models()[name]
    if streamed:
        stream_every_layer(monkeypatch)
    split = split_everything(monkeypatch)
    torch_threads(1)
    alone = su.partition2d(model, bounds, plane=plane)
    assert max(split) == 1
    split.clear()
    torch_threads(3)
    threaded = su.partition2d(model, bounds, plane=plane)
    assert max(split) == 3  # the loops ran in three blocks
    assert alone.num_regions > 100
    assert_identical(alone, threaded)
    assert_agrees_with_the_models_forward(threaded, model, plane)


def pieces_by_parent(vertices, counts, parent):
    return sorted((int(owner), piece.tobytes()) for owner, piece in zip(parent, np.split(vertices,
                                                                                         np.cumsum(counts)[:-1])))


class Lines:  # what cutting._cut_parents reads of the crossing lines
    def __init__(self, line_count):
        self.count, self.first = line_count, np.cumsum(line_count) - line_count


def test_a_parent_cut_first_by_a_few_lines_then_piece_by_piece_gives_the_same_pieces(monkeypatch):
    """The split (a parent crossed by many lines is cut by its first lines, then each piece by the rest) against one
    kernel call over all parents: the same pieces of each parent, vertex for vertex, and the same unresolved count."""
    generator, frame = np.random.default_rng(0), Frame(0.0, 0.0, 3.0)
    split_runs = 0
    for _ in range(30):
        polygons, _, _ = random_case(generator)
        line_count = generator.integers(0, 150, len(polygons)).astype(np.int64)
        split_runs += int((line_count >= cutting.SPLIT_LEAST_LINES).any())
        lines = generator.normal(size=(int(line_count.sum()), 3))
        parents = Polygons(np.concatenate(polygons), np.array([len(polygon) for polygon in polygons]))
        tolerance, rounding = cutting.line_tolerance(lines, frame), cutting.rounding_tolerance(lines, frame)
        one_call = cut_parents(parents.vertices, parents.starts, parents.counts, Lines(line_count).first, line_count,
                               lines, tolerance, rounding, 10**9, 10**9)
        split = cutting._cut_parents(parents, Lines(line_count), lines, tolerance, rounding, 10**9, 10**9)
        assert split[3:5] == one_call[3:]
        np.testing.assert_array_equal(split[2], one_call[2])  # pieces stay grouped by parent, in parent order
        assert pieces_by_parent(*split[:3]) == pieces_by_parent(*one_call[:3])
    assert split_runs > 10


@pytest.mark.parametrize("limit", [5, 40, 120, 400])
def test_the_caps_stop_cuts_in_blocks_as_one_call_would(monkeypatch, torch_threads, limit):
    """Blocks count the other blocks' parents: past ``max_regions`` or ``room`` the status names the smaller cap,
    whichever block finds it, and a layer just within both is cut whole."""
    split_everything(monkeypatch)
    torch_threads(3)
    generator, frame = np.random.default_rng(1), Frame(0.0, 0.0, 3.0)
    polygons = [polygon for _ in range(6) for polygon in random_case(generator)[0]]
    line_count = generator.integers(0, 12, len(polygons)).astype(np.int64)
    lines = generator.normal(size=(int(line_count.sum()), 3))
    parents = Polygons(np.concatenate(polygons), np.array([len(polygon) for polygon in polygons]))
    tolerance, rounding = cutting.line_tolerance(lines, frame), cutting.rounding_tolerance(lines, frame)
    for max_regions, room in [(limit, 10**9), (10**9, limit), (limit, limit), (limit, limit + 1), (limit + 1, limit)]:
        one_call = cut_parents(parents.vertices, parents.starts, parents.counts, Lines(line_count).first, line_count,
                               lines, tolerance, rounding, max_regions, room)
        blocks = cutting._cut_parents(parents, Lines(line_count), lines, tolerance, rounding, max_regions,
                                      room)
        assert blocks[4] == one_call[4]
        if one_call[4] == CUT_DONE:  # parents crossed by 4 lines or more were split: their pieces' order differs
            assert pieces_by_parent(*blocks[:3]) == pieces_by_parent(*one_call[:3])
    statuses = {cut_parents(parents.vertices, parents.starts, parents.counts, Lines(line_count).first, line_count,
                            lines, tolerance, rounding, limit, 10**9)[4] for limit in (5, 10**9)}
    assert statuses == {CUT_DONE, CUT_PAST_MAX_REGIONS} and CUT_PAST_ROOM != CUT_PAST_MAX_REGIONS


def test_blocks_cover_the_items_in_order_with_about_equal_work():
    generator = np.random.default_rng(2)
    for _ in range(200):
        work = generator.integers(0, 50, generator.integers(1, 40))
        threads, least = int(generator.integers(1, 5)), float(generator.integers(1, 200))
        blocks = kernel_threads.work_blocks(work, threads, least)
        assert blocks[0][0] == 0 and blocks[-1][1] == len(work)
        assert all(stop == start for (_, stop), (start, _) in zip(blocks[:-1], blocks[1:]))
        assert all(start < stop for start, stop in blocks) or len(work) == 0
        assert 1 <= len(blocks) <= max(1, min(threads, work.sum() // least))
        if len(blocks) > 1:
            block_work = [work[start:stop].sum() for start, stop in blocks]
            assert max(block_work) <= work.sum() / len(blocks) + work.max()


def test_a_blocks_error_is_raised_in_the_caller_after_every_block_ended():
    ended = []

    def block(start, stop):
        if start == 2:
            raise ValueError("block two")
        ended.append(start)
        return start

    assert kernel_threads.run_blocks(block, [(0, 2), (4, 6), (6, 9)]) == [0, 4, 6]
    with pytest.raises(ValueError, match="block two"):
        kernel_threads.run_blocks(block, [(0, 2), (2, 4), (4, 6)])
    assert sorted(ended[3:]) == [0, 4]


def test_codes_read_inside_first_pieces_equal_codes_read_against_every_line(monkeypatch):
    """After the split, a piece's code takes the side of each line that leaves its first piece strictly on one side
    from that first piece and evaluates only the others at its vertex mean: the codes equal those read against every
    line of the parent, piece for piece (lines through vertices included, as on-line cases)."""
    generator, frame = np.random.default_rng(3), Frame(0.5, 0.5, 1.5)
    angles = np.sort(generator.random(7) * 2 * np.pi)
    domain = Polygons(np.stack([np.cos(angles), np.sin(angles)], 1) + 0.5, np.array([7]))
    pre = generator.normal(size=(1, 3, 200))
    vertex = domain.vertices[generator.integers(7, size=60)]
    pre[0, 0, :60] = -(pre[0, 1, :60] * vertex[:, 0] + pre[0, 2, :60] * vertex[:, 1])  # through a corner

    def codes_by_piece():
        pieces, parent, codes, unresolved = cutting.cut_by_layer(domain, pre, frame, 10**9, 0)
        return dict(zip((piece.tobytes() for piece in pieces.split()), (code.tobytes() for code in codes))), \
            unresolved

    split = codes_by_piece()
    monkeypatch.setattr(cutting, "SPLIT_LEAST_LINES", 10**9)
    assert codes_by_piece() == split
    assert len(split[0]) > 3000
