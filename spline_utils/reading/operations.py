"""The one table of supported module types, and walking a model's modules.

Every module type the package handles is named here once: the sequential reader (:mod:`.sequential`), the torch.fx
tracer (:mod:`.tracer`, whose functional operations are in :mod:`.graph_ops`) and the pruning tools read these tuples.

Every tool reads a network as an ``nn.Sequential`` (possibly nested) of leaf modules, walked by :func:`leaves`.
The pruning tools see it as *hidden layers*: every Linear/Conv2d but the last (the classifier), each with the
BatchNorm that follows it and the next Linear/Conv2d that reads its output (:func:`hidden_layer_links`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

AFFINE_LAYERS = (nn.Linear, nn.Conv2d)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
NONLINEARITIES = (nn.ReLU, nn.LeakyReLU)
#: Affine modules without parameters: they reshape, average or pass their input through.
PARAMETER_FREE_AFFINE = (nn.Flatten, nn.AvgPool2d, nn.Identity, nn.Dropout)
#: The affine modules a plain Sequential may hold between its nonlinearities (read without tracing).
SEQUENTIAL_AFFINE = (*AFFINE_LAYERS, *BATCHNORMS, *PARAMETER_FREE_AFFINE)
SEQUENTIAL_SUPPORTED = ("Linear, Conv2d, BatchNorm1d/2d (eval statistics), Flatten, AvgPool2d, Identity, Dropout, "
                        "ReLU, LeakyReLU, nested in nn.Sequential")
#: Traced modules, by how the tracer turns them into graph nodes.
TRACED_AFFINE = (*AFFINE_LAYERS, *BATCHNORMS)
TRACED_LINEAR = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
TRACED_RESHAPE = (nn.Flatten, nn.Unflatten)
TRACED_IDENTITY = (nn.Identity, nn.Dropout)
#: Modules that pruning can pass a node or channel selection through.
CHANNELWISE = (*AFFINE_LAYERS, *BATCHNORMS, *NONLINEARITIES, *PARAMETER_FREE_AFFINE, nn.MaxPool2d)
PRUNABLE = ("Linear, Conv2d (groups=1), BatchNorm1d/2d right after its layer, ReLU, LeakyReLU, AvgPool2d, MaxPool2d, "
            "Dropout, Identity, Flatten, nested in nn.Sequential")


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's leaf modules in order as ``(qualified name, module)``, nested ``nn.Sequential`` flattened.

    A module that is not an ``nn.Sequential`` is a leaf (``model`` itself, when it is one).

    Raises
    ------
    TypeError
        If one module object appears twice (a shared ``nn.ReLU()`` or ``nn.Linear``): the walk could not tell the
        two uses apart, so it refuses instead of computing with one of them missing.
    """
    found = list(_walk(model, ""))
    seen: dict[int, str] = {}
    for name, module in found:
        if id(module) in seen:
            raise TypeError(f"module {name or 'model'} ({type(module).__name__}) is the same object as "
                            f"{seen[id(module)] or 'model'}; give each position its own module "
                            "(e.g. nn.ReLU() twice instead of one shared instance)")
        seen[id(module)] = name
    return found


def _walk(module: nn.Module, prefix: str):
    if isinstance(module, nn.Sequential):
        if type(module).forward is not nn.Sequential.forward:
            raise TypeError(f"{prefix or 'model'} ({type(module).__name__}) is an nn.Sequential subclass with its own "
                            "forward; its computation is not the chain of its children, so it is refused. Use a "
                            "plain nn.Sequential.")
        # _modules, not named_children(): the latter skips a module object's second appearance
        for name, child in module._modules.items():
            yield from _walk(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix, module


def batchnorm_layers(model: nn.Module) -> list[nn.Module]:
    """Every BatchNorm1d/2d module of ``model``, in definition order (``model.modules()``)."""
    return [module for module in model.modules() if isinstance(module, BATCHNORMS)]


def batchnorm_scale_shift(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = scale * x + shift`` per channel.

    ``scale = gamma / sqrt(running_var + eps)``, ``shift = beta - running_mean * scale``
    (``gamma = 1, beta = 0`` when the layer is not affine).
    """
    std = torch.sqrt(module.running_var + module.eps)
    gamma = module.weight if module.affine else torch.ones_like(std)
    beta = module.bias if module.affine else torch.zeros_like(std)
    scale = gamma / std
    return scale, beta - module.running_mean * scale


def layer_width(module: nn.Module) -> int:
    """Number of nodes (Linear) or channels (Conv2d) a layer outputs."""
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


@dataclass
class HiddenLayer:
    """A hidden Linear/Conv2d, the BatchNorm right after it (or None), and the next Linear/Conv2d that reads it.

    ``flattened`` is True when an ``nn.Flatten`` sits between the layer and ``next_layer``; ``batchnorm_name`` is
    the BatchNorm's qualified name (``""`` without one).
    """

    name: str
    layer: nn.Module
    batchnorm: nn.Module | None
    batchnorm_name: str
    next_layer: nn.Module
    flattened: bool

    @property
    def width(self) -> int:
        return layer_width(self.layer)


def hidden_layer_links(model: nn.Module) -> list[HiddenLayer]:
    """One :class:`HiddenLayer` per hidden layer of an ``nn.Sequential``: every Linear/Conv2d but the last.

    A BatchNorm belongs to the layer before it when no Flatten comes in between.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Sequential`` (see :func:`leaves`).
    ValueError
        If the model has fewer than two Linear/Conv2d modules (no hidden layer).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"pruning needs an nn.Sequential (e.g. from spline_utils.training.nets.mlp / small_cnn / small_vgg), "
                        f"got {type(model).__name__}")
    layers: list[list] = []  # [name, layer, batchnorm, batchnorm name, flattened]
    for name, module in leaves(model):
        if not isinstance(module, CHANNELWISE):
            raise TypeError(f"unsupported module {name} ({type(module).__name__}); pruning handles {PRUNABLE}")
        if isinstance(module, nn.Conv2d) and module.groups != 1:
            raise TypeError(f"Conv2d {name} has groups={module.groups}; only groups=1 can be pruned")
        if isinstance(module, AFFINE_LAYERS):
            layers.append([name, module, None, "", False])
        elif isinstance(module, BATCHNORMS) and layers:
            if layers[-1][2] is not None or layers[-1][4]:
                raise ValueError(f"BatchNorm {name} does not follow the channels of {layers[-1][0]} directly (a "
                                 "Flatten or another BatchNorm comes in between); pruning needs each BatchNorm right "
                                 "after its Linear/Conv2d")
            layers[-1][2:4] = [module, name]
        elif isinstance(module, nn.Flatten) and layers:
            layers[-1][4] = True
    if len(layers) < 2:
        raise ValueError("the model has no hidden layer: it needs at least two Linear/Conv2d modules")
    return [HiddenLayer(name, layer, batchnorm, batchnorm_name, layers[index + 1][1], flattened)
            for index, (name, layer, batchnorm, batchnorm_name, flattened) in enumerate(layers[:-1])]
