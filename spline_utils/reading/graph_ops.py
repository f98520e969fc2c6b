"""Which traced operations the graph engine represents, and how each becomes affine maps or ReLU nodes.

Every traced tensor operation falls in one class:

* **affine modules** with an offset: Linear, Conv2d, BatchNorm1d/2d (running statistics);
* **linear** operations without an offset: AvgPool2d, AdaptiveAvgPool2d, mean, sum, concatenation, slicing,
  scaling by a constant, negation, reshapes (view, reshape, flatten, squeeze, unsqueeze, Flatten, Unflatten),
  identity, dropout in eval mode;
* **additive**: ``+`` / ``-`` of traced tensors (residual connections) and of constants (an offset);
* **ReLU / LeakyReLU** (module, functional or method; in-place or not);
* **MaxPool2d** (module or functional), lowered by :func:`max_pool_windows` into a cascade of ReLUs.

Anything else is refused by name in :mod:`spline_utils.reading.tracer`.
"""
from __future__ import annotations

import operator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_, F.relu_}
LEAKY_RELU_FUNCTIONS = {F.leaky_relu, F.leaky_relu_}
IN_PLACE_FUNCTIONS = {torch.relu_, F.relu_, F.leaky_relu_}
RELU_METHODS = {"relu", "relu_"}
MAX_POOL_FUNCTIONS = {F.max_pool2d, torch.max_pool2d}
RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
RESHAPE_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
IDENTITY_METHODS = {"contiguous", "clone", "detach"}
LINEAR_FUNCTIONS = {torch.cat, torch.concat, F.avg_pool2d, F.adaptive_avg_pool2d, torch.mean, torch.sum,
                    operator.getitem}
LINEAR_METHODS = {"mean", "sum"}
ADDITIVE_FUNCTIONS = {operator.add, operator.sub, operator.iadd, operator.isub, torch.add, torch.sub}
ADDITIVE_METHODS = {"add", "sub", "add_", "sub_"}
SCALING_FUNCTIONS = {operator.mul, operator.truediv, operator.neg, torch.mul, torch.div, torch.neg}
SCALING_METHODS = {"mul", "div", "neg", "mul_", "div_"}
IN_PLACE_METHODS = {"relu_", "add_", "sub_", "mul_", "div_"}
#: A pooled element and the running maximum closer than this fraction of their sizes are tied (256 ulp): the
#: running maximum is a sum of differences, so an element equal to it carries its round-off, not a real difference.
TIE_TOLERANCE = 2.0**-44

SUPPORTED_OPERATIONS = (
    "Linear, Conv2d, BatchNorm1d/2d (eval), ReLU/LeakyReLU (module, functional or method, in-place allowed), "
    "AvgPool2d, AdaptiveAvgPool2d, MaxPool2d (ceil_mode=False), mean/sum over non-batch dims, + and - "
    "(residual connections), scaling by constants, torch.cat, slicing, flatten/view/reshape/squeeze/unsqueeze, "
    "Identity, Dropout (eval)")


def operation_name(node) -> str:
    """A readable name of an fx node's operation, for error messages."""
    if node.op == "call_module":
        return f"module '{node.target}'"
    if node.op == "call_method":
        return f"method Tensor.{node.target}"
    return f"function {getattr(node.target, '__module__', '') or ''}.{getattr(node.target, '__name__', node.target)}"


def leaky_slope(node, module: nn.Module | None) -> float:
    """Negative slope of a ReLU / LeakyReLU call: 0 for ReLU."""
    if module is not None:
        return float(module.negative_slope) if isinstance(module, nn.LeakyReLU) else 0.0
    if node.op == "call_function" and node.target in LEAKY_RELU_FUNCTIONS:
        slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
        if not isinstance(slope, (int, float)):
            raise TypeError(f"{operation_name(node)} with a negative slope that depends on the input is not "
                            "supported; use a constant slope")
        return float(slope)
    return 0.0


def is_in_place(node, module: nn.Module | None) -> bool:
    """Whether a call overwrites its first argument."""
    if module is not None:
        return bool(getattr(module, "inplace", False))
    if node.op == "call_method":
        return node.target in IN_PLACE_METHODS
    if node.target in IN_PLACE_FUNCTIONS:
        return True
    return bool(node.kwargs.get("inplace", False)) or (node.target is F.leaky_relu and len(node.args) > 2
                                                        and bool(node.args[2]))


