"""The exact partition engine, checked against oracles it does not share code with.

Oracles: the model's own forward pass (codes via hooks on its ReLU modules, outputs in float64), dense grids,
polygon areas, and containment of each layer's regions in the previous layer's.
"""
import copy
import gc
import sys
import weakref

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import held_bytes, random_interior_points

import spline_utils as su
from spline_utils.training import nets
from spline_utils.engine.cut_kernel import CUT_DONE, cut_parents
from spline_utils.engine.partition import LayerPartition
from spline_utils.engine.polygons import Polygons, clip_lines, rectangle


def random_mlp(widths, activation="relu", slope=0.1, seed=0, final_activation=True):
    return nets.mlp(widths, activation=activation, negative_slope=slope, final_activation=final_activation,
                    seed=seed)


def forward64(model, points):
    """The model's own forward pass in float64 (a copy in eval mode), not the engine's conversion."""
    with torch.no_grad():
        return copy.deepcopy(model).double().eval()(torch.as_tensor(points, dtype=torch.float64)).numpy()


def hidden_pre_activations(model, points):
    """Inputs of the model's ReLU/LeakyReLU modules at ``points``, read with hooks on a float64 copy."""
    network, recorded = copy.deepcopy(model).double().eval(), []
    hooks = [m.register_forward_hook(lambda _m, inputs, _o: recorded.append(inputs[0].clone()))
             for m in network.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    with torch.no_grad():
        network(torch.as_tensor(points, dtype=torch.float64))
    for hook in hooks:
        hook.remove()
    return recorded


def point_in_convex(polygon, points, tolerance=1e-9):
    """Inside-or-on test for a counter-clockwise convex polygon."""
    edges = np.roll(polygon, -1, axis=0) - polygon
    relative = points[:, None, :] - polygon[None]
    cross = edges[None, :, 0] * relative[..., 1] - edges[None, :, 1] * relative[..., 0]
    return (cross >= -tolerance).all(axis=1)


NETWORKS = [
    ((2, 8), "relu"), ((2, 16, 16), "relu"), ((2, 12, 12, 12), "relu"), ((2, 6, 6, 6, 6, 6), "relu"),
    ((2, 16, 16), "leaky_relu"), ((2, 10, 10, 10), "leaky_relu"), ((2, 32, 32), "relu"),
]


@pytest.mark.parametrize("widths,activation", NETWORKS)
@pytest.mark.parametrize("seed", [0, 1])
def test_codes_match_forward_pass_inside_every_region(widths, activation, seed):
    model = random_mlp(widths, activation, seed=seed)
    partition = su.partition2d(model, (-2, 2, -1.5, 2.5))
    points = partition.interior_points()
    oracle = su.activation_codes(model, torch.tensor(points)).numpy()
    assert partition.codes.shape == oracle.shape == (partition.num_regions, sum(widths[1:]))
    np.testing.assert_array_equal(partition.codes, oracle)
    assert len(np.unique(partition.codes, axis=0)) == partition.num_regions, "two regions share a code"


@pytest.mark.parametrize("widths,activation", NETWORKS)
def test_affine_maps_reproduce_the_forward_pass(widths, activation):
    model = random_mlp(widths, activation, seed=3, final_activation=False)
    partition = su.partition2d(model, (-1, 1, -1, 1))
    slopes, offsets = partition.affine_maps()
    generator = np.random.default_rng(0)
    for region, polygon in enumerate(partition.regions):
        points = random_interior_points(polygon, 5, generator)
        np.testing.assert_allclose(points @ slopes[region].T + offsets[region], forward64(model, points),
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("widths,activation", NETWORKS)
def test_areas_sum_to_the_domain_and_layers_nest(widths, activation):
    bounds = (-1.0, 3.0, -2.0, 1.0)
    partition = su.partition2d(random_mlp(widths, activation, seed=5), bounds)
    domain_area = (bounds[1] - bounds[0]) * (bounds[3] - bounds[2])
    previous_areas = np.array([domain_area])
    previous_regions = [rectangle(bounds).vertices]
    for layer in partition.layers:
        areas = layer.polygons.areas()
        assert (areas > 0).all(), "regions are counter-clockwise with positive area"
        assert areas.sum() == pytest.approx(domain_area, rel=1e-12)
        np.testing.assert_allclose(np.bincount(layer.parent, weights=areas, minlength=len(previous_areas)),
                                   previous_areas, rtol=1e-9, atol=1e-12)
        for region, parent in zip(layer.regions, layer.parent):
            assert point_in_convex(previous_regions[parent], region).all()
        previous_areas, previous_regions = areas, layer.regions


def test_codes_of_each_layer_extend_the_previous_layer():
    partition = su.partition2d(random_mlp((2, 10, 10, 10), seed=2), (-1, 1, -1, 1))
    for layer in range(1, 3):
        before = partition.codes_up_to(layer - 1)
        after = partition.codes_up_to(layer)
        np.testing.assert_array_equal(after[:, :before.shape[1]], before[partition.layers[layer].parent])


def test_packed_codes_unpack_to_the_forward_pass_codes():
    """Codes are kept 8 nodes a byte; 11 and 13 nodes leave bits of the last byte unused (they must stay 0)."""
    model = random_mlp((2, 11, 13), seed=4)
    partition = su.partition2d(model, (-1, 1, -1, 1))
    expected = su.activation_codes(model, torch.as_tensor(partition.interior_points()))
    for layer in partition.layers:
        assert layer.packed_codes.dtype == np.uint8 and layer.packed_codes.shape[1] == -(-layer.num_nodes // 8)
        np.testing.assert_array_equal(np.packbits(layer.layer_codes, axis=1), layer.packed_codes)
        rows = np.random.default_rng(0).integers(0, layer.num_regions, 500)
        nodes = np.random.default_rng(1).integers(0, layer.num_nodes, 500)
        np.testing.assert_array_equal(layer.code_bits(rows, nodes), layer.layer_codes[rows, nodes])
    np.testing.assert_array_equal(partition.codes, expected)


def test_region_index_without_hidden_layers():
    """A network with no ReLU is one region, whose code is empty: every point is in it."""
    partition = su.partition2d(nn.Sequential(nn.Linear(2, 3)), (-1, 1, -1, 1))
    np.testing.assert_array_equal(partition.region_index(np.zeros((4, 0), dtype=bool)), [0, 0, 0, 0])


@pytest.mark.parametrize("widths,seed", [((2, 6, 6), 0), ((2, 5, 5, 5), 1), ((2, 8), 2), ((2, 4, 4, 4), 3)])
def test_region_count_equals_distinct_codes_on_a_dense_grid(widths, seed):
    bounds = (-1, 1, -1, 1)
    model = random_mlp(widths, seed=seed)
    partition = su.partition2d(model, bounds)
    resolution = 1000
    _, codes = su.grid_codes(model, bounds, resolution)
    found = partition.region_index(codes)
    assert (found >= 0).all(), "a grid code that is no region of the partition"
    hit = np.zeros(partition.num_regions, dtype=bool)
    hit[found] = True
    # A convex polygon contains a disk of radius >= area / perimeter; if that disk is wider than a grid cell's
    # diagonal, some grid point must fall inside, so the grid must see the region.
    polygons = partition.polygons
    perimeters = np.add.reduceat(np.linalg.norm(polygons.vertices[polygons.next_vertex()] - polygons.vertices,
                                                axis=1), polygons.starts)
    must_be_hit = partition.areas() / perimeters > 2 * np.sqrt(2) / resolution
    assert hit[must_be_hit].all()
    assert len(np.unique(found)) == partition.num_regions, "these seeded networks have no region below grid scale"


def test_known_geometry_two_axis_lines():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.copy_(torch.tensor([-0.5, 0.25]))
    partition = su.partition2d(model, (-1, 1, -1, 1))
    assert partition.num_regions == 4
    areas = dict(zip(map(tuple, partition.codes.astype(int)), partition.areas()))
    assert areas[(1, 1)] == pytest.approx(0.5 * 1.25)
    assert areas[(0, 0)] == pytest.approx(1.5 * 0.75)
    assert areas[(1, 0)] == pytest.approx(0.5 * 0.75)
    assert areas[(0, 1)] == pytest.approx(1.5 * 1.25)


def test_a_dead_or_constant_node_does_not_cut():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]))
        model[0].bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    partition = su.partition2d(model, (-1, 1, -1, 1))
    assert partition.num_regions == 2
    np.testing.assert_array_equal(partition.codes[:, 1:], [[True, False], [True, False]])


