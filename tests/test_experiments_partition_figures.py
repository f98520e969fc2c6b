"""The experiments of chapters 1 and 2 (vertices on splines, grid sampling, pruning measures) against oracles."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import spline_utils as su  # noqa: E402
from spline_utils.training import nets  # noqa: E402
from spline_utils.experiments import (grid_sampling, layer_views, mnist_slice, spline_vertices,  # noqa: E402
                                      square_pruning, x_task)
from spline_utils.engine.slices import image_canvas  # noqa: E402

SQUARE = (-2.0, 2.0, -2.0, 2.0)


def test_pre_activations_are_each_layers_input_to_its_nonlinearity():
    model = nets.mlp((2, 5, 4, 3), activation="leaky_relu", seed=0)
    x = torch.randn(7, 2, dtype=torch.float64)
    values = spline_vertices.hidden_pre_activations(model, x)
    w1, b1, w2, b2 = (p.detach().double() for p in [model[0].weight, model[0].bias, model[2].weight, model[2].bias])
    h1 = x @ w1.T + b1
    h2 = torch.where(h1 > 0, h1, 0.1 * h1) @ w2.T + b2
    assert [v.shape for v in values] == [(7, 5), (7, 4)]
    assert np.abs(values[0] - h1.numpy()).max() < 1e-12 and np.abs(values[1] - h2.numpy()).max() < 1e-12


def test_pre_activations_of_a_conv_bn_net_are_the_batchnorm_outputs():
    model = nets.small_cnn(channels=3, seed=0)
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    values = spline_vertices.hidden_pre_activations(model, x)
    double = model.double()
    with torch.no_grad():
        first = double[1](double[0](x))
        second = double[4](double[3](double[2](first)))
    assert np.abs(values[0] - first.reshape(4, -1).numpy()).max() < 1e-10
    assert np.abs(values[1] - second.reshape(4, -1).numpy()).max() < 1e-10
    assert model.training is False  # the model itself was not switched


def test_zero_nodes_refuses_another_model():
    partition = su.partition2d(nets.mlp((2, 4, 2), seed=0), SQUARE)
    with pytest.raises(ValueError, match="sizes"):
        spline_vertices.zero_nodes(nets.mlp((2, 5, 2), seed=0), partition, np.zeros((1, 2)))


def test_exact_square_turns_at_its_four_corners_each_on_a_diagonal():
    model = square_pruning.exact_square_net()
    partition = su.partition2d(model, SQUARE)
    bends = spline_vertices.BoundaryBends(partition, model)
    corners = sorted(map(tuple, np.round(bends.vertices, 9)))
    assert corners == [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]
    assert bends.on_spline.all()
    # corners (1, 1) and (-1, -1) lie on x1 = x2 (nodes 2, 3), the other two on x1 = -x2 (nodes 0, 1)
    assert bends.vertices_per_node(0).tolist() == [2, 2, 2, 2]
    assert bends.carriers[0].tolist() == [0, 1, 2, 3]
    assert len(bends.strokes[0]) == 8  # one stroke per (node, vertex) pair
    pieces, spread = square_pruning.boundary_pieces_and_spread(partition)
    assert pieces == 4 and spread < 1e-12


def test_a_boundary_without_vertices_has_no_carriers():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([0.0, 1.0]))
    partition = su.partition2d(model, SQUARE)
    bends = spline_vertices.BoundaryBends(partition, model)
    assert len(bends.vertices) == 0 and not bends.on_spline.any()
    assert all(len(c) == 0 for c in bends.carriers)


def test_later_bends_sit_on_earlier_splines_and_first_layer_lines_do_not_bend():
    model = nets.normal_init_(nets.mlp((2, 8, 8, 8), activation="leaky_relu", final_activation=True), seed=3)
    partition = su.partition2d(model, SQUARE)
    for layer in (1, 2):
        fraction, n_bends = spline_vertices.bends_on_earlier_splines(partition, model, layer)
        assert n_bends > 0 and fraction == 1.0
    fraction, n_bends = spline_vertices.bends_on_earlier_splines(partition, model, 0)
    assert n_bends == 0 and np.isnan(fraction)


def test_crossing_nodes_and_splines_in_the_domain_agree():
    model = nets.normal_init_(nets.mlp((2, 16, 16), activation="leaky_relu", final_activation=True), seed=11)
    partition = su.partition2d(model, SQUARE)
    present = layer_views.splines_in_domain(partition)
    absent = layer_views.constant_code_nodes(partition)
    for layer in range(2):
        assert present[layer] == spline_vertices.crossing_nodes(partition, layer).tolist()
        assert sorted(present[layer] + [k for l, k in absent if l == layer]) == list(range(16))


def test_minimum_widths_against_brute_force_over_directions():
    rectangle = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 0.5], [0.0, 0.5]])
    triangle = np.array([[0.0, 0.0], [4.0, 0.0], [1.0, 2.0]])
    widths = grid_sampling.minimum_widths([rectangle, triangle])
    angles = np.linspace(0, np.pi, 200_001)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for polygon, width in zip([rectangle, triangle], widths):
        extents = polygon @ directions.T
        assert abs((extents.max(0) - extents.min(0)).min() - width) < 1e-6
    assert abs(widths[0] - 0.5) < 1e-12


def test_grid_finds_the_four_sectors_of_the_exact_square():
    model = square_pruning.exact_square_net()
    partition = su.partition2d(model, (-1.9, 2.1, -2.0, 2.0))  # shifted: no grid point on a diagonal
    assert partition.num_regions == 4
    assert grid_sampling.regions_on_grid(model, partition, 20).tolist() == [0, 1, 2, 3]


def test_line_directions_and_axis_measures():
    measures = square_pruning.diagonal_pairs(np.array([44.0, 46.0, 133.0, 136.0]))
    assert measures == {"off_diagonal": 2.0, "gaps": [2.0, 3.0], "distinct": 4}
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))  # the lines x1 = 0 and x1 = -x2
    assert np.allclose(square_pruning.line_angles(layer), [90.0, 135.0])
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():  # logit 0 - logit 1 = relu(x1) + relu(x2) - 1: a boundary with two axis-parallel pieces
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
        model[2].bias.copy_(torch.tensor([0.0, 1.0]))
    partition = su.partition2d(model, SQUARE)
    # pieces: x1 = 1 (x2 < 0) and x2 = 1 (x1 < 0), both axis-parallel, and x1 + x2 = 1 in between (not)
    share = square_pruning.axis_parallel_share(partition)
    assert abs(share - 4.0 / (4.0 + np.sqrt(2.0))) < 1e-9
    assert square_pruning.axis_parallel_lines(model) == 2


def test_one_line_gives_two_turning_points():
    # |x2| - 1 - |x1|/2 with relu(x2), relu(-x2) on the horizontal line: both branches turn on x1 = 0 (one line)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[-0.5, -0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
        model[2].bias.copy_(torch.tensor([-1.0, 0.0]))
    bends = x_task.turning_points(model, SQUARE)
    assert sorted(map(tuple, np.round(bends.vertices, 9))) == [(0.0, -1.0), (0.0, 1.0)]
    assert bends.vertices_per_node(0).tolist() == [2, 2, 0, 0]  # both on the vertical line x1 = 0 (nodes 0, 1)


def test_zoom_window_stays_inside_and_first_correct_picks_the_first_agreed_image():
    assert mnist_slice.zoom_window(np.array([0.01, 0.5]), 0.1) == pytest.approx((0.0, 0.2, 0.4, 0.6))
    images = torch.arange(6, dtype=torch.float32)[:, None]
    labels = torch.tensor([6, 9, 6, 6, 9, 6])

    class Says(nn.Module):
        def __init__(self, right):
            super().__init__()
            self.right = right

        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 0] = 1.0
            for row, index in enumerate(x[:, 0].long().tolist()):
                if index in self.right:
                    logits[row, 6] = 2.0
            return logits

    assert mnist_slice.first_correct([Says({2, 3}), Says({3, 5})], images, labels, 6) == 3
    assert mnist_slice.first_correct([Says({2}), Says({5})], images, labels, 6) is None


def test_figures_draw(tmp_path):
    toy = nets.mlp((2, 6, 6, 2), seed=0)
    partition = su.partition2d(toy, SQUARE)
    figures = [layer_views.draw_fig1a(partition), layer_views.draw_fig8(partition),
               layer_views.draw_node_frame(partition, 1, 0),
               grid_sampling.draw_grid_counts(partition, [10, 20], [3, 4], np.array([0]), 10),
               x_task.draw_fig2([nets.mlp((2, 4, 2), seed=0)] * 2, ["a", "b"], ["c", "d"])]
    cnn = nets.small_cnn(channels=2, seed=0).eval()
    six, nine = torch.rand(1, 28, 28), torch.rand(1, 28, 28)
    canvas = image_canvas(six, nine)
    view = mnist_slice.SliceView(su.partition2d(cnn, (0.0, 1.0, 0.0, 1.0), plane=canvas), cnn, stroke=0.003)
    figures += [mnist_slice.draw_fig3({0.0: view, 0.5: view}, six, nine, zoom=0.03),
                mnist_slice.draw_window_frame(view, view.windows_along_boundary(1)[0], 0.03)]
    for index, fig in enumerate(figures):
        fig.savefig(tmp_path / f"{index}.png")
        plt.close(fig)
    with pytest.raises(ValueError, match="two hidden layers"):
        layer_views.draw_fig1a(su.partition2d(nets.mlp((2, 4, 2), seed=0), SQUARE))
