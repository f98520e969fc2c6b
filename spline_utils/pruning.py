"""Pruning: node/channel surgery that really removes units, weight masks, and lottery-ticket rewinding.

Node pruning is ``scores -> keep masks -> surgery``, so any criterion plugs in: :func:`node_scores` (one score per
node or channel of every hidden layer, lowest pruned first: ``"magnitude"``, ``"slimming"``, ``"random"`` or a
callable), :func:`select_nodes` (layerwise or global keep masks, never emptying a layer), :func:`prune_nodes` (a new,
smaller ``nn.Sequential``: fewer parameters and FLOPs). :func:`rewind` resets survivors to their *own* initial
weights (the authors' code rewinds to another network's). :func:`prune_weights` is unstructured pruning with
:mod:`torch.nn.utils.prune` masks. Hidden layers are all Linear/Conv2d modules but the last (the classifier).
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.utils.prune as torch_prune

AFFINE = (nn.Linear, nn.Conv2d)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
PASS_THROUGH = (nn.ReLU, nn.LeakyReLU, nn.AvgPool2d, nn.MaxPool2d, nn.Dropout, nn.Identity)
SUPPORTED = "Linear, Conv2d (groups=1), BatchNorm1d/2d, ReLU, LeakyReLU, AvgPool2d, MaxPool2d, Dropout, Identity, " \
            "Flatten, nested in nn.Sequential"
SCOPES = ("layerwise", "global")


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's modules in order as ``(qualified name, module)``, nested ``nn.Sequential`` flattened.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Sequential`` or holds a module that pruning does not handle (named).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"pruning needs an nn.Sequential (e.g. from spline_utils.nets.mlp / small_cnn / small_vgg), "
                        f"got {type(model).__name__}")
    found = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            continue
        if not isinstance(module, (*AFFINE, *BATCHNORM, *PASS_THROUGH, nn.Flatten)):
            raise TypeError(f"unsupported module {name} ({type(module).__name__}); pruning handles {SUPPORTED}")
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            raise TypeError(f"Conv2d {name} has groups={module.groups}; only groups=1 can be pruned")
        found.append((name, module))
    return found


def hidden_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The prunable layers: every Linear/Conv2d except the last one, as ``(name, module)``."""
    affine = [(name, module) for name, module in leaves(model) if isinstance(module, AFFINE)]
    if len(affine) < 2:
        raise ValueError("the model has no hidden layer to prune: it needs at least two Linear/Conv2d modules")
    return affine[:-1]


def layer_widths(model: nn.Module) -> list[int]:
    """Number of nodes (Linear) or channels (Conv2d) of each hidden layer."""
    return [_width(module) for _, module in hidden_layers(model)]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (with :mod:`torch.nn.utils.prune` masks: counted once, as the dense tensor)."""
    return sum(parameter.numel() for parameter in model.parameters())


def magnitude_scores(model: nn.Module) -> list[torch.Tensor]:
    """L2 norm of each node's incoming weights: Linear rows, Conv2d filters. List of (width_l,) tensors."""
    return [module.weight.detach().flatten(1).norm(dim=1) for _, module in hidden_layers(model)]


def slimming_scores(model: nn.Module) -> list[torch.Tensor]:
    """``|gamma|`` of the BatchNorm that follows each hidden layer (network slimming). List of (width_l,) tensors."""
    scores, following = [], _following_batchnorms(model)
    for (name, _), batchnorm in zip(hidden_layers(model), following):
        if batchnorm is None or not batchnorm.affine:
            raise ValueError(f"network slimming needs an affine BatchNorm after every hidden layer; {name} has none. "
                             "Use criterion='magnitude' for networks without BatchNorm.")
        scores.append(batchnorm.weight.detach().abs())
    return scores


