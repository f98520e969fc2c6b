"""Chapter 3's experiment and page modules against hand-computed oracles."""
import copy
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from spline_utils import partition2d  # noqa: E402
from spline_utils.early_bird import spline_early_bird_epoch  # noqa: E402
from spline_utils.experiments import (canvas_boundary, canvas_trajectory, early_bird_figures, eb_runs,  # noqa: E402
                                      fc_trajectory, layer_early_birds, mnist_canvas, partition_changes,
                                      resnet_slices)
from spline_utils.experiments.eb_training import Split  # noqa: E402
from spline_utils.pages.tables import html_table  # noqa: E402
from spline_utils.engine.slices import Plane  # noqa: E402
from spline_utils.engine.slices import grid_points as su_grid_points  # noqa: E402


# --- pages.tables -------------------------------------------------------------------------------------------------

def test_html_table_escapes_every_cell():
    table = html_table(["a<b", "c"], [["<i>", 1], ["x&y", None]]).data
    assert "<th>a&lt;b</th>" in table and "<td>&lt;i&gt;</td>" in table and "<td>x&amp;y</td>" in table
    assert table.count("<tr>") == 3 and "<td>None</td>" in table


def test_html_table_refuses_uneven_rows():
    with pytest.raises(ValueError, match="rows \\[1\\]"):
        html_table(["a", "b"], [[1, 2], [3]])


# --- mnist_canvas -------------------------------------------------------------------------------------------------

def _split(n=12, side=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, side, side, generator=generator)
    labels = torch.arange(n) % 10
    return Split(images, labels, images.clone(), labels.clone())


def test_shrink_averages_the_pixels_under_each_output_pixel():
    split = _split(side=4)
    small = mnist_canvas.shrink(split, 2)
    blocks = split.train_x.reshape(-1, 1, 2, 2, 2, 2).mean(dim=(3, 5))  # (n, 1, row block, col block)
    assert torch.allclose(small.train_x, blocks, atol=1e-6) and small.train_x.shape == (12, 1, 2, 2)
    assert torch.equal(small.test_y, split.test_y)


