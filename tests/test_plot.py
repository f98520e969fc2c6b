"""The drawing helpers draw what the partition holds, and shade by distance in the right direction."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import spline_utils as su
from spline_utils import plot
from spline_utils.plot import training as plot_training
from spline_utils.training import nets


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


def _boxes_overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 0 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0


def test_loss_trajectory_panels_are_large_apart_and_numbered_as_their_dots():
    fig = plt.figure(figsize=(9.2, 9.6), dpi=100)
    steps = np.arange(0, 10_001, 100)
    losses = 0.7 * np.exp(-steps / 1500) + 0.05
    snapshots = (500, 1000, 1500, 3500, 5500, 7500, 9500, 10_000)
    drawn = []
    loss_ax, panels = plot_training.draw_loss_trajectory(fig, steps, losses, snapshots, lambda ax, i: drawn.append(i),
                                                [f"iteration {s}" for s in snapshots])
    loss_ax.set_xlabel("Iterations")
    assert drawn == list(range(8)) and len(panels) == 8
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    shown = 800 / fig.get_tightbbox(renderer).width / fig.dpi  # shown px per display px in an 800 px column
    boxes = [panel.get_window_extent(renderer) for panel in panels]
    titles = [panel.title.get_window_extent(renderer) for panel in panels]
    assert min(box.width for box in boxes) * shown >= 150, "panels too small to read in the page's column"
    things = boxes + titles + [loss_ax.xaxis.label.get_window_extent(renderer), loss_ax.get_window_extent(renderer)]
    for i, first in enumerate(things):
        for second in things[i + 1:]:
            assert not _boxes_overlap(first, second), "two panels, titles or the loss axes overlap"
    np.testing.assert_allclose(loss_ax.collections[0].get_offsets()[:, 1], np.interp(snapshots, steps, losses))
    numbers = sorted((text.xy[0], text.get_text()) for text in loss_ax.texts)
    assert numbers == [(float(s), str(i + 1)) for i, s in enumerate(snapshots)]
    assert [panel.get_title() for panel in panels][:2] == ["(1) iteration 500", "(2) iteration 1000"]
    with pytest.raises(ValueError, match="one title per snapshot"):
        plot_training.draw_loss_trajectory(plt.figure(), steps, losses, snapshots, lambda ax, i: None, ["only one"])
    plt.close("all")


@pytest.mark.parametrize("n_epochs, early_bird", [(40, 4), (40, 12), (40, 40), (160, 15), (5, 4), (5, 5)])
def test_early_bird_label_sits_in_the_upper_triangle_off_the_diagonal(n_epochs, early_bird):
    fig, ax = plt.subplots(figsize=(3.5, 3.5), dpi=100)
    rng = np.random.default_rng(0)
    distances = rng.uniform(size=(n_epochs, n_epochs))
    plot_training.draw_distance_matrix(ax, distances, early_bird, colorbar=False)
    fig.canvas.draw()
    (label,) = ax.texts
    assert label.get_text() == str(early_bird)
    corners = ax.transData.inverted().transform(label.get_window_extent(fig.canvas.get_renderer()).corners())
    columns, rows = corners[:, 0], corners[:, 1]
    assert np.all(columns - rows > 0.5), "the label covers the diagonal (or the lower triangle)"
    assert np.all((columns >= 0.5) & (columns <= n_epochs + 0.5) & (rows >= 0.5) & (rows <= n_epochs + 0.5))
    plt.close(fig)


def test_distance_matrices_share_one_raw_scale_with_vmax():
    fig, (left, right) = plt.subplots(1, 2)
    small, large = np.array([[0.0, 0.1], [0.1, 0.0]]), np.array([[0.0, 0.3], [0.3, 0.0]])
    images = [plot_training.draw_distance_matrix(ax, m, normalize=False, vmax=0.3, colorbar=False)
              for ax, m in ((left, small), (right, large))]
    assert [image.get_clim() for image in images] == [(0, 0.3), (0, 0.3)]
    np.testing.assert_array_equal(images[0].get_array(), small)
    normalized = plot_training.draw_distance_matrix(left, small, colorbar=False)
    np.testing.assert_allclose(normalized.get_array(), small / 0.1)
    with pytest.raises(ValueError, match="normalize=False"):
        plot_training.draw_distance_matrix(left, small, normalize=True, vmax=0.3)
    plt.close(fig)


def test_snapshot_splines_draw_the_chosen_nodes_over_the_final_networks_bands():
    partition, final = (su.partition2d(nets.mlp((2, 5, 8, 2), seed=seed), (-3, 3, -3, 3)) for seed in (5, 1))
    assert len(partition.boundary_segments()) and len(final.boundary_segments())
    fig, ax = plt.subplots()
    nodes = [[0, 2], [1, 5, 7]]
    plot_training.draw_snapshot_splines(ax, partition, final, colours=("C0", "C1"), nodes=nodes)
    final_layers, final_boundary, layer0, layer1, boundary = ax.collections[:2], *ax.collections[2:]
    for collection, source, layer in ((final_layers[0], final, 0), (final_layers[1], final, 1), (layer0, partition, 0),
                                      (layer1, partition, 1)):
        expected = np.concatenate([source.spline_segments(layer, node) for node in nodes[layer]])
        np.testing.assert_array_equal(np.array(collection.get_segments()), expected)
    np.testing.assert_array_equal(np.array(boundary.get_segments()), partition.boundary_segments())
    np.testing.assert_array_equal(np.array(final_boundary.get_segments()), final.boundary_segments())
    np.testing.assert_allclose(final_layers[0].get_colors()[0], matplotlib.colors.to_rgba(plot_training.FINAL_GREY))
    assert max(c.get_zorder() for c in (*final_layers, final_boundary)) < min(c.get_zorder() for c in (layer0, layer1))
    assert ax.get_xlim() == (-3, 3)
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
    from spline_utils.plot import surface3d as plot3d

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
    from spline_utils.plot import surface3d as plot3d

    model = nets.mlp((2, 6, 5, 2), seed=4)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    for layer, stop in ((0, 1), (1, 3)):  # the Linear of hidden layer 1 is model[0], of hidden layer 2 model[2]
        polygons, maps = plot3d.node_surface(partition, layer, node=2)
        assert len(polygons) == partition.polygons_after(layer - 1).counts.size
        lifted = np.concatenate(plot3d.lift(polygons, maps))
        np.testing.assert_allclose(lifted[:, 2], _forward64(model, lifted[:, :2], stop)[:, 2], atol=1e-10)
    assert len(plot3d.node_surface(partition, 0, 0)[0]) == 1  # a layer-1 node is one plane over the domain


def test_lift_and_surfaces_refuse_bad_arguments(partition):
    from spline_utils.plot import surface3d as plot3d

    with pytest.raises(ValueError, match="shape"):
        plot3d.lift(partition.polygons, np.zeros((partition.num_regions, 2)))
    with pytest.raises(ValueError, match="node must index the nodes of layer 1, 0 <= node < 8; got 9"):
        plot3d.node_surface(partition, 1, 9)
    with pytest.raises(TypeError, match="node must be a whole number"):
        plot3d.node_surface(partition, 1, 1.5)
    with pytest.raises(ValueError, match=r"classes\[0\] must index the network's outputs"):
        plot3d.output_surface(partition, (5, 0))
    with pytest.raises(TypeError, match=r"classes must be a pair \(i, j\)"):
        plot3d.output_surface(partition, (1, 0, 2))
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="layer must be a whole number in"):
        plot.draw_layer_view(ax, partition, 1.5)
    with pytest.raises(ValueError, match=r"layer must be a whole number in \[0, 2\], got 3"):
        plot.draw_layer_view(ax, partition, 3)
    plt.close(fig)


def test_draw_lifted_puts_the_zero_set_on_the_surface_and_on_the_floor():
    from spline_utils.plot import surface3d as plot3d

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


def test_figure_png_is_a_compact_palette_image_that_looks_like_the_figure():
    import io

    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 3))
    for k in range(12):
        ax.plot([0, 1], [k, 12 - k], linewidth=1.5)
    ax.set_title("twelve lines")
    reference = io.BytesIO()
    fig.savefig(reference, format="png", dpi=60, bbox_inches="tight")
    frame = plot.figure_png(fig, dpi=60)
    assert plt.get_fignums() == [] or fig.number not in plt.get_fignums()
    compact, full = Image.open(io.BytesIO(frame)), Image.open(reference).convert("RGB")
    assert compact.mode == "P" and compact.size == full.size
    difference = np.abs(np.asarray(compact.convert("RGB"), dtype=float) - np.asarray(full, dtype=float))
    assert difference.mean() < 1.0 and len(frame) < len(reference.getvalue())


def test_lifted_pieces_of_different_sizes_do_not_read_the_padding_matplotlib_leaves_uninitialized(monkeypatch):
    """matplotlib pads ragged 3-D faces into an ``np.empty`` array and autoscaled on it: limits were garbage now and
    then (CI saw "Axis limits cannot be NaN or Inf" once). Here the padding is made -1.79e308, next to the largest float, as it was then."""
    from mpl_toolkits.mplot3d import art3d

    from spline_utils.plot import surface3d as plot3d

    class HugeEmpty:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(shape, *args, **kwargs):
            return np.full(shape, -1.79e308)

    monkeypatch.setattr(art3d, "np", HugeEmpty())
    partition = su.partition2d(nets.mlp((2, 6, 5, 2), seed=4), (-3, 3, -3, 3))
    polygons, maps = plot3d.output_surface(partition)
    assert len(np.unique(polygons.counts)) > 1, "the pieces must have different numbers of vertices"
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    floor = plot3d.draw_lifted(ax, polygons, maps)
    heights = np.concatenate(plot3d.lift(polygons, maps))[:, 2]
    assert ax.get_zlim()[0] == pytest.approx(floor) and np.isfinite(ax.get_zlim()).all()
    assert ax.get_zlim()[1] > heights.max()
    plt.close(fig)
