"""The spline pruning criterion and the exact merge, checked against independent oracles."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import spline_utils as su
from spline_utils import pruning
from spline_utils.pruning import merging
from spline_utils.training import nets
from spline_utils.pruning import spline_criterion as sp

from helpers import randomize_batchnorm


def _duplicate_linear(model, layer_index, source, target, scale):
    """Make node ``target`` of Linear ``model[layer_index]`` equal ``scale`` times node ``source``."""
    with torch.no_grad():
        model[layer_index].weight[target] = scale * model[layer_index].weight[source]
        model[layer_index].bias[target] = scale * model[layer_index].bias[source]


def _duplicate_channel_via_batchnorm(conv, batchnorm, source, target, scale):
    """Channel ``target`` = ``scale`` x channel ``source`` after BN: scaled filter, matching statistics, eps 0."""
    with torch.no_grad():
        conv.weight[target] = scale * conv.weight[source]
        batchnorm.eps = 0.0
        batchnorm.running_mean[target] = scale * batchnorm.running_mean[source]
        batchnorm.running_var[target] = scale ** 2 * batchnorm.running_var[source]
        batchnorm.weight[target] = scale * batchnorm.weight[source]
        batchnorm.bias[target] = scale * batchnorm.bias[source]


def _mask(width, removed):
    mask = torch.ones(width, dtype=torch.bool)
    mask[list(removed)] = False
    return mask


def test_merge_is_exact_for_mlp_duplicates():
    model = nets.mlp((3, 7, 6, 2), seed=0).double()
    _duplicate_linear(model, 0, source=1, target=5, scale=2.5)
    _duplicate_linear(model, 2, source=4, target=0, scale=0.3)
    masks = [_mask(7, [5]), _mask(6, [0])]
    x = torch.randn(200, 3, dtype=torch.float64)
    merged = merging.merge_and_prune(model, masks)
    with torch.no_grad():
        assert torch.allclose(merged(x), model(x), atol=1e-12, rtol=0)
        assert not torch.allclose(pruning.prune_nodes(model, masks)(x), model(x), atol=1e-3)
    assert pruning.layer_widths(merged) == [6, 5]


@pytest.mark.parametrize("build, shape", [
    (lambda: nets.small_cnn(channels=6, seed=1), (1, 28, 28)),
    (lambda: nets.small_vgg(widths=(4, 6), input_size=16, seed=1), (1, 16, 16)),
], ids=["small_cnn_flatten", "small_vgg_conv_and_avgpool"])
def test_merge_is_exact_for_conv_channels_with_batchnorm_folded(build, shape):
    model = randomize_batchnorm(build()).double()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    norms = [m for m in model if isinstance(m, nn.BatchNorm2d)]
    _duplicate_channel_via_batchnorm(convs[0], norms[0], source=1, target=3, scale=1.7)
    _duplicate_channel_via_batchnorm(convs[-1], norms[-1], source=0, target=2, scale=0.6)
    masks = [_mask(len(n.weight), [3] if i == 0 else [2] if i == len(norms) - 1 else [])
             for i, n in enumerate(norms)]
    distances = sp.parameter_distances(model, signed=True)
    assert distances[0][1, 3] < 1e-9 and distances[-1][0, 2] < 1e-9
    x = torch.randn(20, *shape, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(merging.merge_and_prune(model, masks)(x), model(x), atol=1e-10, rtol=0)


def test_negatively_scaled_twin_is_not_merged():
    model = nets.mlp((2, 5, 2), seed=0).double()
    _duplicate_linear(model, 0, source=0, target=1, scale=-2.0)
    assert sp.parameter_distances(model)[0][0, 1] < 1e-12          # same spline
    assert sp.parameter_distances(model, signed=True)[0][0, 1] > 1  # opposite orientation
    masks = [_mask(5, [1])]
    x = torch.randn(100, 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(merging.merge_and_prune(model, masks)(x), pruning.prune_nodes(model, masks)(x))


def test_hyperplanes_reproduce_batchnorm_outputs():
    """Oracle: the model's own BN outputs equal the folded hyperplanes applied to the layer's input."""
    model = randomize_batchnorm(nets.small_cnn(channels=4, seed=2)).double()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    planes = sp.hyperplanes(model)
    with torch.no_grad():
        h1 = model[1](model[0](x))
        patches = torch.nn.functional.unfold(x, 21)                      # (3, 441, 64)
        folded = planes[0][:, :-1] @ patches + planes[0][:, -1][None, :, None]
    assert torch.allclose(folded.reshape(h1.shape), h1, atol=1e-10)


def test_parameter_distance_against_explicit_formula():
    model = nets.mlp((4, 6, 3), seed=3).double()
    weight, bias = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    theta = np.concatenate([weight, bias[:, None]], axis=1) / np.linalg.norm(weight, axis=1, keepdims=True)
    expected = np.array([[min(np.abs(a - b).sum(), np.abs(a + b).sum()) for b in theta] for a in theta])
    np.testing.assert_allclose(sp.parameter_distances(model)[0], expected, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.01, 100.0), flip=st.booleans(), node=st.integers(0, 5))
def test_parameter_distance_is_scale_and_sign_invariant(scale, flip, node):
    model = nets.mlp((3, 6, 2), seed=4).double()
    before = sp.parameter_distances(model)[0]
    _duplicate_linear(model, 0, source=node, target=node, scale=-scale if flip else scale)
    np.testing.assert_allclose(sp.parameter_distances(model)[0], before, atol=1e-9)


def test_code_distance_against_explicit_hamming():
    model = nets.mlp((2, 6, 5, 2), seed=5)
    x = torch.randn(300, 2)
    codes = su.activation_codes(model, x).numpy()
    layers = [codes[:, :6], codes[:, 6:]]
    for layer, distance in zip(layers, sp.code_distances(model, x)):
        expected = np.array([[min(np.mean(a != b), np.mean(a == b)) for b in layer.T] for a in layer.T])
        np.testing.assert_allclose(distance, expected, atol=1e-12)


def test_code_distance_of_conv_channels_uses_all_positions():
    model = randomize_batchnorm(nets.small_cnn(channels=3, seed=6)).double()
    x = torch.randn(10, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        codes = (model[1](model[0](x)) > 0).numpy()              # (10, 3, 8, 8)
    per_channel = codes.transpose(1, 0, 2, 3).reshape(3, -1)
    expected = np.array([[min(np.mean(a != b), np.mean(a == b)) for b in per_channel] for a in per_channel])
    np.testing.assert_allclose(sp.code_distances(model, x)[0], expected, atol=1e-12)


def test_groups_are_connected_components():
    distance = np.array([[0, 1, 9, 9, 9],
                         [1, 0, 9, 9, 2],
                         [9, 9, 0, 1, 9],
                         [9, 9, 1, 0, 9],
                         [9, 2, 9, 9, 0]], dtype=float)
    np.testing.assert_array_equal(sp.spline_groups(distance, 2.0), [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(sp.spline_groups(distance, 1.0), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(sp.spline_groups(distance, 0.0), [0, 1, 2, 3, 4])
    keep = sp.group_representatives(distance, sp.spline_groups(distance, 2.0))
    np.testing.assert_array_equal(keep, [False, True, True, False, False])  # node 1 is central in {0, 1, 4}


@settings(max_examples=30, deadline=None)
@given(n_distinct=st.integers(2, 6), seed=st.integers(0, 1000))
def test_greedy_selection_keeps_one_node_of_every_duplicate_pair(n_distinct, seed):
    """Every node has an exact twin: removing half must keep exactly one of each pair, which one-shot r_k cannot."""
    generator = torch.Generator().manual_seed(seed)
    model = nets.mlp((3, 2 * n_distinct, 2), seed=seed).double()
    with torch.no_grad():
        model[0].weight[n_distinct:] = model[0].weight[:n_distinct] * (torch.rand(n_distinct, 1, generator=generator,
                                                                                  dtype=torch.float64) + 0.5)
        model[0].bias[n_distinct:] = model[0].bias[:n_distinct] * model[0].weight[n_distinct:, 0] \
            / model[0].weight[:n_distinct, 0]
    keep = sp.spline_keep_masks(sp.parameter_distances(model), 0.5)[0].numpy()
    np.testing.assert_array_equal(keep[:n_distinct] ^ keep[n_distinct:], np.ones(n_distinct, dtype=bool))
    one_shot = pruning.select_nodes(sp.redundancy_scores(model), 0.5)[0].numpy()
    assert one_shot.sum() == n_distinct  # same count, but it is free to drop both members of a pair


def test_global_selection_prunes_the_redundant_layer_first():
    model = nets.mlp((3, 6, 6, 2), seed=7).double()
    for target in (1, 2, 3):
        _duplicate_linear(model, 2, source=0, target=target, scale=1.0 + target)
    keep = sp.spline_keep_masks(sp.parameter_distances(model), 0.25, scope="global")
    assert [int(k.sum()) for k in keep] == [6, 3]


def test_selection_never_empties_a_layer_and_validates():
    distances = [np.zeros((3, 3)), np.ones((2, 2)) - np.eye(2)]
    for scope in ("layerwise", "global"):
        keep = sp.spline_keep_masks(distances, 0.99, scope)
        assert all(mask.sum() >= 1 for mask in keep)
    with pytest.raises(ValueError, match="ratio"):
        sp.spline_keep_masks(distances, 1.0)
    with pytest.raises(ValueError, match="scope"):
        sp.spline_keep_masks(distances, 0.5, "per-node")
    with pytest.raises(ValueError, match="probe"):
        sp.spline_distances(nets.mlp((2, 3, 2)), space="data")
    with pytest.raises(ValueError, match="space"):
        sp.spline_distances(nets.mlp((2, 3, 2)), space="weights")
    with pytest.raises(TypeError, match="spline_distances"):
        sp.spline_keep_masks(nets.mlp((2, 3, 2)), 0.5)
    with pytest.raises(TypeError, match="distance matrix"):
        sp.spline_keep_masks(["not a matrix"], 0.5)


def test_redundancy_scores_plug_into_node_scores():
    model = nets.mlp((2, 5, 4, 2), seed=8)
    scores = pruning.node_scores(model, sp.redundancy_scores, space="data", probe=torch.randn(50, 2))
    assert [len(s) for s in scores] == [5, 4] and all((s >= 0).all() for s in scores)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), n_groups=st.integers(1, 7))
def test_threshold_for_groups_gives_that_many_groups(seed, n_groups):
    points = np.random.default_rng(seed).normal(size=(7, 2))
    distance = np.abs(points[:, None] - points[None]).sum(axis=2)
    threshold = sp.threshold_for_groups(distance, n_groups)
    assert len(np.unique(sp.spline_groups(distance, threshold))) == n_groups
    if threshold > 0:  # and it is the smallest such threshold
        assert len(np.unique(sp.spline_groups(distance, np.nextafter(threshold, 0)))) > n_groups
