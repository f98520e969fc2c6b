"""Hostile inputs to the engine and the oracle: each is refused clearly or answered exactly, never silently wrong.

Oracles: the model's own float64 forward at points inside the returned regions, and codes read with hooks written
here (not the package's).
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import spline_utils as su
from spline_utils import PartitionTooLarge
from spline_utils.engine.tolerance import ResolutionWarning


def mlp(seed: int = 0, widths=(2, 8, 8, 2)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class Residual(nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.first, self.second, self.last = nn.Linear(2, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.first(x))
        return self.last(h + torch.relu(self.second(h)))


def own_forward_maps_error(model: nn.Module, partition) -> float:
    """Largest difference between the partition's affine maps and the model's own float64 forward inside regions."""
    points = partition.interior_points()
    slopes, offsets = partition.affine_maps()
    with torch.no_grad():
        expected = model(torch.as_tensor(points, dtype=torch.float64)).numpy()
    predicted = np.einsum("rod,rd->ro", slopes, points) + offsets
    return float(np.abs(predicted - expected).max())


@pytest.mark.parametrize("kind", ["forward_hook", "forward_pre_hook"])
@pytest.mark.parametrize("make_model", [mlp, Residual])
def test_a_hook_that_changes_outputs_is_refused_by_name(kind, make_model):
    model = make_model()
    target = model[0] if isinstance(model, nn.Sequential) else model.first
    if kind == "forward_hook":
        target.register_forward_hook(lambda module, inputs, output: output * 1.1)
    else:
        target.register_forward_pre_hook(lambda module, inputs: (inputs[0] * 1.1,))
    for call in (lambda: su.partition2d(model), lambda: su.activation_codes(model, torch.rand(4, 2))):
        with pytest.raises(TypeError, match="hook"):
            call()


def test_a_global_hook_is_refused():
    handle = nn.modules.module.register_module_forward_hook(lambda module, inputs, output: output)
    try:
        with pytest.raises(TypeError, match="global forward hooks"):
            su.partition2d(mlp())
    finally:
        handle.remove()
    assert su.partition2d(mlp()).num_regions > 1


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
@pytest.mark.parametrize("norm", ["weight_norm", "spectral_norm"])
def test_hook_based_weight_norms_use_the_weights_of_the_forward_after_an_optimizer_step(norm):
    """After ``optimizer.step()`` the module's ``weight`` attribute is stale (computed by the last forward); the
    partition must equal that of a plain network holding the weight the next forward computes."""
    torch.manual_seed(1)
    first = nn.Linear(2, 8).double()
    getattr(nn.utils, norm)(first)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.rand(16, 2, dtype=torch.float64)).pow(2).sum().backward()
        optimizer.step()
    model.eval()
    stale = first.weight.detach().clone()
    partition = su.partition2d(model)
    codes = su.activation_codes(model, torch.as_tensor(partition.interior_points()))
    with torch.no_grad():
        model(torch.zeros(1, 2, dtype=torch.float64))  # the hook recomputes the weight the forward uses
    fresh = first.weight.detach().clone()
    assert (fresh - stale).abs().max() > 1e-6  # the case really has a stale attribute
    plain = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    with torch.no_grad():
        plain[0].weight.copy_(fresh)
        plain[0].bias.copy_(first.bias)
        for index in (2, 4):
            plain[index].load_state_dict(model[index].state_dict())
    expected = su.partition2d(plain)
    assert partition.num_regions == expected.num_regions
    assert own_forward_maps_error(plain, partition) < 1e-9
    np.testing.assert_array_equal(codes.numpy(), partition.codes)


def test_activation_codes_leaves_the_callers_tensor_alone_with_an_in_place_first_relu():
    model = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(2, 4), nn.ReLU())
    x = torch.tensor([[-1.0, 2.0], [3.0, -4.0]], dtype=torch.float64)
    before = x.clone()
    su.activation_codes(model, x)
    assert torch.equal(x, before)


def test_activation_codes_refuses_samples_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        su.activation_codes(mlp(), torch.rand(5, 2, 2))


@pytest.mark.parametrize("bounds", ["-1,1,-1,1", b"\x00\x01\x02\x03", ("-1", "1", "-1", "1"),
                                    (-1e200, 1e200, -1e200, 1e200), (-1e308, 1e308, 0, 1)])
def test_bounds_that_are_text_or_overflow_are_refused(bounds):
    with pytest.raises(ValueError, match="bounds|too large"):
        su.partition2d(mlp(), bounds)


@pytest.mark.parametrize("classes", [(0,), (0, 1, 2), 3, (0.5, 1), (True, 1), (1, 1), (0, 5), ("a", "b")])
def test_odd_classes_get_a_clear_error(classes):
    partition = su.partition2d(mlp(widths=(2, 6, 3)))
    with pytest.raises(ValueError, match="classes|class"):
        partition.boundary_segments(classes)


def test_numpy_integer_classes_are_accepted():
    partition = su.partition2d(mlp(widths=(2, 6, 3)))
    np.testing.assert_array_equal(partition.boundary_segments((np.int64(0), np.int32(2))),
                                  partition.boundary_segments((0, 2)))


def test_a_small_memory_cap_says_its_size_in_readable_units():
    with pytest.raises(PartitionTooLarge, match=r"max_bytes=1000 \(1000 bytes\)"):
        su.partition2d(mlp(widths=(2, 64, 64, 2)), max_bytes=1000)


def test_a_nan_parameter_of_a_traced_model_is_named():
    model = Residual()
    with torch.no_grad():
        model.second.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="second.weight"):
        su.partition2d(model)


def test_tracing_leaves_other_threads_alone_and_two_partitions_run_at_once():
    """While residual models are traced and partitioned in two threads, a third thread's plain forward passes
    never fail, and every partition equals the one computed alone."""
    models = [Residual(seed) for seed in range(2)]
    expected = [su.partition2d(model).num_regions for model in models]
    plain = mlp()
    errors, results, stop = [], {}, threading.Event()

    def forward_passes():
        while not stop.is_set():
            try:
                plain(torch.rand(3, 2))
            except Exception as error:  # noqa: BLE001 (any failure is the bug)
                errors.append(repr(error))

    def partitions(index):
        for step in range(6):
            with torch.no_grad():  # new weights each time: a new trace each time
                models[index].last.bias.add_(0.0 if step == 0 else 1e-3)
            results[index] = su.partition2d(models[index]).num_regions

    worker = threading.Thread(target=forward_passes)
    worker.start()
    threads = [threading.Thread(target=partitions, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    worker.join()
    assert errors == []
    assert [results[0], results[1]] == expected  # the output bias moves no spline


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_a_zero_width_hidden_layer_adds_no_region_and_no_code_column():
    torch.manual_seed(4)
    first = nn.Linear(2, 4)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(4, 0), nn.ReLU(), nn.Linear(0, 2))
    partition = su.partition2d(model)
    alone = su.partition2d(nn.Sequential(first, nn.ReLU(), nn.Linear(4, 1)))
    assert partition.num_regions == alone.num_regions
    assert partition.codes.shape == (alone.num_regions, 4)
    assert su.activation_codes(model, torch.rand(3, 2)).shape == (3, 4)


def test_regions_below_the_resolution_are_never_dropped_silently():
    """Bounds of +-1e9 put the resolution (1e-10 of the half-width) at 0.1: regions of the network near the origin,
    all present at +-1e6 (oracle: the model's codes at points inside each of them), vanish, and a warning says so."""
    model = mlp(widths=(2, 16, 16, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResolutionWarning)  # at +-1e6 every region is resolved, without a warning
        resolved = su.partition2d(model, (-1e6, 1e6, -1e6, 1e6))
    points = resolved.interior_points()
    assert len(np.unique(su.activation_codes(model, torch.as_tensor(points)).numpy(), axis=0)) == \
        resolved.num_regions
    with pytest.warns(ResolutionWarning, match=r"within the engine's resolution \(1e-10 of the domain's half-width"):
        coarse = su.partition2d(model, (-1e9, 1e9, -1e9, 1e9))
    assert coarse.num_regions < resolved.num_regions  # the warning's claim: regions were merged