def test_canvas_plane_passes_through_the_first_six_and_nine():
    split = _split()
    plane = mnist_canvas.canvas_plane(split.test_x, split.test_y)
    corners = plane(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    assert torch.allclose(corners[0].float(), split.test_x[6]) and torch.allclose(corners[1].float(), split.test_x[9])
    assert torch.allclose(corners[2].float(), (split.test_x[6] + split.test_x[9]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="no image of class 6"):
        mnist_canvas.canvas_plane(split.test_x[:5], split.test_y[:5])


def test_probe_sets_sizes_and_canvas_grid():
    split = _split(n=30)
    probes = mnist_canvas.probe_sets(split, 9, seed=1)
    assert {name: len(x) for name, x in probes.items()} == {"train": 9, "test": 9, "random": 9, "canvas": 9}
    plane = mnist_canvas.canvas_plane(split.test_x, split.test_y)
    centre = plane(np.array([[0.5, 0.5]])).float()[0]  # the middle cell of the 3x3 grid
    assert torch.allclose(probes["canvas"][4], centre, atol=1e-6)


# --- canvas_boundary ----------------------------------------------------------------------------------------------

def _linear_canvas(six_offset=0.0):
    """A 'network' on a 2-pixel canvas [a, b] with logit 6 = a + offset and logit 9 = 3 b: tie at a = 0.75."""
    model = nn.Linear(2, 10)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[6, 0], model.weight[9, 1], model.bias[6] = 1.0, 3.0, six_offset
    plane = Plane(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    return model, plane


def test_boundary_crossing_where_the_logits_tie():
    model, plane = _linear_canvas()
    assert abs(canvas_boundary.boundary_crossing(model, plane) - 0.75) <= 1 / 2000
    far, _ = _linear_canvas(six_offset=10.0)
    assert canvas_boundary.boundary_crossing(far, plane) is None


def test_boundary_window_is_centred_and_kept_inside_the_canvas():
    model, plane = _linear_canvas()
    a_min, a_max, b_min, b_max = canvas_boundary.boundary_window(model, plane, 0.1)
    assert np.allclose([a_min + a_max, b_min + b_max], [1.5, 0.5], atol=2e-3) and np.isclose(a_max - a_min, 0.1)
    assert canvas_boundary.boundary_window(model, plane, 0.6)[2] == 0.0  # b centre 0.25 clipped to 0.3
    with pytest.raises(ValueError, match="side"):
        canvas_boundary.boundary_window(model, plane, 0.0)


def test_settling_statistics_and_no_nan_when_the_boundary_is_missing():
    settling = canvas_boundary.Settling([0.2, 0.6, 0.4, 0.5, 0.52], drop=3)
    assert settling.complete and np.isclose(settling.spread, 0.4) and np.isclose(settling.settled, 0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        missing = canvas_boundary.Settling([None, 0.3, None, 0.5], drop=2)
        assert missing.spread == 0.0 and missing.settled is None and missing.missing == [1, 3]
        text = missing.describe()
        none = canvas_boundary.Settling([None, None, None], drop=2)
        assert none.spread is None and none.settled is None and none.moved_after(1) is None
        assert "does not cross" in none.describe()
    assert "nan" not in text.lower() and "[1, 3]" in text
    early_gap = canvas_boundary.Settling([None, 0.2, 0.6, 0.5, 0.5], drop=3)
    assert np.isclose(early_gap.spread, 0.4) and early_gap.settled == 0.0 and not early_gap.complete


# --- canvas_trajectory --------------------------------------------------------------------------------------------

def test_central_nodes_are_the_middle_row_centre_positions():
    index = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert canvas_trajectory.central_nodes((2, 3, 4)) == sorted(index[:, 1, 1:3].ravel().tolist())
    assert canvas_trajectory.central_nodes((1, 5, 5), positions=1) == [12]


def test_inset_epochs_add_the_early_bird_and_the_end():
    assert canvas_trajectory.inset_epochs(40, 7) == [2, 5, 7, 10, 18, 25, 32, 40]
    assert canvas_trajectory.inset_epochs(40, None) == [2, 5, 10, 18, 25, 32, 40]


def test_mark_schedule_draws_the_early_bird_and_the_drops():
    fig, ax = plt.subplots()
    canvas_trajectory.mark_schedule(ax, 5, (20, 30))
    positions = sorted(line.get_xdata()[0] for line in ax.lines)
    assert positions == [5, 20.5, 30.5]
    assert [text.get_text() for text in ax.legend().get_texts()] == ["learning rate x0.1", "spline EB (epoch 5)"]
    plt.close(fig)


# --- eb_runs ------------------------------------------------------------------------------------------------------

def _chain_matrix(steps):
    """Distances of points moving along a line by ``steps``: d(i, j) = |p_i - p_j|."""
    positions = np.concatenate([[0.0], np.cumsum(steps)])
    return np.abs(positions[:, None] - positions[None, :])


def test_summarize_reads_the_rule_and_the_distances():
    matrix = _chain_matrix([0.5, 0.5, 0.05, 0.05, 0.05, 0.05])  # 7 epochs; steps 3..6 small
    summary = eb_runs.summarize(matrix, threshold=0.16, lookback=3)
    assert summary.epoch == 6 and np.isclose(summary.fraction, 6 / 7)  # d(6, 3..5) <= 0.15; d(5, 2) = 0.6
    assert np.isclose(summary.to_final, 0.05) and np.isclose(summary.largest, 1.2)
    assert np.isclose(summary.mean, matrix.sum() / (7 * 6))
    assert eb_runs.summarize(matrix, 0.01, 3).epoch is None


def test_lookback_statistic_is_the_rule_statistic():
    matrix = _chain_matrix([0.3, 0.1, 0.2, 0.05])
    statistic = eb_runs.lookback_statistic(matrix, 2)
    assert np.isnan(statistic[:2]).all()
    assert np.allclose(statistic[2:], [matrix[2, :2].max(), matrix[3, 1:3].max(), matrix[4, 2:4].max()])


def test_distance_matrices_are_computed_once():
    class Detector:
        calls = 0

        def matrix(self, probe):
            Detector.calls += 1
            return np.zeros((2, 2))

    class Run:
        spline_detector = Detector()

    matrices, run = eb_runs.DistanceMatrices(), Run()
    assert matrices(run) is matrices(run) and Detector.calls == 1
    matrices(run, "test")
    assert Detector.calls == 2


# --- layer_early_birds --------------------------------------------------------------------------------------------

def test_the_network_can_fire_after_every_layer_has_fired():
    per_layer = layer_early_birds.later_than_every_layer(0.16, 3)
    layers = layer_early_birds.layer_epochs(per_layer, 0.16, 3)
    network = spline_early_bird_epoch(per_layer.mean(axis=2), 0.16, 3)
    assert None not in layers and network is not None and network > max(layers)
    assert network <= layer_early_birds.joint_epoch(per_layer, 0.16, 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 4), st.integers(1, 3))
def test_the_network_fires_no_later_than_the_first_epoch_all_layers_pass(seed, n_layers, lookback):
    rng = np.random.default_rng(seed)
    steps = rng.uniform(0, 0.3, size=(12, n_layers)) * (rng.uniform(size=(12, 1)) < 0.7)
    positions = np.concatenate([np.zeros((1, n_layers)), np.cumsum(steps, axis=0)])
    per_layer = np.abs(positions[:, None, :] - positions[None, :, :])
    joint = layer_early_birds.joint_epoch(per_layer, 0.16, lookback)
    network = spline_early_bird_epoch(per_layer.mean(axis=2), 0.16, lookback)
    if joint is not None:
        assert network is not None and network <= joint


def test_layer_functions_check_the_shape():
    with pytest.raises(ValueError, match="n_layers"):
        layer_early_birds.joint_epoch(np.zeros((3, 3)), 0.16, 1)


# --- partition_changes --------------------------------------------------------------------------------------------

def _one_layer_net(seed=0, width=6):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 2)).double()


def _clipped_length(weight, bias, bounds):
    """Length of the line weight . x + bias = 0 inside the box (sampled finely along its direction)."""
    xmin, xmax, ymin, ymax = bounds
    point = -bias * weight / (weight @ weight)
    direction = np.array([-weight[1], weight[0]]) / np.linalg.norm(weight)
    t = np.linspace(-10, 10, 2_000_001)
    inside = ((point[0] + t * direction[0] >= xmin) & (point[0] + t * direction[0] <= xmax)
              & (point[1] + t * direction[1] >= ymin) & (point[1] + t * direction[1] <= ymax))
    return inside.sum() * (t[1] - t[0])


def test_interior_edges_cover_every_spline_once():
    net, bounds = _one_layer_net(), (-1.0, 1.0, -1.0, 1.0)
    partition = partition2d(net, bounds)
    edges, _ = partition_changes.interior_edges(partition)
    weight, bias = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    expected = sum(_clipped_length(weight[k], bias[k], bounds) for k in range(len(bias)))
    assert np.isclose(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1).sum(), expected, rtol=1e-4)


