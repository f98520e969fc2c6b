"""The drawing helpers draw what the partition holds, and shade by distance in the right direction."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import spline_utils as su
from spline_utils import nets, plot


@pytest.fixture(scope="module")
def partition():
    return su.partition2d(nets.mlp((2, 5, 8, 2), seed=0), (-3, 3, -3, 3))


def test_node_splines_are_the_partitions_segments_in_the_given_order(partition):
    fig, ax = plt.subplots()
    colours = [f"C{node}" for node in range(8)]
    order = [7, 0, 3]
    collections = plot.draw_node_splines(ax, partition, 1, colours, order=order)
    assert len(collections) == 3
    for node, collection in zip(order, collections):
        drawn = np.array(collection.get_segments())
        np.testing.assert_array_equal(drawn.reshape(-1, 2, 2), partition.spline_segments(1, node))
        np.testing.assert_allclose(collection.get_colors()[0], matplotlib.colors.to_rgba(colours[node]))
    assert len(plot.draw_node_splines(ax, partition, 0, ["k"] * 5)) == 5
    plt.close(fig)


def test_distance_shades_are_darker_for_closer_splines():
    distances = np.array([[0.0, 0.1, 2.0, 1.0], [0.1, 0, 1, 1], [2.0, 1, 0, 1], [1.0, 1, 1, 0]])
    shades = plot.distance_shades(distances, reference=0)
    assert shades[0] == "green"
    luminance = [np.dot(shades[node][:3], [0.299, 0.587, 0.114]) for node in (1, 3, 2)]  # near, middle, far
    assert luminance[0] < luminance[1] < luminance[2]


def test_loss_trajectory_insets_stay_apart_and_mark_the_curve():
    fig, ax = plt.subplots()
    steps = np.arange(0, 10_001, 100)
    losses = 0.7 * np.exp(-steps / 1500) + 0.05
    snapshots = (500, 1000, 1500, 3500, 5500, 7500, 9500)
    drawn = []
    insets = plot.draw_loss_trajectory(ax, steps, losses, snapshots, lambda inset, index: drawn.append(index))
    assert drawn == list(range(7)) and len(insets) == 7
    boxes = [inset.get_position().bounds for inset in insets]  # (left, bottom, width, height) in figure fraction
    title_room = 0.03 * ax.get_position().height
    for i, (left, bottom, width, height) in enumerate(boxes):
        for other_left, other_bottom, other_width, other_height in boxes[i + 1:]:
            apart_x = left + width <= other_left or other_left + other_width <= left
            apart_y = bottom + height + title_room <= other_bottom or other_bottom + other_height + title_room <= bottom
            assert apart_x or apart_y, "two insets (or an inset and a title) overlap"
    dots = ax.collections[0].get_offsets()
    np.testing.assert_allclose(dots[:, 1], np.interp(snapshots, steps, losses))
    with pytest.raises(ValueError, match="at most 6"):
        plot.draw_loss_trajectory(ax, steps, losses, tuple(range(0, 10_000, 1000)), lambda inset, index: None)
    plt.close(fig)


def _forward64(model, points, stop=None):
    """The model's own forward pass in float64 on (n, 2) points, through its first ``stop`` modules."""
    import copy

    import torch

    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        return model64[:stop](torch.as_tensor(points, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_lifted_output_heights_are_the_models_forward_pass(activation):
    from spline_utils import plot3d

    model = nets.mlp((2, 6, 5, 2), activation=activation, seed=3)
    partition = su.partition2d(model, (-2, 2, -1.5, 2.5))
    pieces = plot3d.lift(*plot3d.output_surface(partition, classes=(1, 0)))
    assert len(pieces) == partition.num_regions
    lifted = np.concatenate(pieces)
    outputs = _forward64(model, lifted[:, :2])
    np.testing.assert_allclose(lifted[:, 2], outputs[:, 1] - outputs[:, 0], atol=1e-10)
    for piece, region in zip(pieces, partition.regions):  # the pieces sit over the regions, vertex for vertex
        np.testing.assert_array_equal(piece[:, :2], region)


def test_lifted_node_heights_are_its_pre_activation_and_crease_only_on_earlier_splines():
    from spline_utils import plot3d

    model = nets.mlp((2, 6, 5, 2), seed=4)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    for layer, stop in ((0, 1), (1, 3)):  # the Linear of hidden layer 1 is model[0], of hidden layer 2 model[2]
        polygons, maps = plot3d.node_surface(partition, layer, node=2)
        assert len(polygons) == partition.polygons_after(layer - 1).counts.size
        lifted = np.concatenate(plot3d.lift(polygons, maps))
        np.testing.assert_allclose(lifted[:, 2], _forward64(model, lifted[:, :2], stop)[:, 2], atol=1e-10)
    assert len(plot3d.node_surface(partition, 0, 0)[0]) == 1  # a layer-1 node is one plane over the domain


def test_lift_and_surfaces_refuse_bad_arguments(partition):
    from spline_utils import plot3d

    with pytest.raises(ValueError, match="shape"):
        plot3d.lift(partition.polygons, np.zeros((partition.num_regions, 2)))
    with pytest.raises(ValueError, match="node 9"):
        plot3d.node_surface(partition, 1, 9)
    with pytest.raises(ValueError, match="class 5"):
        plot3d.output_surface(partition, (5, 0))


def test_draw_lifted_puts_the_zero_set_on_the_surface_and_on_the_floor():
    from spline_utils import plot3d

    partition = su.partition2d(nets.mlp((2, 6, 5, 2), seed=4), (-3, 3, -3, 3))
    boundary = partition.boundary_segments()
    assert len(boundary) > 1
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    polygons, maps = plot3d.output_surface(partition)
    floor = plot3d.draw_lifted(ax, polygons, maps, floor_segments=[(partition.layer_spline_segments(0), "grey", 1)])
    lines = [c for c in ax.collections if type(c).__name__ == "Line3DCollection"]
    heights = [np.unique(np.round([p[2] for s in c._segments3d for p in s], 9)) for c in lines]
    assert any(len(h) == 1 and h[0] == 0 for h in heights)  # the zero set, on the surface
    assert floor < min(np.concatenate(plot3d.lift(polygons, maps))[:, 2])
    on_floor = [c for c, h in zip(lines, heights) if len(h) == 1 and np.isclose(h[0], floor)]
    drawn = sorted(len(c._segments3d) for c in on_floor)
    assert drawn == sorted([len(partition.layer_spline_segments(0)), len(boundary)])
    plt.close(fig)
