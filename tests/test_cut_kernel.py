"""The compiled cut against a plain Python cut written from its definition, piece for piece and bit for bit.

Random convex polygons are cut by random lines, a third of them through one of a polygon's vertices (the on-line
cases). The reference cuts each current piece by each line in turn: vertices with ``|value| <= tolerance`` go to
both halves, a piece is cut only with vertices strictly on both sides, crossings at ``v + t (w - v)``.
"""
import numpy as np
import pytest

from spline_utils.engine.cut_kernel import CUT_DONE, CUT_PAST_MAX_REGIONS, CUT_PAST_ROOM, cut_parents


def reference_cut(polygon, lines, tolerance):
    pieces = [polygon]
    for (c, a1, a2), tol in zip(lines, tolerance):
        cut_pieces = []
        for piece in pieces:
            values = c + a1 * piece[:, 0] + a2 * piece[:, 1]
            sides = np.where(values > tol, 1, np.where(values < -tol, -1, 0))
            if not ((sides > 0).any() and (sides < 0).any()):
                cut_pieces.append(piece)
                continue
            for keep in (1, -1):
                half = []
                for k in range(len(piece)):
                    following = (k + 1) % len(piece)
                    if sides[k] * keep >= 0:
                        half.append(piece[k])
                    if sides[k] * sides[following] < 0:
                        t = values[k] / (values[k] - values[following])
                        half.append(piece[k] + t * (piece[following] - piece[k]))
                cut_pieces.append(np.array(half))
        pieces = cut_pieces
    return pieces


def random_case(generator):
    polygons = []
    for _ in range(generator.integers(1, 4)):
        angles = np.sort(generator.random(generator.integers(3, 8)) * 2 * np.pi)
        polygons.append(np.stack([np.cos(angles), np.sin(angles)], 1) * 3 * generator.random() +
                        generator.normal(size=2))
    line_count = generator.integers(0, 12, len(polygons)).astype(np.int64)
    lines = generator.normal(size=(int(line_count.sum()), 3))
    owner = np.repeat(np.arange(len(polygons)), line_count)
    for index in np.nonzero(generator.random(len(lines)) < 0.3)[0]:  # through a vertex of its polygon
        polygon = polygons[owner[index]]
        vertex = polygon[generator.integers(len(polygon))]
        lines[index, 0] = -(lines[index, 1] * vertex[0] + lines[index, 2] * vertex[1])
    return polygons, line_count, lines


def run_kernel(polygons, line_count, lines, max_regions=10**9, room=10**9):
    counts = np.array([len(polygon) for polygon in polygons], dtype=np.int64)
    tolerance = np.full(len(lines), 1e-9)
    return cut_parents(np.concatenate(polygons), np.cumsum(counts) - counts, counts,
                       np.cumsum(line_count) - line_count, line_count, lines, tolerance, tolerance * 1e-4,
                       max_regions, room)


def test_the_compiled_cut_equals_the_reference_cut_bit_for_bit():
    generator = np.random.default_rng(0)
    for _ in range(300):
        polygons, line_count, lines = random_case(generator)
        vertices, counts, parent, _, status = run_kernel(polygons, line_count, lines)
        assert status == CUT_DONE
        first_line = np.cumsum(line_count) - line_count
        expected = [(index, piece) for index, polygon in enumerate(polygons) for piece in reference_cut(
            polygon, lines[first_line[index]:first_line[index] + line_count[index]],
            np.full(line_count[index], 1e-9))]
        got = [(owner, piece) for owner, piece in zip(parent, np.split(vertices, np.cumsum(counts)[:-1]))]

        def order(item):  # pieces of a parent in any order: sort by parent, then by vertex mean
            return item[0], *np.round(item[1].mean(axis=0), 9)

        assert len(got) == len(expected)
        for (got_parent, got_piece), (expected_parent, expected_piece) in zip(sorted(got, key=order),
                                                                              sorted(expected, key=order)):
            assert got_parent == expected_parent
            np.testing.assert_array_equal(got_piece, expected_piece)


@pytest.mark.parametrize("cap, status", [("max_regions", CUT_PAST_MAX_REGIONS), ("room", CUT_PAST_ROOM)])
def test_the_cut_stops_past_either_cap(cap, status):
    square = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    lines = np.array([[-0.25 * (k + 1), 1.0, 0.0] for k in range(3)])  # x = 0.25, 0.5, 0.75: 4 pieces
    assert run_kernel([square], np.array([3]), lines, **{cap: 4})[4] == CUT_DONE
    assert run_kernel([square], np.array([3]), lines, **{cap: 3})[4] == status
