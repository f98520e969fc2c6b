"""Edges of the engine and the pruning tools (issue 14): what is refused and why, weight-masked models, precision far
from the origin, the region cap on huge partitions, and the package's declared floors.

Oracles: hand-built geometry, dense copies of masked models built from ``weight_orig * weight_mask`` directly, and the
model's own forward pass.
"""
import time
import tomllib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from packaging.specifiers import SpecifierSet

import spline_utils as su
from spline_utils import pruning
from spline_utils.early_bird import codes
from spline_utils.pruning import spline_criterion as spline_pruning
from spline_utils.training import nets, train
from spline_utils.engine.region_bound import _pieces_lower_bound
from spline_utils.early_bird.detectors import SplineEarlyBird
from spline_utils.engine.polygons import rectangle
from spline_utils.engine.tolerance import Frame, ResolutionWarning

ROOT = Path(__file__).resolve().parents[1]


def mlp(seed=0, widths=(2, 8, 8, 2)):
    return nets.mlp(widths, seed=seed)


def with_first_layer(weight, bias, outputs=1):
    """Linear(2, k) with the given rows, ReLU, Linear(k, outputs): float64."""
    model = nn.Sequential(nn.Linear(2, len(bias)), nn.ReLU(), nn.Linear(len(bias), outputs)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.as_tensor(np.asarray(weight, dtype=np.float64)))
        model[0].bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float64)))
    return model


# --- item 4: impossible parameters are refused, not turned into NaN maps -------------------------------------------

@pytest.mark.parametrize("slope", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_leaky_slope_is_refused(slope):
    model = nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(slope), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="negative_slope"):
        su.partition2d(model)
    with pytest.raises(ValueError, match="negative_slope"):
        su.activation_codes(model, torch.zeros(3, 2))


@pytest.mark.parametrize("variance, eps", [(-1.0, 1e-5), (0.0, 0.0), (-1e-5, 1e-5)])
def test_batchnorm_without_a_positive_variance_is_refused(variance, eps):
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4, eps=eps), nn.ReLU(), nn.Linear(4, 1)).eval()
    model[1].running_var[2] = variance
    with pytest.raises(ValueError, match="running_var"):
        su.partition2d(model)
    with pytest.raises(ValueError, match="running_var"):
        su.activation_codes(model, torch.zeros(3, 2))


@pytest.mark.parametrize("cap", [float("nan"), float("inf"), None, "1000", 0, 2.5, True])
def test_region_and_memory_caps_must_be_whole_numbers(cap):
    with pytest.raises(ValueError, match="max_regions"):
        su.partition2d(mlp(), max_regions=cap)
    with pytest.raises(ValueError, match="max_bytes"):
        su.partition2d(mlp(), max_bytes=cap)


def test_a_cap_given_as_a_whole_float_still_works():
    assert su.partition2d(mlp(), max_regions=1e6).num_regions == su.partition2d(mlp()).num_regions


# --- item 5: a domain far from the origin is resolved as finely as one around it ------------------------------------

