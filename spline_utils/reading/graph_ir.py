"""The graph a traced network becomes: affine nodes and ReLU nodes, each reading only earlier nodes.

Built by :func:`spline_utils.reading.tracer.trace_graph`; cut by :mod:`spline_utils.engine.graph_partition`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class AffineNode:
    """``y = linear(*inputs) + offset``; ``linear`` acts on batches, ``offset`` has the per-sample ``shape``."""

    inputs: tuple[int, ...]
    linear: Callable
    offset: torch.Tensor | None
    shape: tuple
    name: str


@dataclass
class ReluNode:
    """``y = max(x, slope * x)`` on node ``input``; node ``k`` of it is active where ``x_k > 0``."""

    input: int
    slope: float
    shape: tuple
    name: str


@dataclass
class Graph:
    """``nodes[0]`` is the input (``None``); every other node reads only earlier nodes; ``output`` is the result."""

    nodes: list
    output: int
    input_shape: tuple

    @property
    def relu_nodes(self) -> list[int]:
        """Indices of the ReLU nodes, in forward order: the hidden layers."""
        return [index for index, node in enumerate(self.nodes) if isinstance(node, ReluNode)]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The output and every ReLU node's pre-activation for inputs ``x`` of shape ``(n, *input_shape)``."""
        values, pre = [x], []
        for node in self.nodes[1:]:
            if isinstance(node, ReluNode):
                pre.append(values[node.input])
                values.append(torch.where(pre[-1] > 0, pre[-1], node.slope * pre[-1]))
            else:
                y = node.linear(*(values[i] for i in node.inputs))
                values.append(y if node.offset is None else y + node.offset)
        return values[self.output], pre

    def pre_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every ReLU node's pre-activation for inputs ``x`` of shape ``(n, *input_shape)``, in forward order."""
        return self.forward(x)[1]
