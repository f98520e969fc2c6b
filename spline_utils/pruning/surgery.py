"""Node surgery: a new, smaller network without the pruned nodes; weight masks; lottery-ticket rewinding.

:func:`prune_nodes` really removes units (fewer parameters and FLOPs): the kept rows or filters of each hidden layer,
the matching channels of its BatchNorm and the matching inputs of the next layer. :func:`rewind` resets the survivors
to their *own* initial weights (the authors' code rewinds to another network's). :func:`prune_weights` is unstructured
pruning with :mod:`torch.nn.utils.prune` masks. Which nodes to keep is chosen in :mod:`spline_utils.pruning`.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.utils.prune as torch_prune

from spline_utils.reading.sequential import effective_copy
from spline_utils.checks import check_fraction, check_string_choice
from spline_utils.reading.operations import AFFINE_LAYERS, HiddenLayer, hidden_layer_links, leaves

SCOPES = ("layerwise", "global")


def prune_nodes(model: nn.Module, keep_masks: Sequence[torch.Tensor]) -> nn.Sequential:
    """Remove the nodes/channels whose mask entry is False: a new, smaller network (``model`` is unchanged).

    For each hidden layer, the kept rows (Linear) or filters (Conv2d) and biases stay, the BatchNorm after it keeps
    the same channels (weights, biases and running statistics), and the next Linear/Conv2d keeps only the matching
    input columns or channels (after a Flatten, every spatial position of a kept channel).

    Parameters
    ----------
    model : nn.Sequential
        Linear/Conv2d chains as built by :mod:`spline_utils.training.nets` (see :data:`spline_utils.reading.operations.PRUNABLE`).
    keep_masks : sequence of bool tensors, mask ``l`` of shape (width_l,)
        From :func:`spline_utils.pruning.select_nodes`, or hand-made.

    Returns
    -------
    nn.Sequential
        Same module names and order as ``model``, fewer units; parameters are copies (same dtype and device). The
        weights of a weight-masked ``model`` (:func:`prune_weights` without ``permanent``) are its effective, masked
        weights; the copy holds no masks.

    Raises
    ------
    TypeError
        ``model`` is not an ``nn.Sequential`` (see :func:`check_node_surgery`) or has a module pruning cannot pass.
    """
    check_node_surgery(model)
    pruned = effective_copy(model)
    links = hidden_layer_links(pruned)
    masks = check_keep_masks(links, keep_masks)
    names = {id(module): name for name, module in leaves(pruned)}
    shrunk_inputs = {id(link.next_layer): (mask, link.flattened) for link, mask in zip(links, masks)}
    replacements = {}
    for link, mask in zip(links, masks):
        layer = link.layer
        if id(layer) in shrunk_inputs:
            layer = _shrink_inputs(layer, *shrunk_inputs[id(layer)])
        replacements[names[id(link.layer)]] = _shrink_outputs(layer, mask)
        if link.batchnorm is not None:
            if link.batchnorm.num_features != len(mask):
                raise ValueError(f"BatchNorm {link.batchnorm_name} has {link.batchnorm.num_features} features but "
                                 f"{link.name} has {len(mask)} channels")
            replacements[link.batchnorm_name] = _shrink_batchnorm(link.batchnorm, mask)
    classifier = links[-1].next_layer
    replacements[names[id(classifier)]] = _shrink_inputs(classifier, *shrunk_inputs[id(classifier)])
    for name, module in replacements.items():
        _replace(pruned, name, module)
    return pruned


def check_node_surgery(model: nn.Module) -> None:
    """Refuse, before any training, a model whose nodes :func:`prune_nodes` cannot remove.

    Node surgery reads the network as a chain of layers, each feeding the next; a model that is not an
    ``nn.Sequential`` (a ResNet such as ``nets.preact_resnet``: its skip connections add a block's input to its
    output, so one block's channels are tied to every other block's of the stage) is refused with a ``TypeError``.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"node surgery needs an nn.Sequential, and {type(model).__name__} is not one: its forward is "
                        "not a chain of layers (a ResNet's skip connections tie channels across blocks), so its "
                        "nodes cannot be removed. Use a sequential network (spline_utils.training.nets.small_vgg, small_cnn, "
                        "mlp), or weight masks (prune_weights), or the detectors alone (train_dense) on this model.")


def check_keep_masks(links: Sequence[HiddenLayer], keep_masks) -> list[torch.Tensor]:
    """Validate one bool keep mask per hidden layer, each of the layer's width and keeping at least one unit."""
    masks = [torch.as_tensor(mask).flatten() for mask in keep_masks]
    if len(masks) != len(links):
        raise ValueError(f"need one keep mask per hidden layer ({len(links)}), got {len(masks)}")
    for link, mask in zip(links, masks):
        if mask.dtype != torch.bool or len(mask) != link.width:
            raise ValueError(f"the keep mask of {link.name} must be a bool tensor of length {link.width}, got "
                             f"{mask.dtype} of length {len(mask)}")
        if not mask.any():
            raise ValueError(f"the keep mask of {link.name} removes every unit; keep at least one per layer")
    return masks


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
    check_ratio_and_scope(ratio, scope, "weights")
    if modules is None:
        modules = [module for module in model.modules() if isinstance(module, AFFINE_LAYERS)]
    owned = {id(module) for module in model.modules()}
    for module in modules:
        if not isinstance(module, AFFINE_LAYERS) or id(module) not in owned:
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


def check_ratio_and_scope(ratio: float, scope: str, units: str) -> None:
    """``ratio`` must be a fraction of ``units`` in [0, 1) (a number, not a string) and ``scope`` one of :data:`SCOPES`."""
    check_fraction("ratio", ratio, f"{units} to remove")
    check_string_choice("scope", scope, SCOPES)


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