def test_line_far_from_the_origin_splits_the_domain_in_two():
    centre = 1e10 + 0.5
    model = with_first_layer([[1.0, 0.0]], [-centre])
    partition = su.partition2d(model, bounds=(1e10, 1e10 + 1, 0, 1))
    assert partition.num_regions == 2
    np.testing.assert_allclose(np.sort(partition.areas()), [0.5, 0.5], rtol=1e-4)
    inside = partition.interior_points()
    np.testing.assert_array_equal(partition.codes[:, 0], inside[:, 0] > centre)
    (segment,) = partition.spline_segments(0, 0)
    np.testing.assert_allclose(segment[:, 0], [centre, centre], rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.sort(segment[:, 1]), [0.0, 1.0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("shift", [1e6, 1e9])
def test_partition_does_not_change_when_network_and_domain_move_together(shift):
    """f(p - s) on bounds + s is f on the bounds moved: the same regions (count, areas), wherever s is."""
    model = mlp(seed=3, widths=(2, 12, 12, 1)).double()
    moved = nets.mlp((2, 12, 12, 1), seed=3).double()
    offset = torch.tensor([shift, -shift / 2], dtype=torch.float64)
    with torch.no_grad():
        moved[0].bias.copy_(model[0].bias - model[0].weight @ offset)
    here = su.partition2d(model, bounds=(-1, 1, -1, 1))
    there = su.partition2d(moved, bounds=(shift - 1, shift + 1, -shift / 2 - 1, -shift / 2 + 1))
    assert there.num_regions == here.num_regions
    np.testing.assert_allclose(np.sort(there.areas()), np.sort(here.areas()), rtol=1e-3, atol=8 * 2.0**-52 * shift)


# --- item 6: weight-masked models (torch.nn.utils.prune) read their effective weights --------------------------------

def masked_and_dense(bn=False, seed=0):
    """A weight-masked network after a training step (so ``weight`` is a computed tensor), and a plain copy built
    from ``weight_orig * weight_mask``: the oracle."""
    if bn:
        model = nets.small_cnn(seed=seed)
        x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    else:
        model = mlp(seed)
        x = torch.randn(4, 2, generator=torch.Generator().manual_seed(seed))
    dense = nets.small_cnn(seed=seed) if bn else mlp(seed)
    pruning.prune_weights(model, 0.6)
    model(x).sum().backward()
    with torch.no_grad():
        for (name, module), (_, plain) in zip(model.named_modules(), dense.named_modules()):
            if hasattr(module, "weight_mask"):
                plain.weight.copy_(module.weight_orig * module.weight_mask)
    assert not model[0].weight.is_leaf
    return model.eval(), dense.eval()


def test_masked_model_codes_and_partition_use_the_masked_weights():
    masked, dense = masked_and_dense()
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(su.activation_codes(masked, x), su.activation_codes(dense, x))
    partition, oracle = su.partition2d(masked), su.partition2d(dense)
    assert partition.num_regions == oracle.num_regions
    slopes, offsets = partition.affine_maps()
    inside = partition.interior_points()
    with torch.no_grad():
        expected = dense.double()(torch.as_tensor(inside)).numpy()
    np.testing.assert_allclose(np.einsum("roi,ri->ro", slopes, inside) + offsets, expected, atol=1e-9)
    assert hasattr(masked[0], "weight_mask"), "the model keeps its masks"


def test_masked_model_node_surgery_and_probe_codes():
    masked, dense = masked_and_dense()
    keep = [torch.tensor([True, False] * 4), torch.tensor([False, True] * 4)]
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(pruning.prune_nodes(masked, keep)(x), pruning.prune_nodes(dense, keep)(x))
    a, b = codes.probe_codes(masked, x), codes.probe_codes(dense, x)
    assert all(np.array_equal(p, q) for p, q in zip(a.bits, b.bits))


@pytest.mark.parametrize("bn", [False, True])
def test_spline_early_bird_trains_a_masked_network(bn):
    masked, _ = masked_and_dense(bn=bn)
    masked.train()
    shape = (1, 28, 28) if bn else (2,)
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, *shape, generator=generator), torch.randint(0, 2, (16,), generator=generator)
    detector = SplineEarlyBird(x[:8])
    train.fit(masked, x, y, epochs=2, lr=0.01, batch_size=8, seed=0, callbacks=[detector])
    assert len(detector.history[next(iter(detector.history))]) == 2
    assert hasattr(masked[0], "weight_mask") and float((masked[0].weight == 0).float().mean()) >= 0.5


# --- item 7: clear messages -------------------------------------------------------------------------------------------

def test_empty_batch_gives_empty_codes():
    model = mlp()
    assert su.activation_codes(model, torch.zeros(0, 2)).shape == (0, 16)
    cnn = nets.small_cnn(seed=0).eval()
    n_nodes = su.activation_codes(cnn, torch.zeros(1, 1, 28, 28)).shape[1]
    assert su.activation_codes(cnn, torch.zeros(0, 1, 28, 28)).shape == (0, n_nodes)


def test_model_starting_with_flatten_takes_two_d_points():
    plain = with_first_layer([[1.0, 0.5], [-0.3, 1.0], [0.2, -1.0]], [0.1, -0.2, 0.3])
    flattened = nn.Sequential(nn.Flatten(), *plain)
    partition = su.partition2d(flattened)
    assert partition.num_regions == su.partition2d(plain).num_regions
    inside = torch.as_tensor(partition.interior_points())
    np.testing.assert_array_equal(partition.codes, su.activation_codes(plain, inside).numpy())


def test_model_that_cannot_take_two_d_points_says_to_pass_a_plane():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
    with pytest.raises(ValueError, match="plane=") as error:
        su.partition2d(model)
    assert "starts with a conv layer" not in str(error.value)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")  # torch, on Linear(4, 0)
def test_network_without_outputs_has_no_decision_boundary():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 0))
    with pytest.raises(ValueError, match="no outputs"):
        su.partition2d(model).boundary_segments()


