"""Node/channel surgery, weight masks and rewinding, checked against independent oracles."""
import copy

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from spline_utils import pruning
from spline_utils.training import flops, nets, train

from helpers import randomize_batchnorm


def _masked_activation_outputs(model: nn.Module, keep_masks, x: torch.Tensor) -> torch.Tensor:
    """Oracle: the dense model with the pruned units' activations forced to zero (hooks on the nonlinearities)."""
    activations = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    hooks = []
    for module, keep in zip(activations, keep_masks):
        shape = (1, -1) + (1,) * 2 if isinstance(model[0], nn.Conv2d) else (1, -1)
        mask = keep.to(torch.float32).view(shape)
        hooks.append(module.register_forward_hook(lambda _m, _i, out, mask=mask: out * mask))
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for hook in hooks:
            hook.remove()


def _random_masks(widths, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    masks = []
    for width in widths:
        mask = torch.rand(width, generator=generator) < 0.5
        mask[torch.randint(width, (1,), generator=generator)] = True
        masks.append(mask)
    return masks


CASES = [
    (lambda: nets.mlp((2, 20, 12, 3), seed=0), (2,)),
    (lambda: randomize_batchnorm(nets.small_cnn(channels=6, seed=0)), (1, 28, 28)),
    (lambda: randomize_batchnorm(nets.small_vgg(widths=(4, 6), input_size=16, seed=0)), (1, 16, 16)),
]


@pytest.mark.parametrize("build, input_shape", CASES, ids=["mlp", "small_cnn", "small_vgg"])
def test_pruned_model_equals_dense_model_with_pruned_activations_zeroed(build, input_shape):
    model = build().eval()
    masks = _random_masks(pruning.layer_widths(model), seed=1)
    x = torch.randn(32, *input_shape, generator=torch.Generator().manual_seed(2))
    pruned = pruning.prune_nodes(model, masks).eval()
    with torch.no_grad():
        actual = pruned(x)
    torch.testing.assert_close(actual, _masked_activation_outputs(model, masks, x), rtol=1e-5, atol=1e-5)
    assert pruning.layer_widths(pruned) == [int(mask.sum()) for mask in masks]


def test_pruning_nodes_with_zero_outgoing_weights_leaves_the_function_unchanged():
    model = nets.mlp((2, 10, 8, 2), seed=3).eval()
    dead = [torch.tensor([1, 4, 7]), torch.tensor([0, 5])]
    with torch.no_grad():
        model[2].weight[:, dead[0]] = 0.0
        model[4].weight[:, dead[1]] = 0.0
    masks = [torch.ones(10, dtype=torch.bool), torch.ones(8, dtype=torch.bool)]
    for mask, index in zip(masks, dead):
        mask[index] = False
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pruning.prune_nodes(model, masks)(x), model(x), rtol=0, atol=1e-6)


def test_pruning_a_conv_channel_with_zero_outgoing_weights_leaves_the_function_unchanged():
    model = randomize_batchnorm(nets.small_cnn(channels=5, seed=4))
    with torch.no_grad():
        model[3].weight[:, 2] = 0.0          # conv2 reads nothing from conv1's channel 2
        model[7].weight.view(10, 5, 16)[:, 1] = 0.0  # the classifier reads nothing from conv2's channel 1
    masks = [torch.tensor([True, True, False, True, True]), torch.tensor([True, False, True, True, True])]
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(pruning.prune_nodes(model, masks)(x), model(x), rtol=1e-5, atol=1e-5)


def test_parameter_counts_and_flops_drop_as_expected():
    model = nets.mlp((2, 20, 2), seed=0)
    masks = pruning.select_nodes(pruning.node_scores(model), 0.8)
    pruned = pruning.prune_nodes(model, masks)
    assert pruning.count_parameters(pruned) == (2 * 4 + 4) + (4 * 2 + 2)
    assert flops.forward_flops(pruned, (2,)) == 2 * 2 * 4 + 2 * 4 * 2
    cnn = nets.small_cnn(channels=16, seed=0)
    kept = [torch.arange(16) < 10, torch.arange(16) < 4]
    small = pruning.prune_nodes(cnn, kept)
    expected = (10 * 21 * 21) + 2 * 10 + (4 * 10 * 25) + 2 * 4 + (4 * 16 * 10 + 10)
    assert pruning.count_parameters(small) == expected
    assert flops.forward_flops(small, (1, 28, 28)) < flops.forward_flops(cnn, (1, 28, 28))


