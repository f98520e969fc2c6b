"""Early-bird pieces and FLOPs accounting, checked against naive re-computations and hand-made cases."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

import spline_utils as su
from spline_utils import pruning
from spline_utils.early_bird import codes as packed
from spline_utils.early_bird.codes import canvas_fields
from spline_utils.reading import operations as modules
from spline_utils.training import flops, nets, train
from spline_utils import early_bird as eb


def naive_hamming(a: np.ndarray, b: np.ndarray) -> float:
    differing = 0
    for row_a, row_b in zip(a, b):
        for bit_a, bit_b in zip(row_a, row_b):
            differing += int(bit_a != bit_b)
    return differing / a.size


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 9), st.lists(st.integers(1, 13), min_size=1, max_size=3), st.integers(0, 2**31 - 1))
def test_packbits_round_trip_and_hamming_against_a_naive_loop(n_samples, widths, seed):
    generator = np.random.default_rng(seed)
    layers_a = [generator.random((n_samples, w)) < 0.5 for w in widths]
    layers_b = [generator.random((n_samples, w)) < 0.3 for w in widths]
    packed_a, packed_b = packed.PackedCodes.from_bool(layers_a), packed.PackedCodes.from_bool(layers_b)
    for layer, original in enumerate(layers_a):
        np.testing.assert_array_equal(packed_a.unpack(layer), original)
    expected = [naive_hamming(a, b) for a, b in zip(layers_a, layers_b)]
    np.testing.assert_allclose(packed.hamming_distances(packed_a, packed_b), expected)
    assert packed.network_distance(packed_a, packed_b) == pytest.approx(np.mean(expected))
    assert packed_a.nbytes == sum(-(-n_samples * w // 8) for w in widths)


def test_distance_matrix_entries_are_pairwise_distances():
    generator = np.random.default_rng(0)
    history = [packed.PackedCodes.from_bool([generator.random((5, 7)) < 0.5, generator.random((5, 3)) < 0.5])
               for _ in range(4)]
    matrix = packed.distance_matrix(history)
    per_layer = packed.distance_matrix(history, per_layer=True)
    assert matrix.shape == (4, 4) and per_layer.shape == (4, 4, 2)
    for i in range(4):
        for j in range(4):
            assert matrix[i, j] == pytest.approx(packed.network_distance(history[i], history[j]))
    np.testing.assert_allclose(matrix, per_layer.mean(axis=2))


def test_mismatched_codes_are_rejected():
    a = packed.PackedCodes.from_bool([np.zeros((2, 3), bool)])
    b = packed.PackedCodes.from_bool([np.zeros((3, 3), bool)])
    with pytest.raises(ValueError, match="different probe sets"):
        packed.hamming_distances(a, b)
    with pytest.raises(ValueError):
        packed.PackedCodes.from_bool([np.zeros(3, bool)])


def matrix_from_steps(step_distances):
    """Distances of a 1-D walk: d(i, j) = sum of the steps between epochs i and j (a valid metric)."""
    positions = np.concatenate([[0.0], np.cumsum(step_distances)])
    return np.abs(positions[:, None] - positions[None, :])


@pytest.mark.parametrize("steps, threshold, lookback, expected", [
    ([0.5, 0.4, 0.3, 0.05, 0.05, 0.05, 0.01], 0.16, 3, 7),   # d(7, 4) = 0.15 < 0.16: first time
    ([0.5, 0.5, 0.5, 0.5], 0.16, 3, None),                   # never converges
    ([0.01, 0.01, 0.01, 0.01], 0.16, 3, 4),                  # converged at once: first possible epoch is lookback+1
    ([0.01, 0.01, 0.01, 0.01], 0.16, 4, 5),
    ([0.5, 0.0625, 0.0625, 0.0625, 0.0625], 0.125, 2, None),  # strict: every d(e, e - 2) is exactly 0.125
    ([0.5, 0.0625, 0.0625, 0.0625, 0.0625], 0.126, 2, 4),
])
def test_spline_detector_on_hand_made_sequences(steps, threshold, lookback, expected):
    # epochs are 1-based rows: with steps s_1..s_n, epoch e sits at position sum(s_1..s_{e-1})
    assert eb.spline_early_bird_epoch(matrix_from_steps(steps), threshold, lookback) == expected


def test_spline_detector_first_lookback_one_case_by_hand():
    steps = [0.5, 0.4, 0.3, 0.05, 0.05, 0.05, 0.01]
    # lookback 1: the first epoch e >= 2 whose step from e-1 is < 0.16 is epoch 5 (step s_4 = 0.05)
    assert eb.spline_early_bird_epoch(matrix_from_steps(steps), 0.16, 1) == 5


def test_detector_rejects_bad_rules():
    with pytest.raises(ValueError):
        eb.spline_early_bird_epoch(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        eb.spline_early_bird_epoch(np.zeros((3, 3)), threshold=0.0)
    with pytest.raises(ValueError):
        eb.SplineEarlyBird(torch.zeros(2, 2), lookback=0)


def bn_net(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 4), nn.BatchNorm1d(4),
                        nn.ReLU(), nn.Linear(4, 2))
    for layer in (net[1], net[4]):
        layer.running_mean.uniform_(-0.5, 0.5)
        layer.running_var.uniform_(0.5, 2.0)
        layer.weight.data.uniform_(-1.0, 1.0)
        layer.bias.data.uniform_(-0.5, 0.5)
    return net


def test_batchnorm_codes_match_a_manual_forward_pass():
    net, x = bn_net(), torch.randn(50, 3)
    codes = packed.probe_codes(net, x, batch_size=7)
    with torch.no_grad():
        scale1, shift1 = modules.batchnorm_scale_shift(net[1])
        h1 = net[0](x) * scale1 + shift1
        scale2, shift2 = modules.batchnorm_scale_shift(net[4])
        h2 = net[3](torch.relu(h1)) * scale2 + shift2
    np.testing.assert_array_equal(codes.unpack(0), (h1 > 0).numpy())
    np.testing.assert_array_equal(codes.unpack(1), (h2 > 0).numpy())
    assert codes.shapes == ((50, 5), (50, 4))
    # for a sequential BN net, BN outputs are the ReLU inputs: the same codes as activation_codes
    np.testing.assert_array_equal(np.concatenate([codes.unpack(0), codes.unpack(1)], axis=1),
                                  su.activation_codes(net, x).numpy())


def test_batchnorm_codes_of_a_residual_network_and_training_mode_restored():
    net = nets.preact_resnet(widths=(4, 8), seed=0)
    net.train()
    x = torch.randn(6, 1, 8, 8)
    outputs = packed.batchnorm_outputs(net, x, batch_size=4)
    assert net.training
    assert len(outputs) == len(modules.batchnorm_layers(net)) == 5
    net.eval()
    with torch.no_grad():
        block = net.stages[0]
        stem = net.stem(x)
        expected_first = block.bn1(stem)
    torch.testing.assert_close(outputs[0], expected_first.reshape(6, -1))
    assert outputs[-1].shape == (6, 8 * 4 * 4)


def test_codes_of_a_batchnorm_free_mlp_are_activation_codes_per_layer():
    net, x = nets.mlp((2, 6, 5, 2), seed=1), torch.randn(40, 2)
    codes = packed.probe_codes(net, x)
    reference = su.activation_codes(net, x).numpy()
    np.testing.assert_array_equal(codes.unpack(0), reference[:, :6])
    np.testing.assert_array_equal(codes.unpack(1), reference[:, 6:])


def test_the_callback_detects_what_the_matrix_rule_detects():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, generator=generator), torch.randint(0, 2, (64,), generator=generator)
    probes = {"a": torch.randn(32, 3, generator=generator), "b": torch.randn(16, 3, generator=generator)}
    detector = eb.SplineEarlyBird(probes, threshold=THRESHOLD, lookback=2)
    train.fit(bn_net(), x, y, epochs=12, lr=0.05, batch_size=16, callbacks=[detector])
    assert len(detector.history["a"]) == len(detector.history["b"]) == 12
    expected = eb.spline_early_bird_epoch(detector.matrix("a"), THRESHOLD, 2)
    assert expected is not None and expected > 3, "pick a threshold that makes the rule fire mid-training"
    assert detector.epoch == expected
    stopper = eb.SplineEarlyBird(probes, threshold=THRESHOLD, lookback=2, stop=True)
    state = train.fit(bn_net(), x, y, epochs=12, lr=0.05, batch_size=16, callbacks=[stopper])
    assert state.epoch == stopper.epoch == expected


THRESHOLD = 0.03


class SetScales(train.Callback):
    """Overwrites the BN scales of a net after each epoch with a given sequence of scale vectors."""

    def __init__(self, scales):
        self.scales = scales

    def on_epoch_end(self, state):
        values = torch.as_tensor(self.scales[state.epoch - 1], dtype=torch.float32)
        state.model[1].weight.data.copy_(values[:5])
        state.model[4].weight.data.copy_(values[5:])


def test_mask_detector_on_hand_made_scale_sequences():
    generator = np.random.default_rng(0)
    moving = [generator.permutation(9) + 1.0 for _ in range(5)]     # a new ranking each epoch
    settled = [np.arange(1.0, 10.0)] * 6                              # one fixed ranking
    scales = moving + settled
    detector = eb.MaskEarlyBird(prune_ratio=0.5, fifo=5, threshold=0.1)
    train.fit(bn_net(), torch.randn(8, 3), torch.randint(0, 2, (8,)), epochs=len(scales), lr=0.0,
              callbacks=[SetScales(scales), detector])
    # the FIFO holds only the settled mask from epoch 10 on (epochs 6..10), never before
    assert detector.epoch == 10
    assert np.isnan(detector.distances[:4]).all() and detector.distances[9] == 0.0
    mask = eb.batchnorm_mask(bn_net(), 0.5)
    assert mask.shape == (9,) and mask.sum() == 4                      # sorted[int(9 * 0.5)] = 5th smallest


def test_batchnorm_l1_adds_the_sign_of_the_scales():
    net, x, y = bn_net(), torch.randn(8, 3), torch.randint(0, 2, (8,))
    grads = {}

    class Record(train.Callback):
        def on_backward_end(self, state):
            grads["g"] = state.model[1].weight.grad.clone()

    train.fit(net, x, y, epochs=1, lr=0.0, batch_size=8, callbacks=[Record()])
    plain = grads["g"]
    net2 = bn_net()
    train.fit(net2, x, y, epochs=1, lr=0.0, batch_size=8, callbacks=[pruning.BatchNormL1(0.5), Record()])
    torch.testing.assert_close(grads["g"], plain + 0.5 * torch.sign(net2[1].weight.detach()))


def test_flops_of_linear_and_conv_layers():
    assert flops.forward_flops(nn.Linear(7, 5), (7,)) == 2 * 7 * 5
    assert flops.authors_forward_flops(nn.Linear(7, 5), (7,)) == 2 * 7 * 5 + 5
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert flops.forward_flops(conv, (3, 8, 8)) == 2 * 3 * 3 * 3 * 4 * 8 * 8
    assert flops.training_flops_per_epoch(nn.Linear(7, 5), (7,), n_train=10) == 3 * 70 * 10


def test_authors_rules_add_elementwise_terms_to_the_counter():
    net = nets.small_cnn(seed=0)
    counted = flops.forward_flops(net, (1, 28, 28))
    conv_mac = 2 * (21 * 21 * 1 * 16 * 8 * 8 + 5 * 5 * 16 * 16 * 4 * 4)
    linear = 2 * 256 * 10
    assert counted == conv_mac + linear
    elementwise = (2 + 1) * (16 * 8 * 8 + 16 * 4 * 4) + 10              # BN 2 numel, ReLU numel, linear bias
    assert flops.authors_forward_flops(net, (1, 28, 28)) == counted + elementwise


def test_early_bird_training_flops_and_errors():
    assert flops.early_bird_training_flops(10.0, 4.0, epochs=5, eb_epoch=2, detection_flops_per_epoch=1.0) == \
        2 * 11.0 + 3 * 4.0
    with pytest.raises(ValueError):
        flops.early_bird_training_flops(1.0, 1.0, epochs=3, eb_epoch=4)
    with pytest.raises(ValueError):
        flops.forward_flops(nn.Linear(2, 2), ())


def test_canvas_fields_are_the_bn_outputs_and_logits_at_each_grid_point():
    torch.manual_seed(0)
    net = nets.small_cnn(channels=4, seed=3)
    net[1].running_mean.uniform_(-0.5, 0.5)  # non-trivial BN statistics
    net.train()
    statistics = {name: buffer.clone() for name, buffer in net.named_buffers()}
    images = torch.randn(2, 1, 28, 28)
    plane = su.image_canvas(images[0], images[1])
    fields, logits = canvas_fields(net, plane, (0.0, 1.0, 0.0, 1.0), resolution=4, batch_size=5)
    assert net.training, "the training mode is restored"
    assert all(torch.equal(statistics[name], buffer) for name, buffer in net.named_buffers()), \
        "drawing the canvas must not update BatchNorm running statistics"
    xs, ys, _ = su.grid_points((0.0, 1.0, 0.0, 1.0), 4)
    row, column = 2, 1
    point = plane(torch.tensor([[xs[column], ys[row]]])).float()
    recorded = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: recorded.append(out[0]))
             for layer in modules.batchnorm_layers(net)]
    net.eval()
    with torch.no_grad():
        expected_logits = net(point)[0]
    for hook in hooks:
        hook.remove()
    assert [tuple(f.shape) for f in fields] == [(4, 4, *h.shape) for h in recorded]
    for field, expected in zip(fields, recorded):
        torch.testing.assert_close(field[row, column], expected)
    torch.testing.assert_close(logits[row, column], expected_logits)


@pytest.mark.parametrize("arguments, error", [
    ({"prune_ratio": "0.5"}, TypeError), ({"prune_ratio": 1.0}, ValueError), ({"prune_ratio": float("nan")}, ValueError),
    ({"prune_ratio": True}, TypeError), ({"fifo": "5"}, TypeError), ({"fifo": 1}, ValueError),
    ({"fifo": 2.5}, TypeError), ({"threshold": "0.1"}, TypeError), ({"threshold": 1.0}, ValueError)])
def test_mask_early_bird_refuses_bad_settings_when_built(arguments, error):
    """A value of the wrong type is a TypeError, a wrong value a ValueError; both name the argument."""
    name = next(iter(arguments))
    with pytest.raises(error, match=name):
        eb.MaskEarlyBird(**arguments)
