"""Hostile inputs outside the partition engine (issue 22): each refused with a clear error, none exhausting memory.

The hostile files are written here, small on disk (sparse files for big declared sizes), and the readers' memory is
measured with ``tracemalloc`` (numpy and Python buffers are both traced), so a reader that allocates what a file
declares fails the test instead of the machine.
"""
import gzip
import math
import struct
import tracemalloc
import zipfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn as nn

from spline_utils import checks, partition2d, pruning
from spline_utils.data import fetch, file_formats
from spline_utils.early_bird import codes
from spline_utils import early_bird as eb
from spline_utils.data.cifar_loader import cifar
from spline_utils.pages.interact import frame_slider, live_control, slider_html, static_frame_html
from spline_utils.data.mnist_loader import mnist
from spline_utils.plot import figure_png
from data_files import MNIST_NAMES, local_server, md5, python2_pickle, write_idx

MIB = 2**20
pytestmark = pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")


def peak_bytes(function, *args, **kwargs):
    """(what ``function`` raised or returned, the peak of traced memory while it ran)."""
    tracemalloc.start()
    try:
        try:
            outcome = function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the caller inspects it
            outcome = error
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- checks.py: one style for every argument check ---------------------------------------------------------------

@pytest.mark.parametrize("value", [3, np.int64(3), np.uint8(3), torch.tensor(3)])
def test_check_integer_takes_every_integer_type(value):
    result = checks.check_integer("count", value, minimum=1)
    assert result == 3 and type(result) is int


@pytest.mark.parametrize("value, error", [(True, TypeError), (3.0, TypeError), ("3", TypeError), (None, TypeError),
                                          (np.float64(3), TypeError), (0, ValueError), (11, ValueError)])
def test_check_integer_refuses_with_the_argument_name(value, error):
    with pytest.raises(error, match=r"^count must be a whole number in \[1, 10\]"):
        checks.check_integer("count", value, minimum=1, maximum=10)


@pytest.mark.parametrize("value, error", [("0.5", TypeError), (True, TypeError), (None, TypeError),
                                          (float("nan"), ValueError), (1.0, ValueError), (-0.1, ValueError)])
def test_check_fraction(value, error):
    with pytest.raises(error, match=r"ratio must be a number in \[0, 1\) \(the fraction of nodes to remove\)"):
        checks.check_fraction("ratio", value, "nodes to remove")
    assert checks.check_fraction("ratio", np.float32(0.25), "nodes to remove") == 0.25


@pytest.mark.parametrize("value, error", [("1", TypeError), (False, TypeError), (float("nan"), ValueError),
                                          (float("inf"), ValueError), (0.0, ValueError), (-1, ValueError)])
def test_check_finite_number(value, error):
    with pytest.raises(error, match="threshold must be"):
        checks.check_finite_number("threshold", value, minimum=0, strict_minimum=True)
    assert checks.check_finite_number("threshold", np.float64(0.16), minimum=0, strict_minimum=True) == 0.16


def test_check_string_choice_callable_index_samples():
    assert checks.check_string_choice("scope", "global", ("layerwise", "global")) == "global"
    with pytest.raises(TypeError, match="scope must be one of the strings"):
        checks.check_string_choice("scope", 1, ("layerwise", "global"))
    with pytest.raises(ValueError, match=r"scope must be one of \('layerwise', 'global'\), got 'Global'"):
        checks.check_string_choice("scope", "Global", ("layerwise", "global"))
    with pytest.raises(TypeError, match=r"draw must be a function \(draw\(value\) -> Figure\), got None"):
        checks.check_callable("draw", None, "draw(value) -> Figure")
    assert checks.check_index("start", np.int64(2), 3, "values") == 2
    with pytest.raises(TypeError, match="start must be a whole number indexing values"):
        checks.check_index("start", 1.5, 3, "values")
    with pytest.raises(ValueError, match="start must index values, 0 <= start < 3; got 3"):
        checks.check_index("start", 3, 3, "values")
    with pytest.raises(TypeError, match="x must be a tensor or array"):
        checks.check_samples("x", "abc")
    with pytest.raises(ValueError, match="n_samples >= 1"):
        checks.check_samples("x", torch.zeros(0, 2))


# --- early bird: a NaN distance is an error, never "not yet" ----------------------------------------------------

def rule_oracle(distances, threshold, lookback):
    """The rule in plain Python: the first 1-based epoch e > lookback whose lookback previous distances are all
    below threshold."""
    for row in range(lookback, len(distances)):
        if all(distances[row][row - back] < threshold for back in range(1, lookback + 1)):
            return row + 1
    return None


def settling_matrix():
    """Distances of 7 epochs whose partitions settle: epoch 6 is the first within 0.1 of its 3 predecessors."""
    position = np.array([0.0, 0.4, 0.9, 0.95, 0.97, 0.98, 0.99])
    return np.abs(position[:, None] - position[None, :])