def test_lines_through_vertices_and_coincident_lines():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0], [2.0, 2.0], [1.0, 0.0]]))
        model[0].bias.zero_()  # two diagonals through the corners, one line twice, one through the centre
        model[2].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0], [1.0, 1.0, 0, 0]]))
        model[2].bias.copy_(torch.tensor([-0.5, -0.5, -0.5, -1.0]))
    partition = su.partition2d(model, (-1, 1, -1, 1))
    oracle = su.activation_codes(model, torch.tensor(partition.interior_points())).numpy()
    np.testing.assert_array_equal(partition.codes, oracle)
    assert partition.areas().sum() == pytest.approx(4.0)
    assert partition.layers[0].num_regions == 6


def test_paper_cnn_on_an_image_slice():
    torch.manual_seed(0)
    model = nets.small_cnn(channels=4, seed=0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    images = torch.randn(2, 1, 28, 28)
    plane = su.image_canvas(images[0], images[1])
    partition = su.partition2d(model, (0, 1, 0, 1), plane=plane)
    points = partition.interior_points()
    oracle = su.activation_codes(model, plane(points)).numpy()
    np.testing.assert_array_equal(partition.codes, oracle)
    slopes, offsets = partition.affine_maps()
    logits = forward64(model, plane(points))
    np.testing.assert_allclose(np.einsum("roj,rj->ro", slopes, points) + offsets, logits, rtol=1e-8, atol=1e-8)
    assert partition.areas().sum() == pytest.approx(1.0)


def test_spline_segments_lie_on_the_zero_set_and_cover_every_sign_change():
    model = random_mlp((2, 8, 8), seed=4)
    partition = su.partition2d(model, (-1, 1, -1, 1))
    drawn = 0
    for node in range(8):
        segments = partition.spline_segments(1, node)
        points = np.concatenate([segments.mean(axis=1), segments[:, 0], segments[:, 1]])
        pre = hidden_pre_activations(model, points)[1][:, node].numpy()
        assert np.abs(pre).max(initial=0.0) < 1e-9
        # every layer-1 region whose vertices straddle the node's zero set holds a segment of it
        parents = partition.layers[0].polygons
        maps = partition.layers[1].pre_activations[:, :, node]
        owner = parents.owner
        values = maps[owner, 0] + maps[owner, 1] * parents.vertices[:, 0] + maps[owner, 2] * parents.vertices[:, 1]
        straddle = (np.bincount(owner, values > 1e-9) > 0) & (np.bincount(owner, values < -1e-9) > 0)
        assert len(segments) == straddle.sum()
        drawn += len(segments)
    assert drawn > 8

def test_decision_boundary_is_where_logits_tie():
    model = random_mlp((2, 12, 12, 2), seed=7, final_activation=False)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    segments = partition.boundary_segments()
    assert len(segments) > 0
    logits = forward64(model, segments.reshape(-1, 2))
    assert np.abs(logits[:, 0] - logits[:, 1]).max() < 1e-9
    polylines = partition.decision_boundary()
    assert sum(len(p) - 1 for p in polylines) == len(segments)


def test_multiclass_boundary_is_where_the_top_logit_changes():
    model = random_mlp((2, 10, 10, 4), seed=8, final_activation=False)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    segments = partition.boundary_segments()
    middles = segments.mean(axis=1)
    logits = forward64(model, middles)
    top_two = np.sort(logits, axis=1)[:, -2:]
    assert np.abs(top_two[:, 1] - top_two[:, 0]).max() < 1e-8
    # oracle: along grid rows, every change of argmax lies within a cell of a boundary segment
    _, _, points = su.grid_points((-2, 2, -2, 2), 200)
    winners = forward64(model, points).argmax(axis=1).reshape(200, 200)
    changes = np.argwhere(winners[:, 1:] != winners[:, :-1])
    assert len(changes) > 0
    pair = partition.boundary_segments(classes=(0, 1))
    logits_pair = forward64(model, pair.reshape(-1, 2))
    assert np.abs(logits_pair[:, 0] - logits_pair[:, 1]).max() < 1e-8


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 9), min_size=1, max_size=4), seed=st.integers(0, 10_000),
       slope=st.sampled_from([0.0, 0.01, 0.2, -0.5, -1.0]),
       centre=st.tuples(st.floats(-3, 3), st.floats(-3, 3)), half_size=st.floats(0.05, 5.0))