@pytest.mark.parametrize("moved_by, expected_changed", [(0.0, False), (0.5, False), (2.0, True)])
def test_edges_change_where_a_spline_moved_more_than_the_tolerance(moved_by, expected_changed):
    net, bounds, tolerance = _one_layer_net(), (-1.0, 1.0, -1.0, 1.0), 0.01
    partition = partition2d(net, bounds)
    weight, bias = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    edges = partition_changes.interior_edges(partition)[0].mean(axis=1)
    node = next(k for k in range(len(bias)) if (np.abs(edges @ weight[k] + bias[k]) < 1e-9).any())
    reference = _one_layer_net()
    with torch.no_grad():  # move the node's line by moved_by * tolerance along its normal
        reference[0].bias[node] -= moved_by * tolerance * reference[0].weight[node].norm()
    changes = partition_changes.edge_changes(partition, reference, tolerance)
    middle = changes.segments.mean(axis=1)
    on_node = np.abs(middle @ weight[node] + bias[node]) / np.linalg.norm(weight[node]) < 1e-9
    assert on_node.any() and (~on_node).any()
    assert not changes.changed[~on_node].any()
    assert (changes.changed[on_node] == expected_changed).all()
    assert (changes.changed_fraction > 0) == expected_changed


def test_edge_changes_refuse_another_architecture():
    net = _one_layer_net()
    with pytest.raises(ValueError, match="same architecture"):
        partition_changes.edge_changes(partition2d(net, (-1, 1, -1, 1)), _one_layer_net(width=4), 0.01)
    with pytest.raises(ValueError, match="tolerance"):
        partition_changes.edge_changes(partition2d(net, (-1, 1, -1, 1)), net, 0.0)


def _moved_copy(net, node, distance):
    """``net`` with the line of hidden node ``node`` shifted by ``distance`` along its normal."""
    moved = copy.deepcopy(net)
    with torch.no_grad():
        moved[0].bias[node] -= distance * moved[0].weight[node].norm()
    return moved


