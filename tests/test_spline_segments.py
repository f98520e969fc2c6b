"""Node splines as segments (``Partition.spline_segments`` / ``layer_spline_segments``), checked against oracles.

Oracles: clipping every region of the previous layer by the node's line (the brute force the fast version must
reproduce, segment for segment and in the same order), the model's own forward pass (pre-activations read with hooks
on a float64 copy), and sign changes of the pre-activation along horizontal lines sampled densely.
"""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
import spline_utils.engine.partition as partition_module
from spline_utils.training import nets
from spline_utils.engine.polygons import clip_lines

from helpers import randomize_batchnorm


def brute_force_segments(partition, layer, node):
    """Clip every region of the layers before ``layer`` by the node's zero line (no pre-filter)."""
    parents = partition.polygons_after(layer - 1)
    return clip_lines(parents, partition.layers[layer].pre_activations[:, :, node])[1]


def hooked_pre_activations(model, inputs):
    """Inputs of the model's ReLU/LeakyReLU modules, flattened per sample, from a float64 copy's forward pass."""
    network, recorded = copy.deepcopy(model).double().eval(), []
    hooks = [module.register_forward_hook(lambda _m, args, _o: recorded.append(args[0].flatten(1).clone()))
             for module in network.modules() if isinstance(module, (nn.ReLU, nn.LeakyReLU))]
    with torch.no_grad():
        network(torch.as_tensor(inputs, dtype=torch.float64))
    for hook in hooks:
        hook.remove()
    return [values.numpy() for values in recorded]


def mirrored_mlp() -> nn.Sequential:
    """2-4-2-2 network whose layer-2 node 0 is relu(x1) - relu(-x1) = x1: its spline lies on layer-1 edges."""
    model = nets.mlp((2, 4, 2, 2), seed=3)
    with torch.no_grad():
        model[0].weight[:2] = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
        model[0].bias[:2] = 0.0
        model[2].weight[0] = torch.tensor([1.0, -1.0, 0.0, 0.0])
        model[2].bias[0] = 0.0
    return model


def canvas_cnn():
    """A small randomly initialized conv net with BatchNorm statistics, on a canvas through two random images."""
    model = randomize_batchnorm(nets.small_cnn(channels=3, seed=5), seed=5)
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(2, 1, 28, 28, generator=generator)
    plane = su.image_canvas(images[0], images[1])
    return model, su.partition2d(model, (0.0, 1.0, 0.0, 1.0), plane=plane), plane


CASES = {
    "relu 2-12-12-12": lambda: (nets.mlp((2, 12, 12, 12), final_activation=True, seed=1), (-2, 2, -2, 2)),
    "leaky 2-10-10": lambda: (nets.mlp((2, 10, 10), activation="leaky_relu", final_activation=True, seed=2),
                              (-1, 3, -2, 1)),
    "spline on earlier edges": lambda: (mirrored_mlp(), (-1, 1, -1, 1)),
}


def build(case):
    if case == "cnn canvas":
        model, partition, plane = canvas_cnn()
        return model, partition, plane
    model, bounds = CASES[case]()
    return model, su.partition2d(model, bounds), None


ALL_CASES = [*CASES, "cnn canvas"]


@pytest.mark.parametrize("case", ALL_CASES)
def test_same_segments_in_the_same_order_as_clipping_every_region(case):
    _, partition, _ = build(case)
    for layer, current in enumerate(partition.layers):
        expected = [brute_force_segments(partition, layer, node) for node in range(current.num_nodes)]
        for node in range(current.num_nodes):
            np.testing.assert_array_equal(partition.spline_segments(layer, node), expected[node])
        np.testing.assert_array_equal(partition.layer_spline_segments(layer), np.concatenate(expected))
    assert sum(len(partition.layer_spline_segments(layer)) for layer in range(len(partition.layers))) > 0


def test_a_spline_on_earlier_edges_is_kept_once_per_region_it_borders():
    _, partition, _ = build("spline on earlier edges")
    segments = partition.spline_segments(1, 0)
    assert len(segments) >= 2
    np.testing.assert_allclose(segments[:, :, 0], 0.0, atol=1e-12)  # the line x1 = 0
    covered = np.sort(segments[:, :, 1], axis=1)
    assert covered[:, 0].min() == pytest.approx(-1.0) and covered[:, 1].max() == pytest.approx(1.0)


@pytest.mark.parametrize("case", ALL_CASES)
def test_segment_ends_and_middles_are_zeros_of_the_forward_pass(case):
    model, partition, plane = build(case)
    for layer, current in enumerate(partition.layers):
        for node in range(current.num_nodes):
            segments = partition.spline_segments(layer, node)
            if not len(segments):
                continue
            points = np.concatenate([segments[:, 0], segments[:, 1], segments.mean(axis=1)])
            inputs = points if plane is None else plane(points).double()
            values = hooked_pre_activations(model, inputs)[layer][:, node]
            assert np.abs(values).max() < 1e-8, (case, layer, node)


@pytest.mark.parametrize("case", ["relu 2-12-12-12", "cnn canvas"])
def test_every_sign_change_along_a_line_crosses_a_segment(case):
    """Along horizontal lines, the forward pass changes sign exactly where the node's segments cross."""
    model, partition, plane = build(case)
    xmin, xmax, ymin, ymax = partition.bounds
    x = np.linspace(xmin, xmax, 4001)
    heights = ymin + (ymax - ymin) * np.array([0.2137, 0.5113, 0.7771])
    changes = crossings = 0
    for height in heights:
        points = np.stack([x, np.full_like(x, height)], axis=1)
        inputs = points if plane is None else plane(points).double()
        layers = hooked_pre_activations(model, inputs)
        for layer, values in enumerate(layers):
            for node in range(values.shape[1]):
                sign = np.sign(values[:, node])
                sign_changes = int((sign[1:] * sign[:-1] < 0).sum())
                segments = partition.spline_segments(layer, node)
                low, high = np.sort(segments[:, :, 1], axis=1).T
                crossed = int(((low < height) & (high > height)).sum())
                assert crossed == sign_changes, (layer, node, height)
                changes, crossings = changes + sign_changes, crossings + crossed
    assert changes > 10


def test_only_regions_a_line_can_reach_are_clipped(monkeypatch):
    """The pre-filter: far fewer (region, node) pairs are clipped than regions times nodes."""
    model = nets.mlp((2, 32, 32, 32), final_activation=True, seed=6)
    partition = su.partition2d(model, (-2, 2, -2, 2))
    clipped = []

    def counting_clip_lines(polygons, lines, *args):
        clipped.append(len(polygons))
        return clip_lines(polygons, lines, *args)

    monkeypatch.setattr(partition_module, "clip_lines", counting_clip_lines)
    segments = partition.layer_spline_segments(2)
    all_pairs = partition.layers[1].num_regions * partition.layers[2].num_nodes
    assert len(segments) > 0
    assert sum(clipped) < all_pairs / 10, f"clipped {sum(clipped)} of {all_pairs} pairs for {len(segments)} segments"


@pytest.mark.parametrize("layer, node", [(-1, 0), (2, 0), (0, 12), (0, -1)])
def test_a_layer_or_node_that_does_not_exist_is_a_value_error(layer, node):
    partition = su.partition2d(nets.mlp((2, 12, 12), final_activation=True, seed=1), (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="layer|node"):
        partition.spline_segments(layer, node)
    if node == 0:
        with pytest.raises(ValueError, match="layer"):
            partition.layer_spline_segments(layer)