def test_property_random_networks(widths, seed, slope, centre, half_size):
    activation = "relu" if slope == 0.0 else "leaky_relu"
    model = random_mlp((2, *widths, 3), activation, slope, seed=seed, final_activation=False)
    bounds = (centre[0] - half_size, centre[0] + half_size, centre[1] - half_size, centre[1] + 0.5 * half_size)
    partition = su.partition2d(model, bounds)
    area = (bounds[1] - bounds[0]) * (bounds[3] - bounds[2])
    assert partition.areas().sum() == pytest.approx(area, rel=1e-9)
    points = partition.interior_points()
    np.testing.assert_array_equal(partition.codes, su.activation_codes(model, torch.tensor(points)).numpy())
    slopes, offsets = partition.affine_maps()
    np.testing.assert_allclose(np.einsum("roj,rj->ro", slopes, points) + offsets, forward64(model, points),
                               rtol=1e-8, atol=1e-8 * max(1.0, np.abs(offsets).max()))


def test_polygon_cut_and_clip():
    square = rectangle((0, 1, 0, 1))
    diagonal = np.array([[0.0, 1.0, -1.0]])  # x - y = 0, through two corners: they go to both halves
    one = np.ones(1, dtype=np.int64)
    vertices, counts, parent, unresolved, status = cut_parents(
        square.vertices, square.starts, square.counts, np.zeros(1, dtype=np.int64), one, diagonal,
        np.full(1, 1e-12), np.full(1, 1e-15), 10, 10)
    halves = Polygons(vertices, counts)
    assert status == CUT_DONE and unresolved == 0 and list(parent) == [0, 0]
    np.testing.assert_allclose(halves.areas(), [0.5, 0.5])
    assert list(halves.counts) == [3, 3]
    hit, segments = clip_lines(square, np.array([[-0.5, 1.0, 0.0]]))  # x = 0.5
    assert hit[0]
    np.testing.assert_allclose(sorted(segments[0][:, 1]), [0.0, 1.0])
    np.testing.assert_allclose(segments[0][:, 0], [0.5, 0.5])
    miss, _ = clip_lines(square, np.array([[-2.0, 1.0, 0.0]]))
    assert not miss[0]
    both = Polygons.concatenate([square, rectangle((1, 3, 0, 1))])
    np.testing.assert_allclose(both.subset(np.array([1, 0])).areas(), [2.0, 1.0])