def test_the_rule_matches_its_oracle_on_clean_distances():
    distances = settling_matrix()
    assert eb.spline_early_bird_epoch(distances, 0.1, 3) == rule_oracle(distances.tolist(), 0.1, 3) == 6


@pytest.mark.parametrize("where", [(5, 2), (5, 4)])
def test_a_nan_distance_is_refused_not_read_as_not_yet(where):
    """Before: NaN < threshold is False, so the NaN moved the epoch from 6 to 7."""
    distances = settling_matrix()
    distances[where] = distances[where[::-1]] = np.nan
    with pytest.raises(ValueError, match=rf"distance of epoch {where[0] + 1} to epoch\(s\) \[{where[1] + 1}\] is NaN"):
        eb.spline_early_bird_epoch(distances, 0.1, 3)


def test_an_all_nan_matrix_is_refused_not_never():
    with pytest.raises(ValueError, match="is NaN"):
        eb.spline_early_bird_epoch(np.full((6, 6), np.nan), 0.1, 3)


def zero_width_network():
    """A BN-free network whose second hidden layer has 0 nodes: its Hamming distance would be 0/0."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 0), nn.ReLU(), nn.Linear(0, 2))


def test_codes_with_no_entries_are_refused_where_they_are_made():
    with pytest.raises(ValueError, match=r"layer\(s\) \[1\] have no codes .*0 nodes"):
        codes.PackedCodes.from_bool([np.ones((5, 3), bool), np.ones((5, 0), bool)])
    with pytest.raises(ValueError, match=r"layer\(s\) \[0\] have no codes .*0 probe points"):
        codes.PackedCodes.from_bool([np.ones((0, 3), bool)])
    with pytest.raises(ValueError, match="have no codes"):
        codes.probe_codes(zero_width_network(), torch.randn(5, 2))


def test_the_online_detector_stops_on_a_zero_width_layer_instead_of_never_firing():
    """Before: every distance was NaN, so the detector silently never fired."""
    detector = eb.SplineEarlyBird(torch.randn(8, 2), threshold=0.5, lookback=1)
    state = type("State", (), {"model": zero_width_network(), "epoch": 1, "stop": False})()
    with pytest.raises(ValueError, match="have no codes"):
        detector.on_epoch_end(state)


@pytest.mark.parametrize("arguments, error", [({"threshold": "0.16"}, TypeError), ({"threshold": float("nan")},
                                              ValueError), ({"lookback": 2.5}, TypeError), ({"lookback": 0}, ValueError),
                                              ({"batch_size": 0}, ValueError)])
def test_spline_early_bird_settings(arguments, error):
    with pytest.raises(error, match=next(iter(arguments))):
        eb.SplineEarlyBird(torch.randn(4, 2), **arguments)


def test_the_mask_of_a_network_without_batchnorm_channels_is_refused():
    model = nn.Sequential(nn.Linear(2, 0), nn.BatchNorm1d(0))
    with pytest.raises(ValueError, match="0 channels"):
        eb.batchnorm_mask(model, 0.5)


# --- data: declared sizes checked before allocating, decompression bounded, symlink loops named -------------------

def npy_header(shape, descr="|u1") -> bytes:
    """A version 1.0 .npy header, written by hand (the format's spec), for an array of ``shape``."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    text += " " * ((64 - (10 + len(text) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def test_a_cache_announcing_931_gib_is_unusable_not_a_memory_error(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.DATA_ENV, str(tmp_path))
    cache = tmp_path / "mnist" / "mnist.npz"
    cache.parent.mkdir()
    with zipfile.ZipFile(cache, "w") as archive:
        archive.writestr("train_images.npy", npy_header((10**6, 10**6)) + bytes(100))  # 10**12 bytes = 931 GiB
        for name, shape in (("train_labels", (60000,)), ("test_images", (10000, 28, 28)), ("test_labels", (10000,))):
            archive.writestr(f"{name}.npy", npy_header(shape) + bytes(math.prod(shape)))
    outcome, peak = peak_bytes(mnist, download=False)
    assert isinstance(outcome, FileNotFoundError), repr(outcome)
    assert "unusable" in str(outcome) and str(10**12) in str(outcome)
    assert peak < 64 * MIB


def gzip_bomb(inflated_mib: int, head: bytes = b"") -> bytes:
    """``head`` and then ``inflated_mib`` MiB of zeros, gzip-compressed about 1000:1 (one member repeated)."""
    member = gzip.compress(bytes(16 * MIB), compresslevel=9)
    return gzip.compress(head) + member * (inflated_mib // 16)


def test_gunzip_stops_at_its_bound():
    bomb = gzip_bomb(512)
    assert len(bomb) < 1 * MIB
    outcome, peak = peak_bytes(file_formats.gunzip, bomb, "bomb.gz", max_bytes=4 * MIB)
    assert isinstance(outcome, ValueError) and "inflates to more than 4194304 bytes" in str(outcome)
    assert peak < 32 * MIB


def test_an_mnist_gzip_bomb_in_the_root_folder_is_refused_without_inflating_it(tmp_path):
    """A 0.5 MB labels file that inflates to 512 MiB: read past its header only as far as MNIST's size allows."""
    rng = np.random.default_rng(0)
    write_idx(tmp_path / f"{MNIST_NAMES['test'][0]}.gz", rng.integers(0, 256, (3, 28, 28)), compress=True)
    header = bytes([0, 0, 0x08, 1]) + struct.pack(">i", 3)  # 3 labels announced; 512 MiB follow
    (tmp_path / f"{MNIST_NAMES['test'][1]}.gz").write_bytes(gzip_bomb(512, header))
    outcome, peak = peak_bytes(mnist, root=tmp_path, train=False)
    assert isinstance(outcome, ValueError) and "3 bytes of data, but the file holds more" in str(outcome), repr(outcome)
    assert peak < 32 * MIB


def test_an_idx_header_announcing_more_than_mnist_is_refused_before_reading(tmp_path):
    """A sparse 4 GiB images file whose header announces 5,000,000 images: MNIST's training split has 60,000."""
    images = tmp_path / MNIST_NAMES["train"][0]
    with open(images, "wb") as handle:
        handle.write(bytes([0, 0, 0x08, 3]) + struct.pack(">3i", 5_000_000, 28, 28))
        handle.truncate(4 * 2**30)
    write_idx(tmp_path / MNIST_NAMES["train"][1], np.zeros(5_000_000 % 7, np.uint8))
    outcome, peak = peak_bytes(mnist, root=tmp_path)
    assert isinstance(outcome, ValueError) and "header is corrupt" in str(outcome), repr(outcome)
    assert str(60000 * 784) in str(outcome)
    assert peak < 16 * MIB


def test_a_64_gib_sparse_cifar_batch_is_refused_before_reading(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "test_batch", "wb") as handle:
        handle.write(python2_pickle({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}))
        handle.truncate(64 * 2**30)
    outcome, peak = peak_bytes(cifar, tmp_path, train=False)
    assert isinstance(outcome, ValueError) and str(64 * 2**30) in str(outcome), repr(outcome)
    assert "more than the" in str(outcome)
    assert peak < 16 * MIB


def test_a_cifar_batch_with_more_images_than_the_data_set_is_refused(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "test").write_bytes(python2_pickle({b"data": np.zeros((10001, 3072), np.uint8),
                                                   b"fine_labels": [0] * 10001}))
    with pytest.raises(ValueError, match="10001 images, more than the 10000"):
        cifar(tmp_path, "cifar100", train=False)


def test_a_download_larger_than_its_file_can_be_is_cut_off(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "archive.gz").write_bytes(bytes(3 * MIB))
    with local_server(served) as (url, _):
        with pytest.raises(ValueError, match=f"sent more than {MIB} bytes"):
            fetch.download(url + "archive.gz", tmp_path / "archive.gz", "md5", md5(served / "archive.gz"),
                           max_bytes=MIB)
        assert not list(tmp_path.glob("archive.gz*")), "neither the target nor the partial file is left"
        fetched = fetch.download(url + "archive.gz", tmp_path / "archive.gz", "md5", md5(served / "archive.gz"),
                                 max_bytes=3 * MIB)
    assert fetched.read_bytes() == bytes(3 * MIB)


def test_read_idx_reports_a_missing_file_as_missing_not_as_bad_gzip(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_formats.read_idx(tmp_path / "absent", max_bytes=MIB)


def test_cifar_name_is_checked_by_type_and_value(tmp_path):
    with pytest.raises(TypeError, match="name must be one of the strings"):
        cifar(tmp_path, name=["cifar10"])
    with pytest.raises(ValueError, match=r"name must be one of \('cifar10', 'cifar100'\), got 'CIFAR10'"):
        cifar(tmp_path, name="CIFAR10")


def test_a_symlink_loop_as_data_root_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.DATA_ENV, str(tmp_path / "cache"))
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(FileNotFoundError, match="symbolic-link loop") as error:
        mnist(root=loop, download=False)
    assert str(loop) in str(error.value)
    with pytest.raises(FileNotFoundError, match="symbolic-link loop"):
        cifar(loop, train=False)


# --- obscure errors made clear -----------------------------------------------------------------------------------

SCORES = [torch.tensor([0.3, 0.1, 0.9, 0.5]), torch.tensor([0.2, 0.8, 0.4])]


@pytest.mark.parametrize("count", [np.int64(4), np.int32(4), torch.tensor(4), 4])
def test_select_nodes_takes_numpy_and_torch_counts(count):
    """Oracle: the 4 highest of all 7 scores (0.9, 0.8, 0.5, 0.4) are kept."""
    masks = pruning.select_nodes(SCORES, scope="global", keep=count)
    assert [m.tolist() for m in masks] == [[False, False, True, True], [False, True, True]]


def test_select_nodes_layerwise_numpy_counts():
    masks = pruning.select_nodes(SCORES, keep=np.array([1, 2]))
    assert [m.tolist() for m in masks] == [[False, False, True, False], [False, True, True]]
    assert [m.tolist() for m in pruning.select_nodes(SCORES, keep=[np.int64(1), np.int64(2)])] == \
        [m.tolist() for m in masks]


@pytest.mark.parametrize("keep, error, message", [(2.5, TypeError, "keep must be a whole number"),
                                                  (True, TypeError, "keep must be a whole number"),
                                                  ("3", TypeError, "keep must be a whole number"),
                                                  (0, ValueError, r"keep must be a whole number in \[1, 7\]"),
                                                  ([1, 2, 3], ValueError, "one total count")])
def test_select_nodes_refuses_bad_counts_clearly(keep, error, message):
    with pytest.raises(error, match=message):
        pruning.select_nodes(SCORES, scope="global", keep=keep)


def draw_bar(value):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.bar([0], [value])
    return fig


@pytest.mark.parametrize("arguments, error, message", [
    ({"name": 3}, TypeError, "name must be a string"),
    ({"name": None}, TypeError, "name must be a string"),
    ({"start": 1.5}, TypeError, "start must be a whole number indexing values"),
    ({"start": "1"}, TypeError, "start must be a whole number indexing values"),
    ({"start": 5}, ValueError, "start must index values"),
    ({"draw": None}, TypeError, "draw must be a function"),
    ({"draw": lambda value: None}, TypeError, r"draw\(0.0\) must return a matplotlib Figure, got NoneType"),
    ({"format_value": "{:.2f}"}, TypeError, "format_value must be a function"),
    ({"dpi": 0}, ValueError, "dpi must be a whole number >= 1"),
    ({"values": 3}, TypeError, "values must be a sequence")])
def test_slider_arguments_are_checked_by_name(arguments, error, message):
    call = {"draw": draw_bar, "values": [0.0, 0.5], "name": "height", "live": False, **arguments}
    with pytest.raises(error, match=message):
        frame_slider(**call)
    plt.close("all")


@pytest.mark.parametrize("arguments, error, message", [
    ({"name": b"x"}, TypeError, "name must be a string"),
    ({"compute": lambda value: "figure"}, TypeError, r"compute\(0.0\) must return a matplotlib Figure, got str"),
    ({"start": 0.0}, TypeError, "start must be a whole number")])
def test_live_control_arguments_are_checked_by_name(arguments, error, message):
    call = {"compute": draw_bar, "values": [0.0, 0.5], "name": "height", "live": False, **arguments}
    with pytest.raises(error, match=message):
        live_control(**call)
    plt.close("all")


def test_slider_html_and_static_frame_check_name_and_start():
    frame = figure_png(draw_bar(0.5), dpi=20)
    with pytest.raises(TypeError, match="name must be a string"):
        slider_html([frame], ["a"], 7)
    with pytest.raises(TypeError, match="start must be a whole number"):
        slider_html([frame, frame], ["a", "b"], "x", start=0.5)
    with pytest.raises(TypeError, match="name must be a string"):
        static_frame_html(frame, ["a"], ["x"])
    assert slider_html([frame, frame], ["a", "b"], "x", start=np.int64(1)) == \
        slider_html([frame, frame], ["a", "b"], "x", start=1)


class BatchIndexing(nn.Module):
    """Swaps the first two samples of the batch: the partition of one sample depends on another."""

    def __init__(self, n_features):
        super().__init__()
        self.hidden, self.out = nn.Linear(n_features, n_features), nn.Linear(n_features, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)[[1, 0]]))


class BatchReshape(nn.Module):
    """Reshapes by the feature count: its forward works only for a batch of exactly as many samples as features."""

    def __init__(self, n_features):
        super().__init__()
        self.hidden, self.out = nn.Linear(n_features, n_features), nn.Linear(n_features, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)).view(x.shape[1], x.shape[0]))


@pytest.mark.parametrize("model_class", [BatchIndexing, BatchReshape])
def test_batch_mixing_on_a_two_feature_input_is_refused_by_name(model_class):
    """Before: BatchIndexing gave RuntimeError "shape '[-1, 3, 2]' is invalid", BatchReshape a silent partition."""
    torch.manual_seed(0)
    with pytest.raises((TypeError, ValueError), match="batch dimension|cannot take inputs of shape"):
        partition2d(model_class(2))
