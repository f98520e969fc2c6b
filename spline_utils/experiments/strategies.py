"""Fig 9: four ways to train a small MLP, with the training cost counted.

Random initialization, the lottery ticket, greedy layerwise pretraining and overparametrize-then-prune, each traced
as test accuracy against cumulative training FLOPs (:func:`spline_utils.training.flops.mlp_training_flops`):
:func:`prune_mlp` (node surgery and lottery rewinding from :mod:`spline_utils.pruning`), :func:`layerwise_pretrain`
and :func:`compare_strategies`; the figure's panels: :func:`draw_accuracy_ranges`, :func:`draw_cost_bars` and
:func:`draw_learning_curves`.
"""
from __future__ import annotations

import copy
from typing import Sequence

import matplotlib.patches
import numpy as np
import torch
import torch.nn as nn

from spline_utils import pruning
from spline_utils.training import flops
from spline_utils.training.nets import mlp
from spline_utils.training.train import Callback, TrainState, accuracy, fit
from spline_utils.experiments.restarts import best_of_restarts


def linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    """The ``nn.Linear`` modules of an MLP, in order."""
    return [module for module in model if isinstance(module, nn.Linear)]


def prune_mlp(model: nn.Sequential, keep: Sequence[int], initial_model: nn.Module | None = None) -> nn.Sequential:
    """Keep the ``keep[l]`` nodes of hidden layer l with the largest incoming-weight L2 norm (the authors' FCNet
    criterion, ``pruning.node_scores(model, "magnitude")``) and remove the rest (``pruning.prune_nodes``).

    Parameters
    ----------
    model : nn.Sequential
        An MLP built by :func:`spline_utils.training.nets.mlp`.
    keep : sequence of int
        Nodes to keep per hidden layer.
    initial_model : nn.Module, optional
        A copy of ``model`` at initialization: the survivors are rewound to their *own* initial weights
        (``pruning.rewind``, the lottery ticket). Without it the pruned net keeps the trained weights.

    Returns
    -------
    nn.Sequential
        A new, smaller MLP; ``model`` is unchanged.
    """
    masks = pruning.select_nodes(pruning.node_scores(model, "magnitude"), keep=keep)
    pruned = pruning.prune_nodes(model, masks)
    return pruning.rewind(pruned, initial_model, masks) if initial_model is not None else pruned


def layerwise_pretrain(widths: Sequence[int], x: torch.Tensor, y: torch.Tensor, stage_epochs: int,
                       finetune_epochs: int, lr: float = 0.01, momentum: float = 0.0, batch_size: int = 64,
                       seed: int = 0, stage_callbacks=None, freeze: bool = True,
                       grow: str = "random") -> nn.Sequential:
    """Greedy layerwise pretraining, then fine-tuning of the whole MLP ``widths``.

    Stage l (l = 1, ..., L-1) adds hidden layer l and trains it with a linear head for ``stage_epochs`` while the
    layers below stay frozen; the last stage fine-tunes every layer for ``finetune_epochs``.

    Parameters
    ----------
    widths : sequence of int
        The final MLP, input first, e.g. ``(2, 8, 8, 2)``.
    x, y : torch.Tensor
        Training data, shapes (n, widths[0]) and (n,).
    stage_callbacks : callable, optional
        ``stage_callbacks(stage_widths, first_trainable) -> list of Callback`` for each stage (e.g. a cost trace);
        ``first_trainable`` indexes the first trained Linear of ``nets.mlp(stage_widths)``.
    freeze : bool
        Freeze the layers below the new one during its stage (the classic scheme); else train them too.
    grow : {"random", "identity"}
        How a new hidden layer starts. ``"random"``: a new random layer and a new random head (the classic scheme).
        ``"identity"``: it passes the layer below through unchanged (its inputs are ReLU outputs, so
        ``relu(I z) = z``; extra units start at random with zero weight in the head) and the head is the previous
        stage's, so adding a layer keeps the network's function; needs hidden widths that never shrink.

    Returns
    -------
    nn.Sequential
        The trained MLP, same architecture as ``nets.mlp(widths)``.
    """
    widths = list(widths)
    if len(widths) < 3:
        raise ValueError(f"layerwise pretraining needs at least one hidden layer, got widths {widths}")
    if grow not in ("identity", "random"):
        raise ValueError(f"grow must be 'identity' or 'random', got {grow!r}")
    if grow == "identity" and any(new < old for old, new in zip(widths[1:-2], widths[2:-1])):
        raise ValueError(f"grow='identity' needs hidden widths that never shrink, got {widths}")
    hidden = len(widths) - 2
    stages = [(widths[:depth + 1] + [widths[-1]], depth - 1, stage_epochs) for depth in range(1, hidden + 1)]
    stages.append((widths, 0, finetune_epochs))
    model = None
    for stage, (stage_widths, first_trainable, epochs) in enumerate(stages):
        grown = mlp(stage_widths, seed=seed + stage)
        if model is not None:
            old, new = linear_layers(model), linear_layers(grown)
            growing = stage < len(stages) - 1
            for old_layer, new_layer in zip(old[:-1] if growing else old, new):
                new_layer.load_state_dict(old_layer.state_dict())
            if growing and grow == "identity":
                _start_as_identity(new[first_trainable], new[-1], old[-1])
        if freeze:
            for frozen in linear_layers(grown)[:first_trainable]:
                frozen.requires_grad_(False)
        trainable = [p for p in grown.parameters() if p.requires_grad]
        callbacks = stage_callbacks(stage_widths, first_trainable) if stage_callbacks else ()
        fit(grown, x, y, epochs, optimizer=torch.optim.SGD(trainable, lr=lr, momentum=momentum),
            batch_size=batch_size, callbacks=callbacks, seed=seed + stage)
        model = grown
    return model


