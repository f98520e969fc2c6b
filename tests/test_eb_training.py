"""Spline early-bird training pipeline: schedules, tickets, FLOPs accounting and the comparison table."""
import numpy as np
import pytest
import torch

from spline_utils import data, pruning
from spline_utils.training import nets
from spline_utils.experiments import eb_training as et, eb_training_report as report
from spline_utils.training.recipes import TrainingRecipe, paper_recipe


def test_recipe_continues_the_step_learning_rate():
    schedule = TrainingRecipe(epochs=20, lr=0.1, milestones=(0.5, 0.75), momentum=0.5, weight_decay=0.0,
                              batch_size=32)
    assert schedule.milestone_epochs == (10, 15)
    assert [round(schedule.lr_at(e), 6) for e in (0, 9, 10, 14, 15, 19)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert schedule.rest(5) == dict(epochs=15, lr=0.1, milestones=[5, 10], momentum=0.5, weight_decay=0.0,
                                    batch_size=32)
    rest = schedule.rest(12)
    assert rest["epochs"] == 8 and rest["milestones"] == [3] and rest["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError):
        TrainingRecipe(milestones=(1.5,))


@pytest.fixture(scope="module")
def tiny_split():
    images, labels = data.digits(28)
    return et.Split(*data.train_test_split(images[:240], labels[:240], 0.25, seed=0))


@pytest.mark.parametrize("name", [name for name in et.METHODS if name != "dense"])
def test_prune_ticket_removes_the_requested_fraction(name):
    model = nets.small_cnn(channels=10, seed=0).eval()
    method = et.METHODS[name]
    pruned = et.prune_ticket(model, method, 0.3, probe=torch.randn(8, 1, 28, 28), space="data")
    assert sum(pruning.layer_widths(pruned)) == 20 - 6
    if method.scope == "layerwise":
        assert pruning.layer_widths(pruned) == [7, 7]


@pytest.mark.parametrize("network", ["alexnet", "vgg16", "preresnet101"])
def test_paper_recipes_resolve(network):
    recipe = paper_recipe(network)
    assert (recipe.epochs, recipe.lr, recipe.momentum, recipe.weight_decay, recipe.batch_size,
            recipe.milestone_epochs) == (160, 0.1, 0.9, 1e-4, 128, (80, 120))
    model = recipe.build_model(0)
    classes = 10 if recipe.dataset == "cifar10" else 100
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, classes)
    with pytest.raises(ValueError):
        paper_recipe("resnet50")


def test_compare_rows_and_flops_against_hand_count(tiny_split):
    channels, epochs = 4, 6
    schedule = TrainingRecipe(epochs=epochs, finetune_epochs=2)
    rows = et.compare(lambda seed: nets.small_cnn(channels=channels, seed=seed), tiny_split, seeds=[0],
                      ratios=[0.5], recipe=schedule, probe_size=16)
    assert [r["method"] for r in rows] == list(et.METHODS)
    n_train = len(tiny_split.train_x)

    def forward(c1, c2):  # FlopCounterMode: 2 FLOPs per multiply-accumulate of conv and linear layers
        return 2 * 441 * c1 * 64 + 2 * 25 * c1 * c2 * 16 + 2 * 16 * c2 * 10

    by_method = {r["method"]: r for r in rows}
    assert by_method["dense"]["flops"] == epochs * 3 * n_train * forward(channels, channels)
    slimming = by_method["network slimming"]
    widths = _widths_from_parameters(slimming["parameters"], channels)
    assert slimming["flops"] == epochs * 3 * n_train * forward(channels, channels) + 2 * 3 * n_train * forward(*widths)
    spline = by_method["spline-EB layerwise"]
    t = spline["epoch"]
    assert spline["cost_fraction"] == pytest.approx(forward(2, 2) / forward(channels, channels))
    assert spline["eb_fraction"] == t / epochs and by_method["dense"]["cost_fraction"] == 1.0
    if spline["detected"]:
        expected = t * (3 * n_train + 16) * forward(channels, channels) + (epochs - t) * 3 * n_train * forward(2, 2)
        assert spline["flops"] == expected
        no_probe = t * 3 * n_train * forward(channels, channels) + (epochs - t) * 3 * n_train * forward(2, 2)
        bound = et.saving_bound(spline["eb_fraction"], spline["cost_fraction"])
        assert bound == pytest.approx(by_method["dense"]["flops"] / no_probe)
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0


def _widths_from_parameters(parameters, channels):
    """Solve the small CNN's parameter count for its two widths (brute force over the few possibilities)."""
    for c1 in range(1, channels + 1):
        for c2 in range(1, channels + 1):
            if 441 * c1 + 2 * c1 + 25 * c1 * c2 + 2 * c2 + 16 * c2 * 10 + 10 == parameters:
                return c1, c2
    raise AssertionError(f"no widths give {parameters} parameters")


def test_undetected_early_bird_falls_back_to_the_trained_network(tiny_split):
    schedule = TrainingRecipe(epochs=3)  # lookback 3: the spline rule cannot fire before epoch 4
    rows = et.compare(lambda seed: nets.small_cnn(channels=3, seed=seed), tiny_split, seeds=[1], ratios=[0.3],
                      recipe=schedule, probe_size=8, methods=("dense", "spline-EB layerwise"))
    spline = rows[1]
    assert not spline["detected"] and spline["epoch"] == 3
    assert spline["flops"] == pytest.approx(rows[0]["flops"] * (1 + 8 / (3 * len(tiny_split.train_x))))


def test_saving_bound_against_hand_values():
    assert et.saving_bound(0.0, 0.25) == pytest.approx(4.0)  # never dense: 1 / f
    assert et.saving_bound(1.0, 0.25) == pytest.approx(1.0)  # never pruned: no saving
    assert et.saving_bound(0.1, 0.2) == pytest.approx(1 / 0.28)
    assert et.saving_bound(np.array([0.0, 0.5]), 0.5) == pytest.approx([2.0, 4 / 3])
    for phi, f in [(-0.1, 0.5), (1.1, 0.5), (0.5, 0.0), (0.5, 1.5)]:
        with pytest.raises(ValueError, match="eb_fraction"):
            et.saving_bound(phi, f)


def synthetic_rows():
    """Dense at 100 FLOPs; random @EB drawn at epochs 4 and 6 of 10, pruned to cost fractions 0.2 and 0.4."""
    rows = [dict(method="dense", ratio=0.0, seed=s, accuracy=a, flops=100.0, epoch=None, eb_fraction=None,
                 cost_fraction=1.0, detected=True, parameters=1) for s, a in enumerate([0.9, 0.8])]
    rows += [dict(method="random @EB", ratio=0.5, seed=s, accuracy=a, flops=f, epoch=e, eb_fraction=e / 10,
                  cost_fraction=c, detected=True, parameters=1)
             for s, (a, f, e, c) in enumerate([(0.7, 40.0, 4, 0.2), (0.5, 60.0, 6, 0.4)])]
    return rows


def test_summarize_and_table():
    summary = report.summarize(synthetic_rows())
    assert [r["method"] for r in summary] == ["dense", "random @EB"]
    assert summary[1]["accuracy_mean"] == pytest.approx(0.6) and summary[1]["accuracy_std"] == pytest.approx(0.1)
    assert summary[1]["flops_saving"] == pytest.approx(2.0) and summary[1]["epoch_mean"] == 5
    assert summary[1]["eb_fraction_mean"] == pytest.approx(0.5) and summary[1]["cost_fraction_mean"] == pytest.approx(0.3)
    # mean relative cost: (0.4 + 0.6 * 0.2 + 0.6 + 0.4 * 0.4) / 2 = 0.64
    assert summary[1]["saving_bound"] == pytest.approx(1 / 0.64)
    assert np.isnan(summary[0]["epoch_mean"]) and np.isnan(summary[0]["saving_bound"])
    table = report.format_table(summary)
    assert "random @EB" in table and "2.00x" in table and "1.56x" in table
    with pytest.raises(ValueError, match="unknown"):
        et.compare(lambda s: None, None, [0], [0.5], methods=("lottery",))


def test_method_plots_read_at_the_page_size_when_methods_share_their_flops():
    """Four methods on one ticket share their FLOPs: the plots must still keep every point and label apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spline_utils.plot.readability import check_figure

    rows = []
    for seed in range(2):
        rows.append(dict(method="dense", ratio=0.0, seed=seed, accuracy=0.97, flops=100.0, epoch=None,
                         eb_fraction=None, cost_fraction=1.0, detected=True, parameters=1))
        for ratio, f in [(0.3, 0.7), (0.5, 0.5), (0.7, 0.3)]:
            for index, method in enumerate(et.METHODS):
                if method == "dense":
                    continue
                phi = 0.1 if et.METHODS[method].ticket == "spline-EB" else 0.3
                flops = 100.0 * (phi + (1 - phi) * f) if et.METHODS[method].ticket != "trained" else 110.0
                rows.append(dict(method=method, ratio=ratio, seed=seed, accuracy=0.95 - 0.001 * index,
                                 flops=flops, epoch=4, eb_fraction=None if method == "network slimming" else phi,
                                 cost_fraction=f, detected=True, parameters=1))
    summary = report.summarize(rows)
    fig, (accuracy_ax, saving_ax) = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    report.plot_accuracy_and_saving(accuracy_ax, saving_ax, summary)
    fig.tight_layout()
    assert check_figure(fig) == []
    assert [t.get_text() for t in accuracy_ax.get_yticklabels()] == list(et.METHODS)
    fig, ax = plt.subplots(figsize=(8, 4.6))
    report.plot_saving_vs_eb_fraction(ax, rows)
    fig.tight_layout()
    assert check_figure(fig) == []
    plt.close("all")


def test_run_savings_divide_the_mean_dense_cost_by_each_run():
    rows = [{"method": "dense", "flops": 90.0}, {"method": "dense", "flops": 110.0},
            {"method": "mask-EB", "flops": 40.0}, {"method": "spline-EB layerwise", "flops": 50.0}]
    assert report.run_savings(rows) == [100 / 90, 100 / 110, 2.5, 2.0]