def test_batchnorm_channels_follow_their_conv():
    model = randomize_batchnorm(nets.small_cnn(channels=6, seed=0))
    keep = [torch.tensor([False, True, True, False, True, False]), torch.ones(6, dtype=torch.bool)]
    pruned = pruning.prune_nodes(model, keep)
    torch.testing.assert_close(pruned[0].weight, model[0].weight[keep[0]])
    for name in ("weight", "bias", "running_mean", "running_var"):
        torch.testing.assert_close(getattr(pruned[1], name), getattr(model[1], name)[keep[0]])
    assert pruned[1].num_features == 3 and pruned[3].in_channels == 3
    torch.testing.assert_close(pruned[3].weight, model[3].weight[:, keep[0]])
    assert model[0].out_channels == 6, "the original model must be unchanged"


def test_nested_sequential_keeps_module_names():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 6), nn.ReLU()), nn.Linear(6, 2))
    pruned = pruning.prune_nodes(model, [torch.tensor([True, False] * 3)])
    assert set(pruned.state_dict()) == set(model.state_dict())
    assert pruned[0][0].out_features == 3 and pruned[1].in_features == 3


def test_magnitude_and_slimming_scores():
    model = randomize_batchnorm(nets.small_cnn(channels=4, seed=0))
    magnitude = pruning.node_scores(model, "magnitude")
    torch.testing.assert_close(magnitude[0], torch.sqrt((model[0].weight ** 2).sum(dim=(1, 2, 3))))
    slimming = pruning.node_scores(model, "slimming")
    torch.testing.assert_close(slimming[1], model[4].weight.detach().abs())
    with pytest.raises(ValueError, match="BatchNorm"):
        pruning.node_scores(nets.mlp((2, 4, 2)), "slimming")
    random_a = pruning.node_scores(model, "random", seed=5)
    random_b = pruning.node_scores(model, "random", seed=5)
    assert all(torch.equal(a, b) for a, b in zip(random_a, random_b))


def test_a_callable_criterion_plugs_in():
    model = nets.mlp((2, 5, 4, 2), seed=0)
    scores = pruning.node_scores(model, lambda m: [torch.arange(5.0), -torch.arange(4.0)])
    masks = pruning.select_nodes(scores, 0.5)
    assert masks[0].tolist() == [False, False, True, True, True]   # round(2.5) = 2 removed
    assert masks[1].tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="widths"):
        pruning.node_scores(model, lambda m: [torch.ones(3)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(-10, 10), min_size=1, max_size=12), min_size=1, max_size=4),
       st.floats(0.0, 0.99), st.sampled_from(["layerwise", "global"]))
def test_selection_removes_the_lowest_scores_and_never_empties_a_layer(score_lists, ratio, scope):
    scores = [torch.tensor(s, dtype=torch.float64) for s in score_lists]
    masks = pruning.select_nodes(scores, ratio, scope)
    assert all(mask.any() for mask in masks)
    if scope == "layerwise":
        for score, mask in zip(scores, masks):
            assert int(mask.sum()) == max(len(score) - round(ratio * len(score)), 1)
            if not mask.all():
                assert score[mask].min() >= score[~mask].max()
    else:
        joined, kept = torch.cat(scores), torch.cat(masks)
        n_removed = round(ratio * len(joined))
        lowest = set(torch.sort(joined, stable=True).indices[:n_removed].tolist())
        removed = set((~kept).nonzero().flatten().tolist())
        assert removed <= lowest
        assert len(removed) >= n_removed - len(scores)


def test_global_selection_keeps_one_unit_in_a_layer_of_tiny_scores():
    masks = pruning.select_nodes([torch.full((4,), 1e-6), torch.ones(6)], 0.5, "global")
    assert masks[0].sum() == 1 and masks[1].sum() == 5


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_ratio_outside_zero_one_is_an_error(ratio):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pruning.select_nodes([torch.ones(4)], ratio)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pruning.prune_weights(nets.mlp((2, 4, 2)), ratio)


def test_bad_scope_empty_layers_and_wrong_masks_are_errors():
    model = nets.mlp((2, 4, 2))
    with pytest.raises(ValueError, match="scope"):
        pruning.select_nodes([torch.ones(4)], 0.5, scope="per-node")
    with pytest.raises(ValueError, match="removes every unit"):
        pruning.prune_nodes(model, [torch.zeros(4, dtype=torch.bool)])
    with pytest.raises(ValueError, match="length 4"):
        pruning.prune_nodes(model, [torch.ones(3, dtype=torch.bool)])
    with pytest.raises(ValueError, match="one keep mask per hidden layer"):
        pruning.prune_nodes(model, [])
    with pytest.raises(ValueError, match="no hidden layer"):
        pruning.node_scores(nn.Sequential(nn.Linear(2, 2)))