def _start_as_identity(layer: nn.Linear, head: nn.Linear, old_head: nn.Linear) -> None:
    """Make ``layer`` pass its (non-negative) inputs through and ``head`` read them as ``old_head`` did."""
    inputs = layer.in_features
    with torch.no_grad():
        layer.weight[:inputs] = torch.eye(inputs)
        layer.bias[:inputs] = 0.0
        head.weight.zero_()
        head.weight[:, :inputs] = old_head.weight
        head.bias.copy_(old_head.bias)


def layerwise_stages(widths: Sequence[int], data: tuple, stage_epochs: int, finetune_epochs: int, seed: int = 0,
                     lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64, **options) -> np.ndarray:
    """Test accuracy of :func:`layerwise_pretrain` on a two-hidden-layer MLP at the end of stage 1, after the first
    epoch of stage 2, at the end of stage 2 and after fine-tuning.

    ``data``: ``(x_train, y_train, x_validation, y_validation, x_test, y_test)``; ``options`` go to
    :func:`layerwise_pretrain` (``freeze``, ``grow``).
    """
    if len(widths) != 4:
        raise ValueError(f"layerwise_stages follows two hidden layers, got widths {widths}")
    x_train, y_train, _, _, x_test, y_test = data
    curve = []
    layerwise_pretrain(widths, x_train, y_train, stage_epochs, finetune_epochs, lr=lr, momentum=momentum,
                       batch_size=batch_size, seed=seed, **options,
                       stage_callbacks=lambda widths, first: [CostAccuracyTrace(x_test, y_test, 0.0, trace=curve)])
    return stage_points([accuracy for _, accuracy in curve], stage_epochs)


def stage_points(curve: Sequence[float], stage_epochs: int) -> np.ndarray:
    """From a two-hidden-layer layerwise learning curve (one value per epoch): the values at the end of stage 1,
    after the first epoch of stage 2, at the end of stage 2 and at the end."""
    return np.array([curve[stage_epochs - 1], curve[stage_epochs], curve[2 * stage_epochs - 1], curve[-1]])


class CostAccuracyTrace(Callback):
    """Records ``(cumulative training FLOPs, test accuracy)`` after every epoch, starting from ``start_flops``."""

    def __init__(self, x_test: torch.Tensor, y_test: torch.Tensor, flops_per_epoch: float, start_flops: float = 0.0,
                 trace: list | None = None):
        self.x_test, self.y_test = x_test, y_test
        self.flops_per_epoch, self.flops = float(flops_per_epoch), float(start_flops)
        self.trace = [] if trace is None else trace

    def on_epoch_end(self, state: TrainState) -> None:
        self.flops += self.flops_per_epoch
        self.trace.append((self.flops, accuracy(state.model, self.x_test, self.y_test)))


STRATEGIES = ("random init", "lottery ticket", "layerwise pretraining", "overparametrize + prune",
              "restarts, best on validation")


