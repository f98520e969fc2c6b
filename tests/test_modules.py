"""Walking a model (spline_utils.reading.operations), the chain's pre-activations, seeded builders and node selection by count."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
from spline_utils import pruning
from spline_utils.reading import operations as modules
from spline_utils.reading import sequential
from spline_utils.training import nets
from spline_utils.reading.sequential import is_chain, to_chain


def test_leaves_flatten_nested_sequentials_with_qualified_names():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), nn.Linear(3, 1))
    assert [name for name, _ in modules.leaves(model)] == ["0.0", "0.1", "1"]


@pytest.mark.parametrize("shared", ["activation", "linear"])
def test_a_module_used_twice_is_not_walked_as_a_chain(shared):
    """The walk refuses it (named_children() would silently drop the second use); the engine traces it instead."""
    if shared == "activation":
        act = nn.ReLU()
        model = nn.Sequential(nn.Linear(2, 4), act, nn.Linear(4, 4), act, nn.Linear(4, 2))
    else:
        linear = nn.Linear(4, 4)
        model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), linear, nn.ReLU(), linear, nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(TypeError, match="same object"):
        modules.leaves(model)
    with pytest.raises(TypeError, match="same object"):
        pruning.layer_widths(model)
    assert not is_chain(model)


def test_a_sequential_subclass_with_its_own_forward_is_not_walked_as_a_chain():
    class Doubled(nn.Sequential):
        def forward(self, x):
            return 2 * super().forward(x)

    model = Doubled(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(TypeError, match="own forward"):
        to_chain(model)
    assert not is_chain(model)


def test_hidden_layer_links_attach_each_batchnorm_to_its_layer():
    model = nets.small_cnn(channels=4, seed=0)
    links = modules.hidden_layer_links(model)
    assert [link.name for link in links] == ["0", "3"]
    assert [link.batchnorm_name for link in links] == ["1", "4"]
    assert [link.flattened for link in links] == [False, True]
    assert links[1].next_layer is model[7] and links[0].width == 4


def test_a_batchnorm_after_a_flatten_is_refused_by_pruning():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="right after"):
        pruning.prune_nodes(model, [torch.tensor([True, False])])


def test_chain_pre_activations_equal_the_inputs_of_the_model_relus():
    model = nets.small_cnn(channels=3, seed=1).eval()
    x = torch.randn(5, 1, 28, 28)
    recorded = []
    network = copy.deepcopy(model).double()
    hooks = [m.register_forward_hook(lambda _m, inputs, _o: recorded.append(inputs[0].clone()))
             for m in network.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        network(x.double())
    for hook in hooks:
        hook.remove()
    computed = to_chain(model).pre_activations(x)
    assert len(computed) == len(recorded) == 2
    for mine, theirs in zip(computed, recorded):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)


def test_seeded_restores_the_global_generator_and_repeats():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with nets.seeded(7):
        first = torch.rand(2)
    assert torch.equal(torch.rand(3), expected_next), "the global stream continues as if nothing was drawn"
    with nets.seeded(7):
        assert torch.equal(torch.rand(2), first)


def test_select_nodes_by_count_equals_select_nodes_by_ratio():
    scores = [torch.tensor([0.3, 0.1, 0.9, 0.5]), torch.tensor([1.0, 2.0, 0.5, 0.2, 0.7, 0.1])]
    by_count = pruning.select_nodes(scores, keep=[2, 3])
    by_ratio = pruning.select_nodes(scores, 0.5)
    assert [mask.tolist() for mask in by_count] == [mask.tolist() for mask in by_ratio]
    assert by_count[0].tolist() == [False, False, True, True]
    total = pruning.select_nodes(scores, keep=3, scope="global")
    assert sum(int(mask.sum()) for mask in total) == 3 and total[1][:2].all()
    with pytest.raises(ValueError, match="exactly one"):
        pruning.select_nodes(scores, 0.5, keep=[2, 3])
    with pytest.raises(ValueError, match=r"keep\[0\] must be a whole number in \[1, 4\], got 0"):
        pruning.select_nodes(scores, keep=[0, 3])


def test_select_nodes_refuses_nan_scores():
    with pytest.raises(ValueError, match="NaN"):
        pruning.select_nodes([torch.tensor([0.5, float("nan"), 0.1])], 0.3)


def test_partition_codes_are_computed_once_and_read_only():
    partition = su.partition2d(nets.mlp((2, 6, 6, 2), seed=0), (-1, 1, -1, 1))
    assert partition.codes is partition.codes
    with pytest.raises(ValueError):
        partition.codes[0, 0] = not partition.codes[0, 0]
    assert np.array_equal(partition.codes, partition.codes_up_to(len(partition.layers) - 1))


@pytest.mark.parametrize("conv", [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=3, out_channels=4, kernel_size=(3, 2), stride=2, padding=(1, 2), bias=False),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding="same", dilation=2, groups=2),
])
def test_a_convolution_in_batches_is_the_whole_batchs_bit_for_bit_and_keeps_each_batch_small(conv, monkeypatch):
    """The reader convolves a few samples at a time (torch's float64 CPU convolution unfolds its whole batch at
    once); the oracle is one ``F.conv2d`` on the whole batch."""
    module = nn.Conv2d(**conv).double()
    x = torch.randn(23, conv["in_channels"], 9, 8, dtype=torch.float64)
    whole = torch.nn.functional.conv2d(x, module.weight, module.bias, module.stride, module.padding, module.dilation,
                                       module.groups)
    output_pixels = whole.shape[2] * whole.shape[3]
    column_bytes = conv["in_channels"] * math.prod(module.kernel_size) * output_pixels * 8
    monkeypatch.setattr(sequential, "CONVOLUTION_COLUMN_BYTES", 4 * column_bytes)  # 4 samples a batch
    batches = []
    real_conv2d = torch.nn.functional.conv2d
    monkeypatch.setattr(sequential.F, "conv2d",
                        lambda part, *args: batches.append(len(part)) or real_conv2d(part, *args))
    batched = sequential.apply_affine(module, x, True)
    assert torch.equal(batched, whole)
    assert max(batches) == 4 and sum(batches) == len(x)
    for few in (x[:0], x[:1]):  # no sample to read the output's size from, or one
        assert torch.equal(sequential.apply_affine(module, few, True), whole[:len(few)])
