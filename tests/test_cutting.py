"""Parents crossed by many lines: the compiled cut against oracles it shares no code with.

The networks here cut one parent by hundreds of lines into thousands of pieces. Oracles: the region count
of an arrangement of lines (one region, plus one per line, plus one per intersection point inside the domain) and the
model's own forward pass at random points inside every region.
"""
import itertools

import numpy as np
import pytest
import torch
from helpers import random_interior_points

import spline_utils as su
from spline_utils.engine import cutting
from spline_utils.training import nets
from spline_utils.engine.polygons import z_order_keys
from spline_utils.engine.tolerance import Frame, line_tolerance


def arrangement_region_count(weight, bias, bounds):
    """Regions a rectangle is cut into by the lines ``weight @ x + bias = 0`` (general position assumed)."""
    xmin, xmax, ymin, ymax = bounds
    corners = np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])
    values = corners @ weight.T + bias
    crossing = (values.max(axis=0) > 0) & (values.min(axis=0) < 0)
    inside = 0
    for i, j in itertools.combinations(np.nonzero(crossing)[0], 2):
        point = np.linalg.solve(weight[[i, j]], -bias[[i, j]])
        inside += xmin < point[0] < xmax and ymin < point[1] < ymax
    return 1 + int(crossing.sum()) + inside


def test_first_layer_of_many_lines_gives_the_arrangement_count():
    model = nets.mlp((2, 200), final_activation=True, seed=0)
    bounds = (-1.0, 1.0, -1.0, 1.0)
    partition = su.partition2d(model, bounds)
    weight = model[0].weight.detach().double().numpy()
    bias = model[0].bias.detach().double().numpy()
    expected = arrangement_region_count(weight, bias, bounds)
    assert expected > 1000, "one parent (the domain) must be cut into many pieces"
    assert partition.num_regions == expected
    assert partition.areas().sum() == pytest.approx(4.0, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_regions_cut_by_many_lines_have_one_code_everywhere_inside(seed):
    model = nets.mlp((2, 6, 300), final_activation=True, seed=seed)
    partition = su.partition2d(model, (-2.0, 2.0, -2.0, 2.0))
    second = partition.layers[1]
    crossing = [(lambda v: ((v.max(axis=0) > 0) & (v.min(axis=0) < 0)).sum())(polygon @ maps[1:] + maps[0])
                for polygon, maps in zip(partition.layers[0].regions, second.pre_activations)]
    assert max(crossing) > 64, "some parent must be crossed by many lines"
    assert np.bincount(second.parent).max() > 64, "and cut into many pieces"
    per_region = 4
    generator = np.random.default_rng(seed)
    points = np.concatenate([random_interior_points(polygon, per_region, generator) for polygon in partition.regions])
    oracle = su.activation_codes(model, torch.tensor(points)).numpy()
    np.testing.assert_array_equal(oracle, np.repeat(partition.codes, per_region, axis=0))
    assert len(np.unique(partition.codes, axis=0)) == partition.num_regions
    assert partition.areas().sum() == pytest.approx(16.0, rel=1e-12)


def test_z_order_keys_interleave_the_bits_of_both_coordinates():
    generator = np.random.default_rng(0)
    coordinates = np.concatenate([[[0, 0], [65535, 65535]], generator.integers(0, 65536, size=(200, 2))])
    keys = z_order_keys(coordinates.astype(float))
    for (x, y), key in zip(coordinates, keys):
        expected = sum(((int(x) >> bit) & 1) << (2 * bit) | ((int(y) >> bit) & 1) << (2 * bit + 1) for bit in range(16))
        assert int(key) == expected


@pytest.mark.parametrize("centre,half", [((0.0, 0.0), 1.0), ((1e6, -3e5), 1e-3), ((0.5, 0.5), 1e-9)])
def test_nearness_prefilter_keeps_every_pair_the_exact_test_keeps(centre, half):
    """The cheap bound on the tolerance only discards pairs the exact test discards too (lines grazing boxes)."""
    generator = np.random.default_rng(0)
    frame = Frame(centre[0], centre[1], half)
    lows = np.array(centre) - half + 2 * half * generator.random((300, 2))
    sizes = half * generator.random((300, 2)) * 10.0 ** -generator.integers(0, 6, (300, 1))  # boxes of many sizes
    box = np.stack([lows[:, 0], lows[:, 0] + sizes[:, 0], lows[:, 1], lows[:, 1] + sizes[:, 1]], axis=1)
    pre = generator.normal(size=(300, 3, 40))
    corner = box[:, None, [0, 2]] + generator.random((300, 40, 2)) * (box[:, None, [1, 3]] - box[:, None, [0, 2]])
    pre[:, 0] = -(pre[:, 1] * corner[..., 0] + pre[:, 2] * corner[..., 1])  # half the lines pass through the box
    pre[:, 0, ::2] += generator.normal(size=(300, 20)) * half * 1e-9  # and many graze it
    lines = np.moveaxis(pre, 1, 2)
    centre_value = lines[..., 0] + lines[..., 1] * (box[:, :1] + box[:, 1:2]) / 2 \
        + lines[..., 2] * (box[:, 2:3] + box[:, 3:]) / 2
    reach = np.abs(lines[..., 1]) * (box[:, 1:2] - box[:, :1]) / 2 + np.abs(lines[..., 2]) * (box[:, 3:] - box[:, 2:3]) / 2
    expected = np.nonzero(np.abs(centre_value) <= reach + line_tolerance(lines, frame))
    parent, node = cutting.lines_near_boxes(pre, box, frame)
    np.testing.assert_array_equal(parent, expected[0])
    np.testing.assert_array_equal(node, expected[1])