def max_pool_arguments(node, module: nn.Module | None) -> tuple:
    """``(kernel, stride, padding, dilation)`` as pairs of ints; refuses ceil_mode and return_indices."""
    if module is not None:
        kernel, stride, padding, dilation = module.kernel_size, module.stride, module.padding, module.dilation
        ceil_mode, indices = module.ceil_mode, module.return_indices
    else:
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        given = dict(zip(names, node.args)) | dict(node.kwargs)
        kernel, stride = given["kernel_size"], given.get("stride") or given["kernel_size"]
        padding, dilation = given.get("padding", 0), given.get("dilation", 1)
        ceil_mode, indices = given.get("ceil_mode", False), given.get("return_indices", False)
    if ceil_mode or indices:
        raise TypeError(f"{operation_name(node)} (MaxPool2d): max pooling with ceil_mode=True or "
                        "return_indices=True is not supported; use ceil_mode=False (pad the input instead)")
    stride = stride if stride not in (None, ()) else kernel
    return tuple(_pair(value) for value in (kernel, stride, padding, dilation))


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def max_pool_windows(input_shape: tuple, kernel, stride, padding, dilation) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The windows of a 2-D max pooling as index lists into the flattened input.

    Each output entry's valid window elements (inside the input, not padding) come first, in row-major kernel
    order; the remaining slots hold index 0 and are marked invalid.

    Returns
    -------
    index : ndarray of int64, shape (K, C * H_out * W_out)
        ``index[k]`` is, for every output entry (C order), the flat input index of its ``k``-th valid element.
    valid : ndarray of bool, shape (K, C * H_out * W_out)
    output_shape : tuple (C, H_out, W_out)
    """
    channels, height, width = input_shape
    out_h = (height + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    rows = np.arange(out_h)[:, None] * stride[0] - padding[0] + np.arange(kernel[0])[None] * dilation[0]
    cols = np.arange(out_w)[:, None] * stride[1] - padding[1] + np.arange(kernel[1])[None] * dilation[1]
    # axes (row of output, column of output, row in kernel, column in kernel)
    valid = ((rows >= 0) & (rows < height))[:, None, :, None] & ((cols >= 0) & (cols < width))[None, :, None, :]
    flat = rows[:, None, :, None] * width + cols[None, :, None, :]
    valid, flat = valid.reshape(out_h * out_w, -1), flat.reshape(out_h * out_w, -1)
    order = np.argsort(~valid, axis=1, kind="stable")
    valid, flat = np.take_along_axis(valid, order, 1), np.where(np.take_along_axis(valid, order, 1),
                                                                np.take_along_axis(flat, order, 1), 0)
    channel_offset = (np.arange(channels) * height * width)[:, None, None]
    index = (flat[None] + channel_offset).reshape(-1, flat.shape[1]).T
    valid = np.broadcast_to(valid[None], (channels,) + valid.shape).reshape(-1, valid.shape[1]).T
    return np.ascontiguousarray(index), np.ascontiguousarray(valid), (channels, out_h, out_w)


def pooled_difference(element: torch.Tensor, running: torch.Tensor) -> torch.Tensor:
    """``element - running`` for a max pooling's comparison, exactly 0 where the two are tied up to round-off.

    The lowering forms the running maximum as ``m + relu(x - m)``, which is ``x`` up to round-off, not exactly. An
    element equal to an earlier one (a flat background pooled with itself) would then differ from the running
    maximum by a residue of about 1e-17 whose sign decides the comparison's code; the model's own forward compares
    the equal elements and finds them tied (the comparison is off). Entries within :data:`TIE_TOLERANCE` of
    ``|element| + |running|`` are set to 0, so the engine finds the same.
    """
    difference = element - running
    return difference.masked_fill(difference.abs() <= TIE_TOLERANCE * (element.abs() + running.abs()), 0.0)


def max_pool_comparisons(x: torch.Tensor, kernel, stride, padding, dilation) -> list[torch.Tensor]:
    """The codes of a max pooling's comparisons, read off its input with ``F.unfold`` (not the index lists).

    Comparison ``k`` (``k = 1 .. K-1``) of an output entry is true where its ``k``-th valid window element is
    strictly greater than all earlier ones. Returns ``K - 1`` bool tensors of shape (n, C * H_out * W_out).
    """
    n, channels = x.shape[:2]
    padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]), value=-torch.inf)
    windows = F.unfold(padded, kernel, dilation=dilation, stride=stride).reshape(n, channels, -1, _count(padded,
                                                                                                   kernel, stride,
                                                                                                   dilation))
    valid_first = torch.argsort((windows == -torch.inf).to(torch.int8), dim=2, stable=True)
    windows = torch.take_along_dim(windows, valid_first, dim=2)
    running = torch.cummax(windows, dim=2).values
    return [(windows[:, :, k] > running[:, :, k - 1]).reshape(n, -1) for k in range(1, windows.shape[2])]


def _count(padded: torch.Tensor, kernel, stride, dilation) -> int:
    out = [(padded.shape[2 + axis] - dilation[axis] * (kernel[axis] - 1) - 1) // stride[axis] + 1 for axis in (0, 1)]
    return out[0] * out[1]