@pytest.mark.parametrize("moved_by", [0.0, 0.004, 0.03])
def test_spline_moves_reads_how_far_each_line_moved(moved_by):
    net, bounds = _one_layer_net(), (-1.0, 1.0, -1.0, 1.0)
    weight, bias = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    edges = partition_changes.interior_edges(partition2d(net, bounds))[0].mean(axis=1)
    node = next(k for k in range(len(bias)) if (np.abs(edges @ weight[k] + bias[k]) < 1e-9).any())
    spacing = 1e-4
    moves = partition_changes.spline_moves(partition2d(_moved_copy(net, node, moved_by), bounds),
                                           partition2d(net, bounds), spacing)
    middle = moves.segments.mean(axis=1)
    shifted_bias = bias[node] - moved_by * np.linalg.norm(weight[node])
    on_node = np.abs(middle @ weight[node] + shifted_bias) / np.linalg.norm(weight[node]) < 1e-9
    assert on_node.any() and (~on_node).any()
    assert np.allclose(moves.distances[on_node], moved_by, atol=spacing / 2)  # the line's shift, to the sampling
    assert np.allclose(moves.distances[~on_node], 0.0, atol=spacing / 2)
    length = np.linalg.norm(moves.segments[:, 1] - moves.segments[:, 0], axis=1)
    expected = length[on_node].sum() / length.sum() if moved_by > 0.01 else 0.0
    assert np.isclose(moves.share(0.01), expected) and moves.share(np.inf) == 0.0


def test_spline_moves_agrees_with_the_forward_pass_test_on_a_deep_network():
    torch.manual_seed(3)
    earlier = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    later = copy.deepcopy(earlier)
    with torch.no_grad():
        for parameter in later.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    bounds, tolerance = (-2.0, 2.0, -2.0, 2.0), 0.02
    partition = partition2d(later, bounds)
    moves = partition_changes.spline_moves(partition, partition2d(earlier, bounds), tolerance / 100)
    flips = partition_changes.edge_changes(partition, earlier, tolerance)  # the earlier network's own forward pass
    assert np.array_equal(moves.segments, flips.segments)
    # a spline that crosses the normal within the tolerance passes within it; the converse may fail where it turns
    assert not (moves.distances[~flips.changed] > tolerance * 1.01).any()
    assert 0 < flips.changed.mean() < 1
    agree = (moves.distances > tolerance) == flips.changed
    assert agree.mean() > 0.9


def test_edge_nodes_from_the_neighbours_codes_equal_those_from_the_regions_maps():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    partition = partition2d(net, (-2, 2, -2, 2))
    segments, owners, neighbours = partition_changes.interior_edges_and_neighbours(partition)
    assert (neighbours >= 0).all() and (neighbours != owners).all()
    from_codes = partition_changes.edge_nodes(partition, segments, owners, neighbours)
    from_maps = partition_changes.edge_nodes(partition, segments, owners)  # no neighbours: the maps at the midpoint
    assert all(np.array_equal(a, b) for a, b in zip(from_codes, from_maps))
    assert np.array_equal(np.unique(from_codes[0]), np.arange(len(segments)))  # every edge has a node


def test_spline_moves_marks_lines_new_in_the_window_and_refuses_other_windows():
    net = _one_layer_net()
    weight, bias = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    inside = [k for k in range(len(bias)) if abs(bias[k]) < np.abs(weight[k]).sum()]  # lines that cross the square
    earlier = _moved_copy(net, inside[0], 10.0)  # the epoch before, that line lay far outside
    moves = partition_changes.spline_moves(partition2d(net, (-1, 1, -1, 1)), partition2d(earlier, (-1, 1, -1, 1)),
                                           1e-3)
    middle = moves.segments.mean(axis=1)
    on_node = np.abs(middle @ weight[inside[0]] + bias[inside[0]]) < 1e-9
    assert on_node.any() and np.isinf(moves.distances[on_node]).all() and np.isfinite(moves.distances[~on_node]).all()
    assert moves.share(np.inf) > 0
    with pytest.raises(ValueError, match="same rectangle"):
        partition_changes.spline_moves(partition2d(net, (-1, 1, -1, 1)), partition2d(net, (-1, 1, -1, 2)), 1e-3)
    with pytest.raises(ValueError, match="same architecture"):
        partition_changes.spline_moves(partition2d(net, (-1, 1, -1, 1)),
                                       partition2d(_one_layer_net(width=4), (-1, 1, -1, 1)), 1e-3)
    with pytest.raises(ValueError, match="spacing"):
        partition_changes.spline_moves(partition2d(net, (-1, 1, -1, 1)), partition2d(net, (-1, 1, -1, 1)), 0.0)


# --- resnet_slices ------------------------------------------------------------------------------------------------