@pytest.mark.parametrize("layer, node", [(-1, 0), (2, 0), (0, -1), (0, 8), (0.0, 0), (0, 1.5)])
def test_spline_of_a_missing_layer_or_node_is_refused(layer, node):
    partition = su.partition2d(mlp())
    with pytest.raises(ValueError, match="layer|node"):
        partition.spline_segments(layer, node)


def test_layer_splines_of_a_missing_layer_are_refused():
    with pytest.raises(ValueError, match="layer"):
        su.partition2d(mlp()).layer_spline_segments(-1)


@pytest.mark.parametrize("ratio, error", [("0.5", TypeError), (None, TypeError), (float("nan"), ValueError),
                                          (True, TypeError)])
def test_ratio_must_be_a_number(ratio, error):
    """A ratio of the wrong type is a TypeError, a number outside [0, 1) a ValueError; both name ``ratio``."""
    model = mlp()
    with pytest.raises(ValueError if ratio is None else error, match="ratio"):  # None: neither ratio nor keep given
        pruning.select_nodes(pruning.node_scores(model), ratio=ratio)
    with pytest.raises(error, match="ratio"):
        pruning.prune_weights(model, ratio)
    with pytest.raises(error, match="ratio"):
        spline_pruning.spline_keep_masks(spline_pruning.spline_distances(model), ratio)


def test_meta_device_model_is_refused():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).to("meta")
    with pytest.raises(ValueError, match="meta"):
        su.partition2d(model)
    with pytest.raises(ValueError, match="meta"):
        su.activation_codes(model, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="meta"):
        codes.probe_codes(nets.small_cnn(seed=0).to("meta"), torch.zeros(2, 1, 28, 28))


def test_node_surgery_refuses_a_resnet_and_says_why():
    resnet = nets.preact_resnet(seed=0)
    with pytest.raises(TypeError, match="nn.Sequential.*PreActResNet is not one"):
        pruning.prune_nodes(resnet, [])


# --- item 8: the region cap fires within seconds, with bounded memory -----------------------------------------------

def near_parallel_lines(n, seed=0):
    """n near-vertical lines through points near the centre of [-1, 1]^2: about n^2 / 2 regions."""
    generator = np.random.default_rng(seed)
    angle = generator.uniform(-0.1, 0.1, n)
    return with_first_layer(np.stack([np.cos(angle), np.sin(angle)], 1), -generator.uniform(-0.05, 0.05, n))


def test_region_cap_fires_fast_on_thousands_of_crossing_lines():
    model = near_parallel_lines(2000)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(su.PartitionTooLarge, match="at least"):
        su.partition2d(model)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 20, f"{seconds:.1f} s before PartitionTooLarge"  # was 65-77 s
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"  # was 0.35-0.7 GB


