"""FLOPs accounting for training budgets (paper notes 1.6).

Convention used by the book:

* forward FLOPs per sample come from PyTorch's own counter, :class:`torch.utils.flop_counter.FlopCounterMode`, which
  counts 2 FLOPs per multiply-accumulate of matrix products and convolutions (Linear: ``2 * in * out``; Conv2d:
  ``2 * k_h * k_w * C_in / groups * C_out * H_out * W_out``) and nothing else;
* training FLOPs per epoch = 3 x forward FLOPs x number of training samples (backward ~ 2 x forward);
* for MLPs the same count in closed form, :func:`mlp_forward_flops` and :func:`mlp_training_flops` (frozen layers
  need no backward pass).

The authors' ``compute_flops.py`` also counts the cheap elementwise work: a bias adds ``C_out H_out W_out`` (conv)
or ``out`` (linear), BatchNorm ``2 * numel``, ReLU ``numel``, pooling ``k^2 * numel_out``.
:func:`authors_forward_flops` reproduces those rules so the two can be compared: for conv nets the difference is a
few per cent (:func:`forward_flops` is the lower one), and ratios of FLOPs (savings) barely change.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from spline_utils.reading.hooks import eval_with_hooks
from spline_utils.reading.operations import BATCHNORMS, NONLINEARITIES


def forward_flops(model: nn.Module, input_shape: tuple) -> int:
    """Forward FLOPs of one sample, counted by :class:`torch.utils.flop_counter.FlopCounterMode`.

    Parameters
    ----------
    model : torch.nn.Module
        Run once in eval mode without gradients; its training mode is restored.
    input_shape : tuple of int
        Per-sample input shape, e.g. ``(1, 28, 28)``.
    """
    x = _example_input(model, input_shape)
    counter = FlopCounterMode(display=False)
    with eval_with_hooks(model), counter:
        model(x)
    return int(counter.get_total_flops())


def training_flops_per_epoch(model: nn.Module, input_shape: tuple, n_train: int) -> int:
    """``3 * forward_flops(model, input_shape) * n_train`` (forward plus a backward of twice its cost)."""
    if n_train < 0:
        raise ValueError(f"n_train must be >= 0, got {n_train}")
    return 3 * forward_flops(model, input_shape) * n_train


def early_bird_training_flops(dense_epoch_flops: float, pruned_epoch_flops: float, epochs: int, eb_epoch: int,
                              detection_flops_per_epoch: float = 0.0) -> float:
    """Total training FLOPs of spline-EB training (paper notes 1.6).

    ``eb_epoch`` dense epochs, then ``epochs - eb_epoch`` epochs of the pruned network, plus the detector's probe
    forward pass after each dense epoch.
    """
    if not 0 <= eb_epoch <= epochs:
        raise ValueError(f"need 0 <= eb_epoch <= epochs, got eb_epoch={eb_epoch}, epochs={epochs}")
    return (eb_epoch * (dense_epoch_flops + detection_flops_per_epoch)
            + (epochs - eb_epoch) * pruned_epoch_flops)


def authors_forward_flops(model: nn.Module, input_shape: tuple) -> int:
    """Forward FLOPs of one sample under the authors' ``compute_flops.py`` rules (see the module docstring).

    Counts Conv2d, Linear, BatchNorm, ReLU/LeakyReLU, MaxPool2d/AvgPool2d modules; other modules count 0.
    """
    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += _authors_rule(module, inputs[0], output)

    x = _example_input(model, input_shape)
    with eval_with_hooks(model, [(module, count) for module in model.modules() if not list(module.children())]):
        model(x)
    return int(total)


def _authors_rule(module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> int:
    per_sample = output[0].numel()
    if isinstance(module, nn.Conv2d):
        kernel_h, kernel_w = module.kernel_size
        per_position = 2 * kernel_h * kernel_w * module.in_channels // module.groups + (module.bias is not None)
        return per_position * per_sample
    if isinstance(module, nn.Linear):
        return 2 * module.in_features * module.out_features + (module.out_features if module.bias is not None else 0)
    if isinstance(module, BATCHNORMS):
        return 2 * x[0].numel()
    if isinstance(module, NONLINEARITIES):
        return x[0].numel()
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return kernel * kernel * per_sample
    return 0


def _example_input(model: nn.Module, input_shape) -> torch.Tensor:
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be a non-empty tuple of positive sizes, got {input_shape}")
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    device = parameter.device if parameter is not None else "cpu"
    return torch.zeros((1, *shape), dtype=dtype, device=device)


def mlp_forward_flops(widths: Sequence[int]) -> int:
    """Forward FLOPs of one sample through ``nets.mlp(widths)``: ``2 * in * out`` per Linear (as
    :class:`torch.utils.flop_counter.FlopCounterMode` counts; biases and ReLUs are not counted)."""
    return int(sum(2 * a * b for a, b in zip(widths[:-1], widths[1:])))


def mlp_training_flops(widths: Sequence[int], n_samples: int, epochs: int, first_trainable: int = 0) -> int:
    """Training FLOPs: every sample of every epoch costs one forward pass plus a backward pass of twice the forward
    cost of the trainable Linear layers (index ``first_trainable`` on; the frozen ones before need no backward).

    With every layer trainable this is ``3 x forward x samples x epochs``.
    """
    trainable = mlp_forward_flops(list(widths)[first_trainable:])
    return int(n_samples * epochs * (mlp_forward_flops(widths) + 2 * trainable))