def test_the_model_is_not_modified():
    model = nets.small_cnn(channels=2, seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(2, 1, 28, 28)
    su.partition2d(model, (0, 1, 0, 1), plane=su.image_canvas(images[0], images[1]))
    su.activation_codes(model, images)
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


# ----------------------------------------------------------------------------------------------- errors

def test_unsupported_module_is_named():
    with pytest.raises(TypeError, match="Tanh"):
        su.partition2d(nn.Sequential(nn.Linear(2, 3), nn.Tanh()))
    with pytest.raises(TypeError, match="MaxPool2d.*ceil_mode"):
        su.partition2d(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)), (0, 1, 0, 1),
                       plane=su.image_canvas(torch.ones(1, 8, 8), torch.eye(8)[None]))
    with pytest.raises(TypeError, match="Sigmoid"):
        su.activation_codes(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), torch.zeros(1, 2))


@pytest.mark.parametrize("bounds", [(1, 0, 0, 1), (0, 1, 1, 1), (0, 1, 0), (0, float("nan"), 0, 1), "abcd",
                                    (0, float("inf"), 0, 1)])
def test_bad_bounds(bounds):
    with pytest.raises(ValueError, match="bounds"):
        su.partition2d(random_mlp((2, 3)), bounds)


def test_wrong_input_size():
    with pytest.raises(ValueError, match="plane"):
        su.partition2d(random_mlp((3, 4)))
    with pytest.raises(ValueError, match="plane"):
        su.partition2d(nets.small_cnn(channels=2))
    with pytest.raises(ValueError, match="shape"):
        su.partition2d(random_mlp((5, 4)), plane=su.Plane(torch.zeros(4), torch.eye(4)[0], torch.eye(4)[1]))
    with pytest.raises(ValueError, match="cannot take inputs"):
        su.partition2d(nets.small_cnn(channels=2), (0, 1, 0, 1),
                       plane=su.image_canvas(torch.ones(1, 10, 10), torch.eye(10)[None]))
    with pytest.raises(ValueError, match="n_samples"):
        su.activation_codes(random_mlp((2, 3)), torch.zeros(2))


