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