def arrangement(kind, n, seed=0):
    generator = np.random.default_rng(seed)
    angle = generator.uniform(0, np.pi, n)
    weight = np.stack([np.cos(angle), np.sin(angle)], 1)
    if kind == "general":
        return weight, generator.uniform(-0.7, 0.7, n)
    if kind == "concurrent":  # all through the origin: 2n regions, n (n - 1) / 2 pairs
        return weight, np.zeros(n)
    half = generator.uniform(-0.7, 0.7, n // 2)  # every line twice, once scaled by -3
    return np.concatenate([weight[: n // 2], -3 * weight[: n // 2]]), np.concatenate([half, -3 * half])


@pytest.mark.parametrize("kind", ["general", "concurrent", "duplicated"])
def test_region_count_lower_bound_never_exceeds_the_exact_count(kind):
    weight, bias = arrangement(kind, 160)
    exact = su.partition2d(with_first_layer(weight, bias)).num_regions
    lines = np.concatenate([bias[:, None], weight], axis=1)
    bound = _pieces_lower_bound(rectangle((-1, 1, -1, 1)), lines, Frame.around((-1, 1, -1, 1)))
    assert bound <= exact
    if kind == "general":
        assert bound == exact
    if kind == "concurrent":
        assert exact == 2 * 160 and bound >= 160


@pytest.mark.parametrize("kind", ["concurrent", "duplicated"])
def test_cap_equal_to_the_count_is_not_exceeded(kind):
    """Degenerate arrangements whose pair count is far above the cap must still be computed."""
    weight, bias = arrangement(kind, 1200)
    exact = su.partition2d(with_first_layer(weight, bias)).num_regions
    assert exact < 1200 * 1199 / 2 / 4  # far below the pair count, which is above the cap
    assert su.partition2d(with_first_layer(weight, bias), max_regions=exact).num_regions == exact
    with pytest.raises(su.PartitionTooLarge):
        su.partition2d(with_first_layer(weight, bias), max_regions=exact - 1)


# --- item 10: declared floors ---------------------------------------------------------------------------------------

def test_requires_python_has_tarfile_extraction_filters():
    """``tarfile.extractall(filter="data")`` (data.cifar's download) exists from 3.10.12, 3.11.4 and 3.12."""
    specifier = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    for version in ("3.10.12", "3.11.4", "3.11.9", "3.12.0", "3.13.1"):
        assert version in specifier
    for version in ("3.9.18", "3.10.11", "3.11.0", "3.11.3"):
        assert version not in specifier


def nearly_parallel_lines(n, seed=0):
    """``n`` lines within 1e-6 rad of each other and 1e-6 of the origin: nearly all pairs meet inside the square."""
    generator = np.random.default_rng(seed)
    angle = generator.uniform(0, 1e-6, n)
    return np.stack([np.cos(angle), np.sin(angle)], 1), generator.uniform(-5e-7, 5e-7, n)


def test_near_parallel_lines_count_towards_the_lower_bound_without_exceeding_the_exact_count():
    weight, bias = nearly_parallel_lines(120)
    with pytest.warns(ResolutionWarning):  # lines that meet within 1e-6 of each other: some within the resolution
        exact = su.partition2d(with_first_layer(weight, bias)).num_regions
    lines = np.concatenate([bias[:, None], weight], axis=1)
    bound = _pieces_lower_bound(rectangle((-1, 1, -1, 1)), lines, Frame.around((-1, 1, -1, 1)))
    assert exact // 2 < bound <= exact  # the intersection formula counted none of these pairs: 121


def test_two_thousand_near_parallel_lines_stop_at_the_cap_in_seconds():
    weight, bias = nearly_parallel_lines(2000)
    started = time.perf_counter()
    with pytest.raises(su.PartitionTooLarge, match="at least"):
        su.partition2d(with_first_layer(weight, bias))
    assert time.perf_counter() - started < 20  # 62-203 s while the bound skipped near-parallel pairs