def test_non_finite_weights():
    model = random_mlp((2, 3, 3))
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        su.partition2d(model)
    bn = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU())
    bn[1].running_var[0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        su.partition2d(bn)


def test_bad_plane():
    with pytest.raises(ValueError, match="parallel"):
        su.Plane(torch.zeros(3), torch.ones(3), 2 * torch.ones(3))
    with pytest.raises(ValueError, match="same shape"):
        su.Plane(torch.zeros(3), torch.ones(3), torch.ones(4))


def test_region_cap_raises_instead_of_exhausting_memory():
    model = random_mlp((2, 64, 64), seed=0)
    with pytest.raises(su.PartitionTooLarge, match="max_regions"):
        su.partition2d(model, max_regions=100)
    with pytest.raises(su.PartitionTooLarge, match="max_bytes"):
        su.partition2d(model, max_bytes=10_000)


def test_batchnorm_uses_running_statistics_even_in_train_mode():
    model = nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 6), nn.BatchNorm1d(6),
                          nn.LeakyReLU(0.2), nn.Linear(6, 2))
    torch.manual_seed(1)
    for module in (model[1], model[4]):
        module.running_mean.uniform_(-1, 1)
        module.running_var.uniform_(0.2, 3)
        module.weight.data.uniform_(-2, 2)
    model.train()
    partition = su.partition2d(model, (-2, 2, -2, 2))
    points = partition.interior_points()
    np.testing.assert_array_equal(partition.codes, su.activation_codes(model, torch.tensor(points)).numpy())
    model.eval()
    with torch.no_grad():
        expected = model.double()(torch.tensor(points)).numpy()
    slopes, offsets = partition.affine_maps()
    np.testing.assert_allclose(np.einsum("roj,rj->ro", slopes, points) + offsets, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("restart", [32, 4], ids=["one-level-of-heads", "heads-of-heads"])
@pytest.mark.parametrize("dense_fill", [0.0, 1.1], ids=["heads-through-jacobian", "heads-through-block"])
def test_propagated_pre_activations_match_the_forward_pass_across_chunks(monkeypatch, dense_fill, restart):
    """Each layer's maps on the previous layer's regions, built chunk by chunk (two restart blocks a chunk); with
    short blocks, the heads' maps come from blocks of heads in turn."""
    from spline_utils.engine import graph_partition, propagate
    width = 24
    monkeypatch.setattr(graph_partition, "DENSE_FILL", dense_fill)
    monkeypatch.setattr(graph_partition, "DIRECT_REGION_PRODUCT", 0)  # else products this small skip the heads
    monkeypatch.setattr(graph_partition, "SMALL_PRODUCT", 0)
    monkeypatch.setattr(propagate, "RESTART", restart)
    monkeypatch.setattr(propagate, "BUFFER_BYTES", 2 * restart * 3 * 8 * width)
    calls = []  # (levels, regions) of every call, the heads' own included
    maps_from_heads = propagate.maps_from_heads

    def recorded(layer, jacobian, direct, out=None, levels=propagate.HEAD_LEVELS, slack_out=None):
        calls.append((levels, layer.num_regions))
        return maps_from_heads(layer, jacobian, direct, out, levels, slack_out)

    monkeypatch.setattr(propagate, "maps_from_heads", recorded)
    monkeypatch.setattr(graph_partition, "maps_from_heads", recorded)
    model = random_mlp((2, width, width, width), "leaky_relu", seed=4)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    assert partition.layers[1].num_regions > 8 * restart, "too few regions for chunks and corrections"
    assert max(regions for levels, regions in calls if levels == propagate.HEAD_LEVELS) > 8 * restart
    if restart == 4:  # blocks of heads: a heads' layer with more heads than a block
        assert max(regions for levels, regions in calls if levels < propagate.HEAD_LEVELS) > 8 * restart
    for layer in (1, 2):
        points = partition.layers[layer - 1].polygons.vertex_means()
        pre = partition.layers[layer].pre_activations
        values = pre[:, 0] + pre[:, 1] * points[:, :1] + pre[:, 2] * points[:, 1:]
        np.testing.assert_allclose(values, hidden_pre_activations(model, points)[layer], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("levels", [1, 2])
def test_heads_computed_directly_pass_the_corrections_one_row_of_zero_slack(monkeypatch, levels):
    """A head computed directly carries no round-off: the corrections read one row of zeros for all of them, not a
    zero array as large as the heads' maps (112 MiB on the MaxPool CNN's canvas, where nearly every region is a
    head); the maps equal the layer's outputs times the next weights on every region."""
    from spline_utils.engine import propagate
    model = random_mlp((2, 24, 24, 24), "relu", seed=4)
    layer = su.partition2d(model, (-2, 2, -2, 2)).layers[1]
    weight, bias = model[4].weight.detach().double().numpy(), model[4].bias.detach().double().numpy()

    def direct(index, out=None):
        maps = layer.post_activations(index) @ weight.T
        maps[:, 0] += bias
        if out is None:
            return maps
        out[...] = maps
        return out

    slack_rows, add_corrections = [], propagate.add_corrections
    monkeypatch.setattr(propagate, "add_corrections", lambda maps, head_slack, *rest: slack_rows.append(
        len(head_slack)) or add_corrections(maps, head_slack, *rest))
    maps = propagate.maps_from_heads(layer, weight.T.copy(), direct, levels=levels)
    assert propagate._head_count(layer.parent) < 0.9 * layer.num_regions  # corrected, not every region direct
    assert slack_rows and set(slack_rows) == {1}
    np.testing.assert_allclose(maps, direct(np.arange(layer.num_regions)), rtol=1e-12, atol=1e-12)


def no_slack(maps: np.ndarray) -> tuple:
    """``add_corrections``'s slack arguments for heads computed directly, the bounds not written out."""
    return np.zeros((1, 3, maps.shape[2])), np.zeros(len(maps), dtype=np.int64), np.empty((0, 3, maps.shape[2]))


@pytest.mark.parametrize("slope", [0.0, 0.1, -0.5])
def test_sibling_corrections_equal_the_product_with_each_regions_own_gains(slope):
    """The compiled corrections turn a head's maps into each sibling's: (pre[p] * g_r) J computed directly."""
    from spline_utils.engine.correction_kernel import add_corrections
    rng = np.random.default_rng(7)
    n_regions, n_nodes, size = 40, 13, 5  # 13 nodes: the last code byte has unused bits
    codes = rng.random((n_regions, n_nodes)) < 0.5
    packed = np.packbits(codes, axis=1)
    pre = rng.normal(size=(3, 3, n_nodes))
    pre_row = rng.integers(0, 3, n_regions)
    jacobian = rng.normal(size=(n_nodes, size))
    regions = rng.permutation(n_regions)
    head = np.repeat(np.arange(0, n_regions, 8), 8)  # rows 0, 8, ... are heads
    pre_row[regions] = pre_row[regions[head]]  # a head and its block share a parent

    def direct(index):
        gains = np.where(codes[index], 1.0, slope)
        return np.einsum("rck,rk,ko->rco", pre[pre_row[index]], gains, jacobian)

    maps = direct(regions[head])
    add_corrections(maps, *no_slack(maps), packed, regions, head, pre, pre_row, slope, jacobian,
                    np.abs(jacobian).max(axis=1))
    np.testing.assert_allclose(maps, direct(regions), rtol=1e-12, atol=1e-12)
    assert np.abs(direct(regions) - direct(regions[head])).max() > 0.1  # the corrections did something


def test_sibling_corrections_leave_a_map_that_is_exactly_zero_at_zero():
    """A sibling with every node off (slope 0) has the map 0 exactly; its head's terms, subtracted again, leave a
    rounding residue (checked here: nonzero in the kernel's own order of sums) whose sign would decide a code. The
    kernel sets entries within the round-off of their terms to 0, and keeps a small map that is not zero."""
    from spline_utils.engine.correction_kernel import add_corrections
    rng = np.random.default_rng(3)
    n_nodes, size = 24, 6
    codes = np.zeros((3, n_nodes), dtype=bool)
    codes[0] = True  # the head: every node on
    codes[2, 5] = True  # one node on: a small map, not zero
    pre = rng.normal(size=(1, 3, n_nodes))
    pre[0, :, 5] *= 1e-6
    jacobian = rng.normal(size=(n_nodes, size))
    regions, head, pre_row = np.arange(3), np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int64)
    head_map = np.einsum("ck,ko->co", pre[0], jacobian)
    residue = head_map.copy()
    for node in range(n_nodes):
        residue -= pre[0, :, node][:, None] * jacobian[node]
    assert np.abs(residue).max() > 0  # without the rounding test the off sibling's map would be this residue
    maps = np.repeat(head_map[None], 3, axis=0)
    add_corrections(maps, *no_slack(maps), np.packbits(codes, axis=1), regions, head, pre, pre_row, 0.0,
                    jacobian, np.abs(jacobian).max(axis=1))
    assert (maps[1] == 0).all()
    np.testing.assert_allclose(maps[2], pre[0, :, 5][:, None] * jacobian[5], rtol=1e-6)
    assert np.abs(maps[2]).min() > 0


def test_a_heads_residue_is_carried_into_its_siblings_round_off_bound():
    """``relu(b - a)`` through two levels of heads: both units on at the head's head, ``a`` alone at the head, both
    off at the sibling. The head's map is ``-a`` plus the residue of ``b``'s term, which is large against ``a``; the
    sibling's map is exactly 0 only if that residue counts in its bound (the head's slack)."""
    from spline_utils.engine.correction_kernel import add_corrections
    pre = np.array([[[0.3, 0.7], [1e-3 * np.pi, 0.9], [1e-3 * np.e, 0.8]]])  # (parent, component, node): a, b
    jacobian = np.array([[-1.0], [1.0]])  # the difference b - a
    codes = np.array([[True, True], [True, False], [False, False]])  # head's head, head, sibling
    packed, pre_row = np.packbits(codes, axis=1), np.zeros(3, dtype=np.int64)
    head_of_head = (pre[0] @ jacobian)[None]
    heads, heads_slack = np.repeat(head_of_head, 2, axis=0), np.empty((2, 3, 1))
    add_corrections(heads, np.zeros((1, 3, 1)), np.zeros(2, dtype=np.int64), heads_slack, packed, np.arange(2),
                    np.zeros(2, dtype=np.int64), pre, pre_row, 0.0, jacobian, np.ones(2))
    np.testing.assert_allclose(heads[1], -pre[0][:, :1], rtol=1e-12)
    assert (heads[1] + pre[0][:, :1] != 0).any()  # the residue, against which the sibling's own bound is too small
    maps = np.repeat(heads[1:], 2, axis=0)
    add_corrections(maps, heads_slack[1:], np.zeros(2, dtype=np.int64), np.empty((0, 3, 1)), packed,
                    np.array([1, 2]), np.zeros(2, dtype=np.int64), pre, pre_row, 0.0, jacobian, np.ones(2))
    assert (maps[1] == 0).all()
    maps = np.repeat(heads[1:], 2, axis=0)
    add_corrections(maps, *no_slack(maps), packed, np.array([1, 2]), np.zeros(2, dtype=np.int64), pre, pre_row,
                    0.0, jacobian, np.ones(2))
    assert (maps[1] != 0).any()  # without the head's slack the residue stays


def test_a_maxpool_whose_pooled_units_are_both_off_has_the_codes_of_the_models_forward():
    """Where both pooled units are off, ``relu(b - a)`` reads exactly 0; corrected from a head where one is on, its
    map was a rounding residue, and 77 of this network's 77,273 regions had a code the model's own forward
    contradicts (the MaxPool CNN's canvas: 412 of 7,684 regions of its first pooling layer on a 0.2 window)."""
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(36, 3))
    plane = su.image_canvas(torch.rand(1, 11, 11), torch.rand(1, 11, 11))
    partition = su.partition2d(cnn, (-3.0, 3.0, -3.0, 3.0), plane=plane)
    assert partition.num_regions > 70_000
    inside = partition.layers[-1].polygons.vertex_means()
    np.testing.assert_array_equal(partition.codes, su.activation_codes(cnn, plane(inside)).numpy())


