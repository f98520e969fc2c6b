"""Spline early-bird training pipeline: schedules, tickets, FLOPs accounting and the comparison table."""
import numpy as np
import pytest
import torch

from spline_utils import data, eb_training as et, nets, pruning


def test_schedule_continues_the_step_learning_rate():
    schedule = et.Schedule(epochs=20, lr=0.1, milestones=(0.5, 0.75))
    assert schedule.milestone_epochs == (10, 15)
    assert [round(schedule.lr_at(e), 6) for e in (0, 9, 10, 14, 15, 19)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert schedule.rest(5) == dict(epochs=15, lr=0.1, milestones=[5, 10])
    rest = schedule.rest(12)
    assert rest["epochs"] == 8 and rest["milestones"] == [3] and rest["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError):
        et.Schedule(milestones=(1.5,))


@pytest.fixture(scope="module")
def tiny_split():
    images, labels = data.digits(28)
    return et.Split(*data.train_test_split(images[:240], labels[:240], 0.25, seed=0))


@pytest.mark.parametrize("criterion", ["spline layerwise", "spline global", "magnitude", "random", "slimming"])
def test_prune_ticket_removes_the_requested_fraction(criterion):
    model = nets.small_cnn(channels=10, seed=0).eval()
    pruned = et.prune_ticket(model, criterion, 0.3, probe=torch.randn(8, 1, 28, 28), space="data")
    assert sum(pruning.layer_widths(pruned)) == 20 - 6
    if criterion != "spline global" and criterion != "slimming":
        assert pruning.layer_widths(pruned) == [7, 7]


def test_compare_rows_and_flops_against_hand_count(tiny_split):
    channels, epochs = 4, 6
    schedule = et.Schedule(epochs=epochs, finetune_epochs=2)
    rows = et.compare(lambda seed: nets.small_cnn(channels=channels, seed=seed), tiny_split, seeds=[0],
                      ratios=[0.5], schedule=schedule, probe_size=16)
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
    if spline["detected"]:
        expected = t * (3 * n_train + 16) * forward(channels, channels) + (epochs - t) * 3 * n_train * forward(2, 2)
        assert spline["flops"] == expected
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
    schedule = et.Schedule(epochs=3)  # lookback 3: the spline rule cannot fire before epoch 4
    rows = et.compare(lambda seed: nets.small_cnn(channels=3, seed=seed), tiny_split, seeds=[1], ratios=[0.3],
                      schedule=schedule, probe_size=8, methods=("dense", "spline-EB layerwise"))
    spline = rows[1]
    assert not spline["detected"] and spline["epoch"] == 3
    assert spline["flops"] == pytest.approx(rows[0]["flops"] * (1 + 8 / (3 * len(tiny_split.train_x))))


def test_summarize_and_table():
    rows = [dict(method="dense", ratio=0.0, seed=s, accuracy=a, flops=100.0, epoch=None, detected=True, parameters=1)
            for s, a in enumerate([0.9, 0.8])]
    rows += [dict(method="random @EB", ratio=0.5, seed=s, accuracy=a, flops=f, epoch=e, detected=True, parameters=1)
             for s, (a, f, e) in enumerate([(0.7, 40.0, 4), (0.5, 60.0, 6)])]
    summary = et.summarize(rows)
    assert [r["method"] for r in summary] == ["dense", "random @EB"]
    assert summary[1]["accuracy_mean"] == pytest.approx(0.6) and summary[1]["accuracy_std"] == pytest.approx(0.1)
    assert summary[1]["flops_saving"] == pytest.approx(2.0) and summary[1]["epoch_mean"] == 5
    assert np.isnan(summary[0]["epoch_mean"])
    table = et.format_table(summary)
    assert "random @EB" in table and "2.00x" in table
    with pytest.raises(ValueError, match="unknown"):
        et.compare(lambda s: None, None, [0], [0.5], methods=("lottery",))