def random_scores(model: nn.Module, seed: int = 0) -> list[torch.Tensor]:
    """Uniform random scores (seeded): the baseline every criterion must beat."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(width, generator=generator) for width in layer_widths(model)]


CRITERIA: dict[str, Callable] = {"magnitude": magnitude_scores, "slimming": slimming_scores, "random": random_scores}


def node_scores(model: nn.Module, criterion: str | Callable = "magnitude", **options) -> list[torch.Tensor]:
    """One score per node/channel of every hidden layer; the lowest are pruned first.

    Parameters
    ----------
    model : nn.Sequential
    criterion : {"magnitude", "slimming", "random"} or callable
        A callable is called as ``criterion(model, **options)`` and must return one 1-D tensor per hidden layer.
    **options
        Passed to the criterion (e.g. ``seed`` for ``"random"``).

    Returns
    -------
    list of torch.Tensor, tensor ``l`` of shape (width_l,)
    """
    if isinstance(criterion, str):
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; use one of {sorted(CRITERIA)} or a callable")
        criterion = CRITERIA[criterion]
    scores = [torch.as_tensor(score).detach().float().flatten() for score in criterion(model, **options)]
    widths = layer_widths(model)
    if [len(score) for score in scores] != widths:
        raise ValueError(f"the criterion returned scores of lengths {[len(s) for s in scores]}; the hidden layers "
                         f"have widths {widths}")
    return scores


def select_nodes(scores: Sequence[torch.Tensor], ratio: float, scope: str = "layerwise") -> list[torch.Tensor]:
    """Keep masks that remove the ``ratio`` fraction of lowest-scoring nodes.

    Parameters
    ----------
    scores : sequence of torch.Tensor, tensor ``l`` of shape (width_l,)
    ratio : float in [0, 1)
        Fraction of nodes to remove: ``round(ratio * width_l)`` per layer (``"layerwise"``) or
        ``round(ratio * total)`` over all layers with one threshold (``"global"``; scores must then be comparable
        across layers, as BatchNorm scales are).
    scope : {"layerwise", "global"}

    Returns
    -------
    list of torch.Tensor of bool, mask ``l`` of shape (width_l,)
        True for the nodes to keep. Every layer keeps at least its highest-scoring node; ties are broken by
        position (earlier nodes are pruned first), so the result is deterministic.
    """
    _check_ratio_and_scope(ratio, scope, "nodes")
    scores = [torch.as_tensor(score).detach().flatten().double() for score in scores]
    if not scores or any(len(score) == 0 for score in scores):
        raise ValueError("need at least one hidden layer and at least one score per layer")
    if scope == "layerwise":
        return [_keep_highest(score, len(score) - round(ratio * len(score))) for score in scores]
    joined = torch.cat(scores)
    keep = _keep_highest(joined, len(joined) - round(ratio * len(joined))).split([len(s) for s in scores])
    masks = [mask.clone() for mask in keep]
    for mask, score in zip(masks, scores):
        if not mask.any():
            mask[int(torch.argmax(score))] = True
    return masks


def prune_nodes(model: nn.Module, keep_masks: Sequence[torch.Tensor]) -> nn.Sequential:
    """Remove the nodes/channels whose mask entry is False: a new, smaller network (``model`` is unchanged).

    For each hidden layer, the kept rows (Linear) or filters (Conv2d) and biases stay, the BatchNorm after it keeps
    the same channels (weights, biases and running statistics), and the next Linear/Conv2d keeps only the matching
    input columns or channels (after a Flatten, every spatial position of a kept channel).

    Parameters
    ----------
    model : nn.Sequential
        Linear/Conv2d chains as built by :mod:`spline_utils.nets` (see :data:`SUPPORTED`).
    keep_masks : sequence of bool tensors, mask ``l`` of shape (width_l,)
        From :func:`select_nodes`, or hand-made.

    Returns
    -------
    nn.Sequential
        Same module names and order as ``model``, fewer units; parameters are copies (same dtype and device).
    """
    masks = _check_masks(model, keep_masks)
    pruned = copy.deepcopy(model)
    hidden = {name: index for index, (name, _) in enumerate(hidden_layers(pruned))}
    incoming, flattened = None, False
    for name, module in leaves(pruned):
        if isinstance(module, AFFINE):
            replacement = _shrink_inputs(module, incoming, flattened) if incoming is not None else module
            incoming, flattened = None, False
            if name in hidden:
                incoming = masks[hidden[name]]
                replacement = _shrink_outputs(replacement, incoming)
            _replace(pruned, name, replacement)
        elif isinstance(module, BATCHNORM) and incoming is not None:
            if flattened or module.num_features != len(incoming):
                raise ValueError(f"BatchNorm {name} has {module.num_features} features; it must follow the "
                                 f"{len(incoming)} channels of the layer before it, with no Flatten in between")
            _replace(pruned, name, _shrink_batchnorm(module, incoming))
        elif isinstance(module, nn.Flatten):
            flattened = True
    return pruned


def prune_weights(model: nn.Module, ratio: float, scope: str = "layerwise",
                  modules: Sequence[nn.Module] | None = None, permanent: bool = False) -> nn.Module:
    """Unstructured pruning: zero the ``ratio`` fraction of smallest-magnitude weights, in place.

    Uses :mod:`torch.nn.utils.prune` (``l1_unstructured`` per module, or ``global_unstructured`` over all of them):
    each pruned module gets a ``weight_mask`` buffer and keeps its zeros while training.

    Parameters
    ----------
    model : torch.nn.Module
    ratio : float in [0, 1)
    scope : {"layerwise", "global"}
    modules : sequence of nn.Linear / nn.Conv2d, optional
        Modules of ``model`` to prune (e.g. only the first layer); all Linear/Conv2d modules by default.
    permanent : bool
        Bake the zeros into ``weight`` and drop the masks (needed before :func:`spline_utils.partition2d`).

    Returns
    -------
    torch.nn.Module
        ``model`` itself.
    """
    _check_ratio_and_scope(ratio, scope, "weights")
    if modules is None:
        modules = [module for module in model.modules() if isinstance(module, AFFINE)]
    owned = {id(module) for module in model.modules()}
    for module in modules:
        if not isinstance(module, AFFINE) or id(module) not in owned:
            raise TypeError(f"can only prune weights of the model's own Linear/Conv2d modules, got "
                            f"{type(module).__name__}")
    if scope == "global":
        torch_prune.global_unstructured([(module, "weight") for module in modules],
                                        pruning_method=torch_prune.L1Unstructured, amount=ratio)
    else:
        for module in modules:
            torch_prune.l1_unstructured(module, "weight", amount=ratio)
    if permanent:
        for module in modules:
            torch_prune.remove(module, "weight")
    return model


def weight_sparsity(module: nn.Module) -> float:
    """Fraction of exactly-zero entries of ``module.weight``."""
    return float((module.weight == 0).float().mean())


def rewind(pruned_model: nn.Module, initial_model: nn.Module, keep_masks: Sequence[torch.Tensor]) -> nn.Module:
    """Reset the survivors of node pruning to their own initial weights (lottery ticket), in place.

    Parameters
    ----------
    pruned_model : nn.Module
        ``prune_nodes(trained_model, keep_masks)``, possibly trained further or weight-pruned (its
        :mod:`torch.nn.utils.prune` masks are kept, the weights under them are rewound).
    initial_model : nn.Module
        A copy of the *same* network saved before training (``copy.deepcopy(model)`` at initialization).
    keep_masks : sequence of bool tensors
        The masks that produced ``pruned_model``.

    Returns
    -------
    nn.Module
        ``pruned_model``, its parameters and buffers (BatchNorm statistics too) equal to the initial values of the
        surviving units.
    """
    initial_state = prune_nodes(initial_model, keep_masks).state_dict()
    state = pruned_model.state_dict()
    rewound = {}
    for key, value in state.items():
        source = key[:-len("_orig")] if key.endswith("_orig") else key
        if key.endswith("_mask"):
            rewound[key] = value
        elif source not in initial_state or initial_state[source].shape != value.shape:
            raise ValueError(f"pruned_model does not match initial_model pruned with keep_masks at {key!r}; rewind "
                             "needs the same network's initial copy and the masks that pruned it")
        else:
            rewound[key] = initial_state[source]
    pruned_model.load_state_dict(rewound)
    return pruned_model


def _check_ratio_and_scope(ratio: float, scope: str, units: str) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1) (the fraction of {units} to remove), got {ratio}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")


def _width(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def _keep_highest(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    order = torch.sort(scores, stable=True).indices
    keep = torch.zeros(len(scores), dtype=torch.bool)
    keep[order[len(scores) - max(n_keep, 1):]] = True
    return keep


def _check_masks(model: nn.Module, keep_masks) -> list[torch.Tensor]:
    layers, widths = hidden_layers(model), layer_widths(model)
    masks = [torch.as_tensor(mask).flatten() for mask in keep_masks]
    if len(masks) != len(layers):
        raise ValueError(f"need one keep mask per hidden layer ({len(layers)}), got {len(masks)}")
    for (name, _), mask, width in zip(layers, masks, widths):
        if mask.dtype != torch.bool or len(mask) != width:
            raise ValueError(f"the keep mask of {name} must be a bool tensor of length {width}, got {mask.dtype} of "
                             f"length {len(mask)}")
        if not mask.any():
            raise ValueError(f"the keep mask of {name} removes every unit; keep at least one per layer")
    return masks


def _following_batchnorms(model: nn.Module) -> list[nn.Module | None]:
    """The first BatchNorm after each hidden layer (before any Flatten or the next layer), or None."""
    found, open_slot = [], False
    for _, module in leaves(model):
        if isinstance(module, AFFINE):
            found.append(None)
            open_slot = True
        elif isinstance(module, BATCHNORM) and open_slot:
            found[-1], open_slot = module, False
        elif isinstance(module, nn.Flatten):
            open_slot = False
    return found[:-1]


def _shrink_outputs(module: nn.Module, keep: torch.Tensor) -> nn.Module:
    index = keep.nonzero().flatten()
    weight = module.weight.detach()[index]
    bias = module.bias.detach()[index] if module.bias is not None else None
    if isinstance(module, nn.Linear):
        new = nn.Linear(module.in_features, len(index), bias is not None, device="meta")
    else:
        new = _conv_like(module, module.in_channels, len(index))
    return _with_parameters(new, module, weight, bias)


def _shrink_inputs(module: nn.Module, keep: torch.Tensor, flattened: bool) -> nn.Module:
    if isinstance(module, nn.Linear):
        if module.in_features % len(keep):
            raise ValueError(f"Linear with {module.in_features} inputs cannot follow {len(keep)} channels")
        columns = keep.repeat_interleave(module.in_features // len(keep)) if flattened else keep
        if len(columns) != module.in_features:
            raise ValueError(f"Linear with {module.in_features} inputs follows {len(keep)} units without a Flatten")
        new = nn.Linear(int(columns.sum()), module.out_features, module.bias is not None, device="meta")
        weight = module.weight.detach()[:, columns]
    else:
        if flattened or module.in_channels != len(keep):
            raise ValueError(f"Conv2d with {module.in_channels} input channels cannot follow {len(keep)} units")
        new = _conv_like(module, int(keep.sum()), module.out_channels)
        weight = module.weight.detach()[:, keep]
    bias = module.bias.detach() if module.bias is not None else None
    return _with_parameters(new, module, weight, bias)


def _conv_like(module: nn.Conv2d, in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, module.kernel_size, module.stride, module.padding, module.dilation,
                     bias=module.bias is not None, padding_mode=module.padding_mode, device="meta")


def _with_parameters(new: nn.Module, old: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    new = new.to_empty(device=weight.device).to(dtype=weight.dtype)  # meta -> real: no random init drawn
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    new.train(old.training)
    new.requires_grad_(old.weight.requires_grad)
    return new


def _shrink_batchnorm(module: nn.Module, keep: torch.Tensor) -> nn.Module:
    new = copy.deepcopy(module)
    new.num_features = int(keep.sum())
    for name in ("weight", "bias"):
        if getattr(module, name) is not None:
            setattr(new, name, nn.Parameter(getattr(module, name).detach()[keep].clone(),
                                            requires_grad=getattr(module, name).requires_grad))
    for name in ("running_mean", "running_var"):
        if getattr(module, name) is not None:
            setattr(new, name, getattr(module, name)[keep].clone())
    return new


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