def test_a_maxpool_over_a_flat_background_finds_equal_elements_tied_as_the_models_forward_does():
    """Below a digit, MNIST's background is one constant, so a pooling window's lower elements are the same function
    of the canvas. The running maximum is ``m + relu(x - m)``, equal to the winning element only up to round-off, so
    the next equal element differed from it by a residue whose sign decided the comparison (2,559 of this network's
    10,947 regions; 15,912 of 65,137 of the MaxPool CNN's 0.5 window); the model's own forward finds them tied."""
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(64, 3))
    cnn[1].running_mean.uniform_(-0.3, 0.3)
    cnn[1].running_var.uniform_(0.5, 2.0)
    images = torch.full((2, 1, 11, 11), -0.42421296)  # MNIST's normalized background
    images[:, :, :7] = torch.rand(2, 1, 7, 11)  # the top rows vary; a window's lower elements read only background
    plane = su.image_canvas(images[0], images[1])
    partition = su.partition2d(cnn.eval(), (0.0, 2.0, 0.0, 2.0), plane=plane)
    assert partition.num_regions > 10_000
    inside = partition.layers[-1].polygons.vertex_means()
    np.testing.assert_array_equal(partition.codes, su.activation_codes(cnn, plane(inside)).numpy())


@pytest.mark.parametrize("slope", [0.0, 0.1, -0.5])
def test_a_layers_outputs_are_its_pre_activations_times_each_regions_gains(slope):
    """The compiled gains (:func:`gated_maps`) against unpacked codes and ``np.where``, regions out of order, and a
    layer that keeps no maps (computed again for the parents asked for)."""
    rng = np.random.default_rng(8)
    n_regions, n_nodes = 40, 13  # 13 nodes: the last code byte has unused bits
    codes = rng.random((n_regions, n_nodes)) < 0.5
    pre = rng.normal(size=(5, 3, n_nodes))
    parent = rng.integers(0, 5, n_regions)
    kept = LayerPartition(None, parent, np.packbits(codes, axis=1), pre, slope, (n_nodes,))
    index = rng.permutation(n_regions)[:25]
    expected = pre[parent[index]] * np.where(codes[index], 1.0, slope)[:, None, :]
    np.testing.assert_array_equal(kept.post_activations(index), expected)

    class Recompute:
        asked = []

        def __call__(self, parents):
            self.asked.append(parents)
            return pre[parents]

    recompute = Recompute()
    computed = LayerPartition(None, parent, np.packbits(codes, axis=1), None, slope, (n_nodes,), recompute)
    np.testing.assert_array_equal(computed.post_activations(index), expected)
    np.testing.assert_array_equal(recompute.asked[0], np.unique(parent[index]))