def _bn_net(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
    return net.eval()


def test_check_exact_window_distances_and_the_figure_on_a_small_network():
    nets = [_bn_net(seed) for seed in (0, 1, 2)]
    plane = Plane(torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    partitions, seconds = resnet_slices.partitions_at(lambda epoch: nets[epoch], [0, 1, 2], (0, 1, 0, 1), plane)
    assert len(seconds) == 3 and all(s >= 0 for s in seconds)
    agree, error = resnet_slices.check_exact(partitions[0], nets[0], plane)
    assert agree and error < 1e-12
    probe = torch.rand(50, 2, generator=torch.Generator().manual_seed(0))
    to_previous, to_final = resnet_slices.window_distances(lambda epoch: nets[epoch], 2, probe)
    assert to_final[-1] == 0.0 and to_previous.shape == (2,) and to_final[0] == to_previous[1]
    moves = [partition_changes.spline_moves(partitions[i], partitions[i - 1], 1e-3) for i in (1, 2)]
    fig = resnet_slices.spline_moves_figure(
        partitions[1:], moves, (0.01, 0.1), ["a", "b"], "title", classes=(0, 1),
        extra_panel=lambda ax: resnet_slices.draw_window_distances(ax, to_previous, to_final, 1, (1,), "d"))
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "d"]
    plt.close(fig)
    with pytest.raises(ValueError, match="one SplineMoves"):
        resnet_slices.spline_moves_figure(partitions, moves, (0.01, 0.1), ["a", "b"], "t")
    with pytest.raises(ValueError, match="bounds"):
        resnet_slices.move_classes(moves[0], (0.1, 0.01))


def test_move_classes_and_edge_widths():
    moves = partition_changes.SplineMoves(np.zeros((5, 2, 2)), np.array([0.0, 0.01, 0.05, 0.2, np.inf]))
    assert resnet_slices.move_classes(moves, (0.01, 0.1)).tolist() == [0, 0, 1, 2, 3]
    assert resnet_slices.edge_width(100, 250) > resnet_slices.edge_width(10_000, 250)  # denser panels, finer lines
    assert resnet_slices.edge_width(10**8, 250) == 0.1 and resnet_slices.edge_width(1, 250) == 1.0


# --- fc_trajectory ------------------------------------------------------------------------------------------------

def test_fcnet_copies_and_their_distance_to_the_final_network():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    run = fc_trajectory.train_fcnet(x, y, iterations=8, snapshot_iterations=(2, 8), batch_size=16)
    assert run.iterations == [2, 8] and run.state.iteration == 8
    distances = fc_trajectory.distances_to_final(run, x)
    assert distances[1] == 0.0 and 0.0 <= distances[0] <= 1.0
    with pytest.raises(ValueError, match="no copy after 3 steps"):
        run.at(3)
    with pytest.raises(ValueError, match="snapshot iterations"):
        fc_trajectory.train_fcnet(x, y, iterations=8, snapshot_iterations=(9,), batch_size=16)


# --- early_bird_figures -------------------------------------------------------------------------------------------

def test_threshold_frame_marks_the_rule_s_epoch():
    matrix = _chain_matrix([0.5, 0.5, 0.05, 0.05, 0.05, 0.05])
    for threshold, expected in ((0.16, 6), (0.01, None)):
        fig = early_bird_figures.threshold_frame(matrix, threshold, 3, "t", thresholds=[0.01, 0.16])
        assert fig.axes[1].get_title() == f"EB epoch: {expected}"
        plt.close(fig)


def test_matrix_figures_have_one_panel_per_matrix():
    matrix = _chain_matrix([0.5, 0.1, 0.05, 0.05])
    fig = early_bird_figures.eb_figure({"a": matrix, "b": matrix}, {"a": 4, "b": None}, {"a": "A", "b": "B"}, 3)
    assert len(fig.axes) == 3  # two panels and the colorbar
    plt.close(fig)
    keyed = {(n, p): matrix for n in ("a", "b") for p in ("train", "test", "random")}
    fig = early_bird_figures.probe_figure(keyed, {key: None for key in keyed}, {"a": "A", "b": "B"}, 3)
    assert len(fig.axes) == 7
    plt.close(fig)


def test_a_deep_partition_is_unchanged_since_its_own_network():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    partition = partition2d(net, (-2, 2, -2, 2))
    changes = partition_changes.edge_changes(partition, net, tolerance=1e-3)
    assert len(changes.segments) == len(partition_changes.interior_edges(partition)[0])  # every edge's node found
    assert changes.changed_fraction == 0.0


def test_moved_after_and_formatting_without_nan():
    settling = canvas_boundary.Settling([0.2, 0.6, 0.4, 0.5, 0.52], drop=3)
    assert np.isclose(settling.moved_after(2), 0.2) and settling.moved_after(4) is None
    assert canvas_boundary.format_or_none(None, ".3f") == "-" and canvas_boundary.format_or_none(0.25, ".2f") == "0.25"
