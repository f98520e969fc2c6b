"""The experiments of chapter 5 (sawtooth, k-means, training strategies, restarts) against independent oracles."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans
from torch.utils.flop_counter import FlopCounterMode

from spline_utils.training import flops, nets
from spline_utils.experiments import kmeans, restarts, sawtooth, strategies
from spline_utils.training.train import Callback, fit

SAWTOOTH_CORNERS = ([-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0])


def test_sawtooth_is_the_two_peak_polyline():
    x, y = sawtooth.sawtooth_task(1001, dtype=torch.float64)
    expected = np.interp(x[:, 0].numpy(), *SAWTOOTH_CORNERS)
    assert np.abs(y[:, 0].numpy() - expected).max() < 1e-12


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
def test_hand_built_four_unit_net_reproduces_the_target(dtype, tolerance):
    net = sawtooth.exact_sawtooth_net(dtype)
    x = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    with torch.no_grad():
        output = net(x[:, None].to(dtype))[:, 0].double().numpy()
    assert net[0].out_features == 4
    assert np.abs(output - np.interp(x.numpy(), *SAWTOOTH_CORNERS)).max() < tolerance


def test_exact_net_knots_are_the_corners():
    assert np.allclose(sawtooth.knots(sawtooth.exact_sawtooth_net()), [-1.0, -0.5, 0.0, 0.5])


def _train_alone(width, seed, steps, x, y):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1))
    fit(net, x, y, steps, batch_size=len(x), optimizer=torch.optim.Adam(net.parameters(), 0.01),
        loss_fn=F.mse_loss)
    return net


def test_ensemble_members_train_exactly_as_alone():
    x, y = sawtooth.sawtooth_task(41)
    ensemble = sawtooth.ShallowEnsemble(5, seeds=[3, 7])
    fit(ensemble, x, y, 60, batch_size=len(x), optimizer=torch.optim.Adam(ensemble.parameters(), 0.01),
        loss_fn=sawtooth.ensemble_mse)
    for index, seed in enumerate([3, 7]):
        alone = _train_alone(5, seed, 60, x, y)
        member = ensemble.member(index)
        for a, b in zip(alone.parameters(), member.parameters()):
            assert torch.allclose(a, b, atol=1e-5)
        with torch.no_grad():
            assert torch.allclose(member(x)[:, 0], ensemble(x)[:, index], atol=1e-6)


def test_width_sweep_shapes_and_wide_nets_fit():
    errors, ensembles = sawtooth.width_sweep([2, 64], seeds=[0, 1], steps=300, lr=0.02, n_samples=51)
    assert errors.shape == (2, 2) and set(ensembles) == {2, 64}
    assert errors[1].max() < errors[0].min()  # two units cannot draw two peaks


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_knots_are_exactly_where_the_slope_changes(seed, width):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, 1)).double()
    points = sawtooth.knots(net)
    edges = np.concatenate([[-1.0], points, [1.0]])
    with torch.no_grad():
        def slope(a, b):
            at_b, at_a = (net(torch.tensor([[t]], dtype=torch.float64)) for t in (b, a))
            return float((at_b - at_a) / (b - a))
        for left, right in zip(edges[:-1], edges[1:]):  # affine between knots
            if right - left > 1e-6:
                third = (right - left) / 3
                assert abs(slope(left, left + third) - slope(left + third, right)) < 1e-7
        for knot in points:  # a kink at every knot (distinct knots only)
            if np.sum(np.abs(points - knot) < 1e-6) == 1 and -1 + 1e-4 < knot < 1 - 1e-4:
                gap = min(1e-5, np.min(np.abs(np.concatenate([points[points != knot], [-1.0, 1.0]]) - knot)) / 3)
                assert abs(slope(knot - gap, knot) - slope(knot, knot + gap)) > 1e-9


def test_gaussian_grid_layout():
    points, centres = kmeans.gaussian_grid(side=3, spacing=2.0, std=0.01, per_cluster=5, seed=1)
    assert points.shape == (45, 2) and centres.shape == (9, 2)
    assert sorted(set(centres[:, 0])) == [0.0, 2.0, 4.0]
    assert np.abs(points.reshape(9, 5, 2) - centres[:, None]).max() < 0.1


def test_lloyd_matches_sklearn_from_the_same_start():
    points, _ = kmeans.gaussian_grid(side=4, std=0.2, per_cluster=30, seed=2)
    start = kmeans.random_init(points, 16, seed=5)
    ours = kmeans.lloyd(points, start)
    theirs = KMeans(16, init=start, n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(points)
    assert np.allclose(ours, theirs.cluster_centers_, atol=1e-10)
    assert kmeans.kmeans_cost(points, ours) == pytest.approx(theirs.inertia_, rel=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9))
def test_removal_costs_match_brute_force(seed, k):
    generator = np.random.default_rng(seed)
    points, centroids = generator.normal(size=(40, 2)), generator.normal(size=(k, 2))
    base = kmeans.kmeans_cost(points, centroids)
    brute = [kmeans.kmeans_cost(points, np.delete(centroids, c, axis=0)) - base for c in range(k)]
    assert np.allclose(kmeans.removal_costs(points, centroids), brute, atol=1e-9)


def test_pruning_back_to_64_recovers_the_grid():
    points, centres = kmeans.gaussian_grid(seed=0)
    start = kmeans.lloyd(points, kmeans.random_init(points, 128, seed=0))
    final, history = kmeans.prune_centroids(points, start, 64)
    assert final.shape == (64, 2) and len(history) == 65 and len(history[-1]) == 64
    assert kmeans.recovered_centres(centres, final, radius=0.25).all()
    from_scratch = kmeans.lloyd(points, kmeans.random_init(points, 64, seed=0))
    assert kmeans.kmeans_cost(points, final) < kmeans.kmeans_cost(points, from_scratch)


def test_recovered_needs_close_and_unshared():
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    centroids = np.array([[0.05, 0.0], [0.0, 0.05], [3.0, 3.0]])  # two on centre 0, none near 1 and 2
    assert kmeans.recovered_centres(centres, centroids, radius=0.25).tolist() == [True, False, False]
    shared = np.array([[0.45, 0.0], [9.0, 9.0]])  # nearest centroid of centres 0 and 1, both within the radius
    assert kmeans.recovered_centres(centres, shared, radius=0.6).tolist() == [True, False, False]


@pytest.mark.parametrize("widths", [(2, 8, 8, 2), (64, 16, 10), (3, 5, 7, 4, 2)])
def test_flops_match_torch_counter(widths):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        nets.mlp(widths)(torch.zeros(1, widths[0]))
    assert flops.mlp_forward_flops(widths) == counter.get_total_flops()
    assert flops.mlp_training_flops(widths, 10, 3) == 3 * 10 * 3 * counter.get_total_flops()
    frozen_first = flops.mlp_forward_flops(widths) + 2 * flops.mlp_forward_flops(widths[1:])
    assert flops.mlp_training_flops(widths, 1, 1, first_trainable=1) == frozen_first


def _zero_nodes(model, kept):
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for layer, keep in zip(strategies.linear_layers(masked)[:-1], kept):
            dropped = torch.ones(layer.out_features, dtype=torch.bool)
            dropped[keep] = False
            layer.weight[dropped] = 0.0
            layer.bias[dropped] = 0.0
    return masked


def test_prune_mlp_equals_zeroing_the_weakest_nodes():
    model = nets.mlp((3, 10, 9, 2), seed=4)
    pruned = strategies.prune_mlp(model, [4, 3])
    scores = [layer.weight.norm(dim=1) for layer in strategies.linear_layers(model)[:-1]]  # incoming L2 norms
    kept = [score.argsort(descending=True)[:k] for score, k in zip(scores, [4, 3])]
    x = torch.randn(50, 3)
    with torch.no_grad():
        assert torch.allclose(pruned(x), _zero_nodes(model, kept)(x), atol=1e-6)
    assert [layer.out_features for layer in strategies.linear_layers(pruned)] == [4, 3, 2]


def test_prune_mlp_rewinds_survivors_to_their_own_initial_weights():
    model = nets.mlp((2, 6, 2), seed=1)
    initial = copy.deepcopy(model)
    with torch.no_grad():
        model[0].weight[4:].mul_(100.0)  # "training": nodes 4 and 5 become the strongest
    ticket = strategies.prune_mlp(model, [2], initial_model=initial)
    assert torch.equal(ticket[0].weight, initial[0].weight[[4, 5]])
    assert torch.equal(ticket[2].weight, initial[2].weight[:, [4, 5]])
    with pytest.raises(ValueError, match="keep"):
        strategies.prune_mlp(model, [7])


class _FirstLayerRecorder(Callback):
    def __init__(self, log):
        self.log = log

    def on_train_begin(self, state):
        self.log.append(("begin", state.model[0].weight.detach().clone()))

    def on_epoch_end(self, state):
        self.log.append(("end", state.model[0].weight.detach().clone()))


def test_layerwise_pretraining_freezes_lower_layers_then_fine_tunes():
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    log = []
    model = strategies.layerwise_pretrain((2, 5, 4, 2), x, y, stage_epochs=2, finetune_epochs=2, lr=0.1,
                                  stage_callbacks=lambda widths, first: [_FirstLayerRecorder(log)])
    assert [layer.out_features for layer in strategies.linear_layers(model)] == [5, 4, 2]
    stage2 = log[3:6]  # begin + 2 epochs of stage 2: layer 1 frozen
    assert all(torch.equal(stage2[0][1], weight) for _, weight in stage2)
    assert torch.equal(log[2][1], stage2[0][1])  # stage 2 starts from stage 1's layer
    assert not torch.equal(log[6][1], log[-1][1])  # fine-tuning moves it again


def test_identity_growth_keeps_the_function_when_a_layer_is_added():
    x, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    outputs = []

    class Outputs(Callback):
        def on_train_begin(self, state):
            with torch.no_grad():
                outputs.append(state.model(x))

        def on_epoch_end(self, state):
            with torch.no_grad():
                outputs.append(state.model(x))

    strategies.layerwise_pretrain((2, 5, 6, 2), x, y, stage_epochs=2, finetune_epochs=1, lr=0.1, grow="identity",
                                  stage_callbacks=lambda widths, first: [Outputs()])
    torch.testing.assert_close(outputs[3], outputs[2])  # stage 2 starts where stage 1 ended (a wider layer too)
    with pytest.raises(ValueError, match="never shrink"):
        strategies.layerwise_pretrain((2, 5, 4, 2), x, y, 1, 1, grow="identity")


def test_stage_points_pick_the_ends_of_the_stages():
    curve = list(range(10))  # stages of 3 epochs: 0 1 2 | 3 4 5 | 6 7 8 9
    assert strategies.stage_points(curve, 3).tolist() == [2, 3, 5, 9]


def test_restart_ensemble_members_train_exactly_as_alone():
    x, y = torch.randn(50, 3), torch.randint(0, 3, (50,))
    ensemble = restarts.MLPEnsemble((3, 4, 3), seeds=[5, 9])
    fit(ensemble, x, y, 3, lr=0.1, momentum=0.9, batch_size=16, seed=2, loss_fn=restarts.ensemble_loss)
    for member, seed in enumerate([5, 9]):
        alone = nets.mlp((3, 4, 3), seed=seed)
        fit(alone, x, y, 3, lr=0.1, momentum=0.9, batch_size=16, seed=2)
        with torch.no_grad():
            torch.testing.assert_close(ensemble(x)[member], alone(x), rtol=1e-5, atol=1e-5)


def test_best_of_restarts_keeps_the_best_on_validation():
    x, y = torch.randn(60, 2), torch.randint(0, 2, (60,))
    data = (x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:])
    picked, curve = restarts.best_of_restarts((2, 3, 2), data, restarts=4, epochs=2, seed=1)
    ensemble = restarts.MLPEnsemble((2, 3, 2), [1 + 1000 * r for r in range(4)])
    fit(ensemble, x[:40], y[:40], 2, lr=0.05, momentum=0.9, batch_size=64, seed=1, loss_fn=restarts.ensemble_loss)
    validation = ensemble.accuracies(x[40:50], y[40:50])
    assert validation[picked] == validation.max() and picked == int(np.argmax(validation))
    assert curve.shape == (2,) and curve[-1] == ensemble.accuracies(x[50:], y[50:])[picked]


def test_cost_trace_accumulates():
    x, y = torch.randn(20, 2), torch.randint(0, 2, (20,))
    trace = strategies.CostAccuracyTrace(x, y, flops_per_epoch=10.0, start_flops=5.0)
    fit(nets.mlp((2, 3, 2), seed=0), x, y, 3, callbacks=[trace])
    assert [flops for flops, _ in trace.trace] == [15.0, 25.0, 35.0]


def test_strategy_costs_add_up():
    x, y = torch.randn(40, 2), torch.randint(0, 2, (40,))
    small, dense = (2, 3, 3, 2), (2, 8, 8, 2)
    traces = strategies.compare_strategies((x, y, x[:8], y[:8], x[:10], y[:10]), small, dense, epochs=4,
                                           finetune_epochs=2)
    dense_cost = flops.mlp_training_flops(dense, 40, 4)
    assert traces["dense"][-1][0] == dense_cost
    assert traces["random init"][-1][0] == flops.mlp_training_flops(small, 40, 4)
    assert traces["lottery ticket"][-1][0] == dense_cost + flops.mlp_training_flops(small, 40, 4)
    assert traces["overparametrize + prune"][-1][0] == dense_cost + flops.mlp_training_flops(small, 40, 2)
    layerwise = (flops.mlp_training_flops((2, 3, 2), 40, 2) + flops.mlp_training_flops(small, 40, 2, first_trainable=1)
                 + flops.mlp_training_flops(small, 40, 2))
    assert traces["layerwise pretraining"][-1][0] == layerwise
    run = flops.mlp_training_flops(small, 40, 4)
    assert traces["restarts"] == int(traces["overparametrize + prune"][-1][0] // run)  # the same budget at most
    assert traces["restarts, best on validation"][-1][0] == traces["restarts"] * run
    assert [len(traces[s]) for s in strategies.STRATEGIES] == [4, 4, 6, 2, 4]
    assert all(0.0 <= accuracy <= 1.0 for s in strategies.STRATEGIES for _, accuracy in traces[s])


def _synthetic_runs():
    """Two seeds of made-up traces: (cumulative FLOPs, accuracy) per epoch, dense cost 100 MFLOPs."""
    dense = [(50e6, 0.9), (100e6, 0.97)]
    return [{"random init": [(1e6, 0.5), (2e6, 0.70 + 0.2 * seed)],
             "lottery ticket": [(101e6, 0.8), (102e6, 0.95 + 0.05 * seed)],
             "layerwise pretraining": [(1e6, 0.6), (3e6, 0.8), (4e6, 0.85)],
             "overparametrize + prune": [(101e6, 0.96)],
             "dense": dense} for seed in (0, 1)]


def test_fig9_accuracy_ranges_span_worst_to_best_seed_and_stay_at_most_one():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    strategies.draw_accuracy_ranges(ax, _synthetic_runs())
    ranges = [line.get_xdata() for line in ax.lines]
    expected = [(0.7, 0.9), (0.95, 1.0), (0.85, 0.85), (0.96, 0.96), (0.97, 0.97)]
    np.testing.assert_allclose(ranges, expected)
    assert max(max(r) for r in ranges) <= 1.0
    assert [t.get_text() for t in ax.texts] == ["0.800", "0.975", "0.850", "0.960", "0.970"]  # the means
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "dense net (reference)"
    plt.close(fig)


def test_fig9_cost_bars_split_off_the_dense_training_and_give_the_multiple_of_random_init():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    strategies.draw_cost_bars(ax, _synthetic_runs())
    bars = [(p.get_x(), p.get_width(), p.get_y() + p.get_height() / 2) for p in ax.patches]
    # rows: random (2), lottery (100 hatched + 2), layerwise (4), prune (100 hatched + 1), dense (100) MFLOPs
    expected = [(0, 2, 0), (0, 100, 1), (100, 2, 1), (0, 4, 2), (0, 100, 3), (100, 1, 3), (0, 100, 4)]
    np.testing.assert_allclose(bars, expected)
    assert [t.get_text() for t in ax.texts] == ["1.0x", "51.0x", "2.0x", "50.5x", "50.0x"]
    plt.close(fig)


def test_fig9_learning_curves_are_the_mean_over_seeds_per_own_epoch():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    strategies.draw_learning_curves(ax, _synthetic_runs(), highlight="lottery ticket")
    curves = {line.get_label(): line for line in ax.lines}
    np.testing.assert_allclose(curves["random init"].get_ydata(), [0.5, 0.8])
    np.testing.assert_allclose(curves["layerwise pretraining"].get_xdata(), [1, 2, 3])
    assert curves["lottery ticket"].get_alpha() == 1.0 and curves["random init"].get_alpha() == 0.2
    plt.close(fig)


def test_voronoi_crosses_exactly_the_centres_left_without_a_centroid():
    import matplotlib.pyplot as plt

    points, centres = kmeans.gaussian_grid(side=3, std=0.05, per_cluster=5, seed=0)
    fig, ax = plt.subplots()
    assert not kmeans.draw_voronoi(ax, points, centres, centres.copy(), 0.25, view=(-1, 3, -1, 3)).any()
    two_in_one = centres.copy()
    two_in_one[4] = centres[0] + 0.05  # the centre cluster loses its centroid to cluster 0
    missed = kmeans.draw_voronoi(ax, points, centres, two_in_one, 0.25, view=(-1, 3, -1, 3))
    assert np.flatnonzero(missed).tolist() == [4]  # no centroid near the centre cluster any more
    crosses = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(crosses, centres[[4]])
    plt.close(fig)
