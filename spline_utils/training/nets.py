"""Small model builders used by the book, each with the activation as a parameter.

All return ``nn.Sequential`` chains that :func:`spline_utils.partition2d` accepts, except
:func:`preact_resnet`, whose residual connections make it a non-sequential network (its codes are read with
forward hooks on its BatchNorm layers, see :mod:`spline_utils.early_bird`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the ``with`` block with PyTorch's CPU generator seeded by ``seed``; the global RNG is restored afterwards.

    ``seed=None`` leaves the generator as it is (the block draws from the global stream and advances it).
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def make_activation(name: str = "relu", negative_slope: float = 0.1) -> nn.Module:
    """``"relu"`` or ``"leaky_relu"`` (with ``negative_slope``)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {name!r}")


def mlp(widths, activation: str = "relu", negative_slope: float = 0.1, final_activation: bool = False,
        seed: int | None = None) -> nn.Sequential:
    """A fully connected network ``widths[0] -> ... -> widths[-1]``.

    Parameters
    ----------
    widths : sequence of int
        Layer sizes, input first, e.g. ``(2, 20, 2)``.
    activation : {"relu", "leaky_relu"}
    final_activation : bool
        Also put the activation after the last Linear (a stack of hidden layers with no classifier).
    seed : int, optional
        Seed for PyTorch's default initialization (see :func:`seeded`: with a seed the global RNG is left untouched).
    """
    widths = list(widths)
    if len(widths) < 2 or any(int(w) < 1 for w in widths):
        raise ValueError(f"widths needs at least two positive sizes, got {widths}")
    with seeded(seed):
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(fan_in, fan_out))
            if index < len(widths) - 2 or final_activation:
                layers.append(make_activation(activation, negative_slope))
    return nn.Sequential(*layers)


def small_cnn(num_classes: int = 10, channels: int = 16, activation: str = "relu", negative_slope: float = 0.1,
              seed: int | None = None) -> nn.Sequential:
    """The paper's small ConvNet for 28x28 images (authors' code, Fig 3).

    Conv2d(1, C, 21, bias=False)-BN-act -> 8x8, Conv2d(C, C, 5, bias=False)-BN-act -> 4x4, Linear(16 C, classes).
    """
    with seeded(seed):
        return nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=21, bias=False), nn.BatchNorm2d(channels),
            make_activation(activation, negative_slope),
            nn.Conv2d(channels, channels, kernel_size=5, bias=False), nn.BatchNorm2d(channels),
            make_activation(activation, negative_slope),
            nn.Flatten(), nn.Linear(channels * 16, num_classes))


def small_vgg(num_classes: int = 10, widths=(16, 32, 64), in_channels: int = 1, input_size: int = 28,
              activation: str = "relu", negative_slope: float = 0.1, seed: int | None = None) -> nn.Sequential:
    """A VGG-style network: per stage two 3x3 conv-BN-act then 2x2 average pooling; a linear classifier.

    Average pooling (affine) instead of max pooling keeps the whole network a supported spline chain.
    """
    with seeded(seed):
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            for _ in range(2):
                layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                           make_activation(activation, negative_slope)]
                previous = width
            layers.append(nn.AvgPool2d(2))
        side = input_size
        for _ in widths:
            side //= 2
        layers += [nn.Flatten(), nn.Linear(previous * side * side, num_classes)]
    return nn.Sequential(*layers)


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-act-conv-BN-act-conv plus a (projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str, negative_slope: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.act1 = make_activation(activation, negative_slope)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = make_activation(activation, negative_slope)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """A small pre-activation ResNet (He et al., 2016) for 1-channel images."""

    def __init__(self, num_classes: int = 10, widths=(16, 32, 64), blocks_per_stage: int = 1, in_channels: int = 1,
                 activation: str = "relu", negative_slope: float = 0.1):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        stages, previous = [], widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                stages.append(PreActBlock(previous, width, stride, activation, negative_slope))
                previous = width
        self.stages = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(previous)
        self.act = make_activation(activation, negative_slope)
        self.head = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn(self.stages(self.stem(x))))
        return self.head(out.mean(dim=(2, 3)))


def preact_resnet(num_classes: int = 10, widths=(16, 32, 64), blocks_per_stage: int = 1, in_channels: int = 1,
                  activation: str = "relu", negative_slope: float = 0.1, seed: int | None = None) -> PreActResNet:
    """A small pre-activation ResNet; ``blocks_per_stage`` scales its depth."""
    with seeded(seed):
        return PreActResNet(num_classes, widths, blocks_per_stage, in_channels, activation, negative_slope)


def normal_init_(model: nn.Module, std: float = 1.0, seed: int | None = None) -> nn.Module:
    """Re-draw every Linear/Conv2d weight and bias from N(0, std^2), in place (the random nets of the paper's Fig 8)."""
    with seeded(seed):
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.normal_(0.0, std)
    return model