def compare_strategies(data: tuple, small: Sequence[int], dense: Sequence[int], epochs: int, finetune_epochs: int,
                       seed: int = 0, lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64,
                       layerwise_lr: float = 0.01) -> dict:
    """Train the small MLP ``small`` five ways and trace test accuracy against cumulative training FLOPs.

    * random init: ``nets.mlp(small)`` trained ``epochs`` epochs;
    * lottery ticket: ``nets.mlp(dense)`` trained ``epochs``, pruned to ``small`` (:func:`prune_mlp`), the survivors
      rewound to their own initial weights and retrained ``epochs``;
    * layerwise pretraining (:func:`layerwise_pretrain`, each new layer started as the identity): ``epochs // 2``
      per stage, then ``finetune_epochs``, at learning rate ``layerwise_lr``;
    * overparametrize + prune: the same trained dense net, pruned, fine-tuned ``finetune_epochs`` without rewinding;
    * restarts, best on validation (:func:`best_of_restarts`): as many random starts of ``small``, trained
      ``epochs`` each, as fit in the budget of overparametrize + prune, the best on the validation data kept.

    Parameters
    ----------
    data : tuple
        ``(x_train, y_train, x_validation, y_validation, x_test, y_test)``, inputs flattened to ``(n, small[0])``;
        only the restarts look at the validation data.

    Returns
    -------
    dict
        ``strategy -> list of (cumulative FLOPs, test accuracy)`` after every epoch, for :data:`STRATEGIES` and
        ``"dense"`` (the dense net that the lottery ticket and the pruned net start from); the restarts' list is the
        kept restart's, its FLOPs counting every restart before it; and ``"restarts"``: how many were trained.
    """
    if len(data) != 6:
        raise ValueError("data must be (x_train, y_train, x_validation, y_validation, x_test, y_test)")
    x_train, y_train, _, _, x_test, y_test = data
    if len(small) != len(dense) or (small[0], small[-1]) != (dense[0], dense[-1]):
        raise ValueError(f"small {small} and dense {dense} need the same depth, input and output sizes")
    if epochs < 2 or finetune_epochs < 1:
        raise ValueError(f"need epochs >= 2 and finetune_epochs >= 1, got {epochs} and {finetune_epochs}")
    n_train, settings = len(x_train), dict(lr=lr, momentum=momentum, batch_size=batch_size)
    traces = {name: [] for name in (*STRATEGIES, "dense")}

    def trace(name, widths, start=0.0, first_trainable=0):
        epoch_flops = flops.mlp_training_flops(widths, n_train, 1, first_trainable)
        return [CostAccuracyTrace(x_test, y_test, epoch_flops, start, traces[name])]

    fit(mlp(small, seed=seed), x_train, y_train, epochs, seed=seed, callbacks=trace(STRATEGIES[0], small), **settings)
    big = mlp(dense, seed=seed)
    initial = copy.deepcopy(big)
    fit(big, x_train, y_train, epochs, seed=seed, callbacks=trace("dense", dense), **settings)
    dense_cost, keep = traces["dense"][-1][0], list(small)[1:-1]
    fit(prune_mlp(big, keep, initial), x_train, y_train, epochs, seed=seed,
        callbacks=trace(STRATEGIES[1], small, dense_cost), **settings)
    layerwise = traces[STRATEGIES[2]]
    layerwise_pretrain(small, x_train, y_train, epochs // 2, finetune_epochs, seed=seed, grow="identity",
                       **{**settings, "lr": layerwise_lr},
                       stage_callbacks=lambda widths, first: trace(STRATEGIES[2], widths,
                                                                   layerwise[-1][0] if layerwise else 0.0, first))
    fit(prune_mlp(big, keep), x_train, y_train, finetune_epochs, seed=seed,
        callbacks=trace(STRATEGIES[3], small, dense_cost), **settings)
    run_cost = flops.mlp_training_flops(small, n_train, epochs)
    restarts = max(int(traces[STRATEGIES[3]][-1][0] // run_cost), 1)
    _, curve = best_of_restarts(small, data, restarts, epochs, seed=seed, **settings)
    epoch_flops = flops.mlp_training_flops(small, n_train, 1)
    traces[STRATEGIES[4]] = [((restarts - 1) * run_cost + (epoch + 1) * epoch_flops, float(accuracy))
                             for epoch, accuracy in enumerate(curve)]
    traces["restarts"] = restarts
    return traces


# Fig 9's look: one colour and one marker per strategy, the dense reference in black.
STYLES = {"random init": ("#e08a00", "o"), "lottery ticket": ("#1f5fbf", "s"),
          "layerwise pretraining": ("#2e9e44", "^"), "overparametrize + prune": ("#d62728", "D"),
          "restarts, best on validation": ("#8c564b", "v"), "dense": ("black", "*")}
STARTS_FROM_DENSE = ("lottery ticket", "overparametrize + prune")  # charged for the dense training first
WITH_DENSE = STRATEGIES + ("dense",)  # the five strategies and the dense reference, the rows of the figure


def _present(runs: Sequence[dict], names: Sequence[str] | None, order: Sequence[str] = WITH_DENSE) -> list:
    return [name for name in order if name in runs[0]] if names is None else list(names)


def draw_accuracy_ranges(ax, runs: Sequence[dict], names: Sequence[str] | None = None) -> None:
    """Final test accuracy of each strategy: one row each, a bar from the worst to the best seed, a dot per seed,
    the mean as a large marker with its value written beside it.

    Parameters
    ----------
    runs : sequence of dict
        :func:`compare_strategies` results, one per seed.
    names : sequence of str, optional
        Strategies to draw, top to bottom; by default those of :data:`WITH_DENSE` that ``runs`` hold.
    """
    names = _present(runs, names)
    for row, name in enumerate(names):
        colour, marker = STYLES[name]
        final = np.array([run[name][-1][1] for run in runs])
        ax.plot([final.min(), final.max()], [row, row], color=colour, linewidth=6, alpha=0.25,
                solid_capstyle="butt")
        ax.scatter(final, np.full(len(final), row), s=16, color=colour, alpha=0.7, zorder=3)
        ax.scatter(final.mean(), row, s=130 if marker == "*" else 70, marker=marker, color=colour,
                   edgecolor="white", linewidth=0.8, zorder=4)
        ax.annotate(f"{final.mean():.3f}", (final.mean(), row), xytext=(0, 7), textcoords="offset points",
                    ha="center", va="bottom", fontsize=10, color=colour)
    _strategy_rows(ax, names)
    ax.set_xlabel("final test accuracy")


def draw_cost_bars(ax, runs: Sequence[dict], names: Sequence[str] | None = None, unit: float = 1e6) -> None:
    """Total training cost of each strategy as a horizontal bar, the dense training it starts from hatched, and
    its multiple of the random start written at the end of the bar.

    Parameters
    ----------
    runs : sequence of dict
        :func:`compare_strategies` results (the cost is the same for every seed: the first is used).
    unit : float
        FLOPs per unit of the axis (MFLOPs by default).
    """
    names = _present(runs, names)
    dense_cost = runs[0]["dense"][-1][0]
    reference = runs[0][STRATEGIES[0]][-1][0]
    for row, name in enumerate(names):
        colour, _ = STYLES[name]
        total = runs[0][name][-1][0]
        inherited = dense_cost if name in STARTS_FROM_DENSE else 0.0
        if inherited:
            ax.barh(row, inherited / unit, height=0.6, color="white", edgecolor="#555555", hatch="///",
                    linewidth=0.8)
        ax.barh(row, (total - inherited) / unit, left=inherited / unit, height=0.6, color=colour)
        restarts = f" ({runs[0]['restarts']} runs)" if name == STRATEGIES[4] and "restarts" in runs[0] else ""
        ax.annotate(f"{total / reference:.1f}x{restarts}", (total / unit, row), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=10)
    _strategy_rows(ax, names)
    ax.set_xlim(0, 1.25 * max(run[name][-1][0] for run in runs[:1] for name in names) / unit)
    ax.set_xlabel("training MFLOPs")
    cheapest = min(range(1, len(names)), key=lambda row: runs[0][names[row]][-1][0], default=0)
    ax.legend(handles=[matplotlib.patches.Patch(facecolor="white", edgecolor="#555555", hatch="///",
                                                label="dense training first")], fontsize=10, loc="center left",
              bbox_to_anchor=(0.3, 1 - (cheapest + 0.5) / len(names)))  # beside the shortest bar below the first


def draw_learning_curves(ax, runs: Sequence[dict], names: Sequence[str] | None = None,
                         highlight: str | None = None) -> None:
    """Test accuracy after each epoch of the small network's own training (the dense net's for ``"dense"``).

    The mean over seeds as a line with a band from the worst to the best seed; with ``highlight``, every other
    strategy is faded. ``names``: by default those of :data:`STRATEGIES` that ``runs`` hold.
    """
    for name in _present(runs, names, STRATEGIES):
        colour, marker = STYLES[name]
        accuracies = np.array([[point[1] for point in run[name]] for run in runs])
        epochs = np.arange(1, accuracies.shape[1] + 1)
        alpha = 1.0 if highlight in (None, name) else 0.2
        ax.plot(epochs, accuracies.mean(axis=0), color=colour, marker=marker, markevery=max(len(epochs) // 6, 1),
                markersize=5, linewidth=2.2 if highlight == name else 1.6, alpha=alpha, label=name)
        ax.fill_between(epochs, accuracies.min(axis=0), accuracies.max(axis=0), color=colour, alpha=0.15 * alpha,
                        linewidth=0)
    ax.set_ylim(top=1.0)
    ax.set_xlabel("epoch of the small network's own training")
    ax.set_ylabel("test accuracy")


def _strategy_rows(ax, names: Sequence[str]) -> None:
    ax.set_yticks(range(len(names)), ["dense net (reference)" if name == "dense" else name for name in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