def streamed_and_whole(monkeypatch, model, bounds, plane=None):
    """The same partition computed whole and with every large-enough layer cut a few parents at a time."""
    whole = su.partition2d(model, bounds, plane=plane)
    stream_every_layer(monkeypatch)
    streamed = su.partition2d(model, bounds, plane=plane)
    return whole, streamed


def stream_every_layer(monkeypatch):
    """Make every layer with a ReLU input to stream be cut a few parents at a time."""
    from spline_utils.engine import graph_partition
    monkeypatch.setattr(graph_partition, "STREAM_BYTES", 1)
    monkeypatch.setattr(graph_partition, "STREAM_CHUNK_BYTES", 3 * 8 * 64 * 7)


def streaming_cases():
    torch.manual_seed(3)
    mlp = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(),
                        nn.Linear(10, 3))
    cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 4 * 4, 3))
    plane = su.image_canvas(torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    max_pool_cnn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 2), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    return [(mlp, (-2.0, 2.0, -2.0, 2.0), None), (cnn, (0.0, 1.0, 0.0, 1.0), plane),
            (SkipMLP(), (-2.0, 2.0, -2.0, 2.0), None), (max_pool_cnn, (0.0, 1.0, 0.0, 1.0), plane)]


@pytest.mark.parametrize("case", range(4), ids=["mlp", "cnn", "skip-mlp", "maxpool-cnn"])
def test_a_streamed_cut_counts_the_maps_it_reads_and_the_buffer_it_forms_them_in(monkeypatch, case):
    """While a layer is cut a chunk of parents at a time, the maps its chunks' inputs are computed from and the buffer
    they are written into are held: every room the cut measures must count them (``max_bytes``)."""
    from spline_utils.engine import graph_partition
    model, bounds, plane = streaming_cases()[case]
    stream_every_layer(monkeypatch)
    entered, measured = [], []  # held bytes as each streamed cut began; (held, buffer) at each of its chunks' cuts
    cut_streamed, cut_by_layer = graph_partition._GraphCutter._cut_streamed, graph_partition._GraphCutter._cut_by_layer

    def recorded_cut_streamed(cutter, *arguments):
        entered.append(cutter._held_bytes())  # the producer's maps among them
        return cut_streamed(cutter, *arguments)

    def recorded_cut_by_layer(cutter, parents, pre, *arguments):
        if sys._getframe(1).f_code.co_name == "_cut_streamed":
            measured.append((len(entered), cutter._held_bytes(), (pre if pre.base is None else pre.base).nbytes))
        return cut_by_layer(cutter, parents, pre, *arguments)

    monkeypatch.setattr(graph_partition._GraphCutter, "_cut_streamed", recorded_cut_streamed)
    monkeypatch.setattr(graph_partition._GraphCutter, "_cut_by_layer", recorded_cut_by_layer)
    su.partition2d(model, bounds, plane=plane)
    assert len(measured) > len(entered) > 0
    for cut, held, buffer in measured:
        assert held >= entered[cut - 1] + buffer


