"""The one dispatch: which representation a model is read into.

A plain (nested) ``nn.Sequential`` of supported modules, each used once, is read without tracing into a
:class:`~spline_utils.reading.sequential.Chain`; every other model is traced with ``torch.fx`` into a
:class:`~spline_utils.reading.graph_ir.Graph`. Both give the hidden layers in the order of
:func:`spline_utils.activation_codes` and the same per-layer pre-activations (``pre_activations(x)``).
"""
from __future__ import annotations

import math

import torch.nn as nn

from spline_utils.reading.graph_ir import Graph
from spline_utils.reading.sequential import Chain, is_chain, to_chain
from spline_utils.reading.tracer import trace_graph


def read_model(model: nn.Module, input_shape: tuple | None) -> Chain | Graph:
    """``model`` as a float64 :class:`Chain` (plain Sequentials) or traced :class:`Graph` (everything else).

    Parameters
    ----------
    model : torch.nn.Module
        Not modified.
    input_shape : tuple or None
        Per-sample input shape. A graph is traced for it, so it must be known for models that are not plain
        Sequentials; ``None`` leaves a chain's input shape to be found from its first module.

    Raises
    ------
    TypeError
        An unsupported module or operation, named in the message.
    ValueError
        Non-finite weights, or an input shape the model cannot take.
    """
    if is_chain(model):
        return to_chain(model)
    if input_shape is None:
        raise ValueError(f"{type(model).__name__} is not a plain nn.Sequential, so it is traced, and tracing needs "
                         "the per-sample input shape")
    return trace_graph(model, tuple(input_shape))


def hidden_layer_sizes(model: nn.Module, input_shape: tuple) -> list[int]:
    """Number of nodes of each hidden layer (the blocks of :func:`spline_utils.activation_codes`' columns)."""
    network = read_model(model, input_shape)
    if isinstance(network, Chain):
        shapes = network.layer_shapes(tuple(input_shape))[:-1]
    else:
        shapes = [network.nodes[index].shape for index in network.relu_nodes]
    return [math.prod(shape) for shape in shapes]