@pytest.mark.parametrize("model", [nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)),
                                   nets.preact_resnet(widths=(4, 4, 4)),
                                   nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 2, 1))],
                         ids=["tanh", "resnet", "grouped-conv"])
def test_unsupported_modules_are_type_errors(model):
    with pytest.raises(TypeError):
        pruning.node_scores(model)


def test_rewind_restores_exactly_the_initial_weights_of_the_surviving_units():
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = nets.small_cnn(channels=6, seed=0)
    initial = copy.deepcopy(model)
    train.fit(model, x, y, epochs=2, lr=0.05, batch_size=16)
    masks = pruning.select_nodes(pruning.node_scores(model, "slimming"), 0.5)
    pruned = pruning.prune_nodes(model, masks)
    assert not torch.equal(pruned[0].weight, initial[0].weight[masks[0]]), "training must have moved the weights"
    pruning.rewind(pruned, initial, masks)
    torch.testing.assert_close(pruned[0].weight, initial[0].weight[masks[0]], rtol=0, atol=0)
    torch.testing.assert_close(pruned[3].weight, initial[3].weight[masks[1]][:, masks[0]], rtol=0, atol=0)
    columns = masks[1].repeat_interleave(16)
    torch.testing.assert_close(pruned[7].weight, initial[7].weight[:, columns], rtol=0, atol=0)
    torch.testing.assert_close(pruned[7].bias, initial[7].bias, rtol=0, atol=0)
    for name in ("weight", "bias", "running_mean", "running_var"):
        torch.testing.assert_close(getattr(pruned[4], name), getattr(initial[4], name)[masks[1]], rtol=0, atol=0)


def test_rewind_keeps_weight_masks_and_refuses_a_different_network():
    model = nets.mlp((2, 8, 2), seed=0)
    initial = copy.deepcopy(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    masks = [torch.arange(8) % 2 == 0]
    pruned = pruning.prune_nodes(model, masks)
    pruning.prune_weights(pruned, 0.5, modules=[pruned[0]])
    weight_mask = pruned[0].weight_mask.clone()
    pruning.rewind(pruned, initial, masks)
    torch.testing.assert_close(pruned[0].weight_orig, initial[0].weight[masks[0]], rtol=0, atol=0)
    assert torch.equal(pruned[0].weight_mask, weight_mask)
    with pytest.raises(ValueError, match="does not match"):
        pruning.rewind(pruning.prune_nodes(model, masks), nets.mlp((2, 8, 2)), [torch.ones(8, dtype=torch.bool)])


def test_weight_pruning_layerwise_sparsity_and_masks_survive_training():
    model = nets.mlp((2, 10, 10, 2), seed=0)
    pruning.prune_weights(model, 0.3)
    for module in (model[0], model[2], model[4]):
        assert pruning.weight_sparsity(module) == pytest.approx(round(0.3 * module.weight.numel())
                                                                / module.weight.numel())
    zeros = model[2].weight == 0
    train.fit(model, torch.randn(32, 2), torch.randint(0, 2, (32,)), epochs=1, lr=0.1, batch_size=8)
    assert (model[2].weight[zeros] == 0).all()


def test_global_weight_pruning_removes_the_smallest_weights_overall():
    model = nets.mlp((2, 6, 2), seed=0)
    before = torch.cat([model[0].weight.detach().flatten(), model[2].weight.detach().flatten()]).abs()
    pruning.prune_weights(model, 0.5, scope="global", permanent=True)
    after = torch.cat([model[0].weight.detach().flatten(), model[2].weight.detach().flatten()])
    assert int((after == 0).sum()) == round(0.5 * len(before))
    assert before[after == 0].max() <= before[after != 0].min()
    assert not hasattr(model[0], "weight_orig"), "permanent=True must remove the reparametrization"


def test_weight_pruning_only_takes_the_models_own_modules():
    with pytest.raises(TypeError, match="own Linear/Conv2d"):
        pruning.prune_weights(nets.mlp((2, 4, 2)), 0.5, modules=[nn.Linear(2, 2)])