class SkipMLP(nn.Module):
    """Pre-activation residual blocks: each sum is read by the next ReLU and again by the next sum, after that ReLU
    is cut, so streaming must keep it for the later read."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.stem, self.head = nn.Linear(2, 10), nn.Linear(10, 3)
        self.blocks = nn.ModuleList(nn.Linear(10, 10) for _ in range(3))

    def forward(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = h + block(torch.relu(h))
        return self.head(torch.relu(h))


@pytest.mark.parametrize("how", ["streamed", "tiled"])
def test_a_partition_is_freed_as_soon_as_it_is_dropped(monkeypatch, how):
    """No reference cycle through a layer that computes its maps again (streamed, or merged from tiles): dropping a
    partition frees it at once, not when Python's cyclic collector next runs, which numpy's memory does not prompt
    (repeated canvases grew by their maps every call).

    The same call runs once first: in a fresh environment it compiles the kernels, and numba's compiler leaves
    cycles through its callers' frames that one time; what matters is every later call."""
    from spline_utils.engine import tiling
    model, bounds, plane = streaming_cases()[3]
    caps = {}
    if how == "streamed":
        stream_every_layer(monkeypatch)
    else:
        monkeypatch.setattr(tiling, "MIN_TILE_REGIONS", 1)
        caps["max_bytes"] = held_bytes(su.partition2d(model, bounds, plane=plane)) // 3
    su.partition2d(model, bounds, plane=plane, **caps)
    gc.collect()
    gc.disable()
    try:
        partition = su.partition2d(model, bounds, plane=plane, **caps)
        assert any(layer._recompute is not None for layer in partition.layers)
        layers = [weakref.ref(layer) for layer in partition.layers]
        del partition
        assert all(layer() is None for layer in layers)
    finally:
        gc.enable()


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_layers_cut_a_chunk_of_parents_at_a_time_equal_the_whole_partition(monkeypatch, case):
    """Streaming changes how much is held at once, nothing else: same regions in the same order, same codes, maps
    that equal the model's own forward, and the dropped pre-activation maps come back equal when asked for."""
    model, bounds, plane = streaming_cases()[case]
    whole, streamed = streamed_and_whole(monkeypatch, model, bounds, plane)
    assert any(layer._pre_activations is None for layer in streamed.layers)  # something really was streamed
    assert streamed.num_regions == whole.num_regions > 50
    np.testing.assert_array_equal(streamed.codes, whole.codes)
    np.testing.assert_allclose(streamed.polygons.vertices, whole.polygons.vertices)
    np.testing.assert_allclose(streamed.output_maps(), whole.output_maps(), atol=1e-12)
    for index, (a, b) in enumerate(zip(streamed.layers, whole.layers)):
        np.testing.assert_allclose(a.pre_activations, b.pre_activations, atol=1e-12)
        node = a.num_nodes // 2
        np.testing.assert_allclose(streamed.spline_segments(index, node), whole.spline_segments(index, node))
    points = streamed.interior_points()
    inputs = torch.as_tensor(points) if plane is None else plane(points)
    np.testing.assert_array_equal(streamed.codes, su.activation_codes(model, inputs).numpy())
