"""The benchmark's cases and the worker that times one of them in its own process.

A case is a model (seeded; the image networks trained briefly on the offline digits so their partitions are
realistic) and a method: ``ours`` calls ``partition2d`` on the model as built (a plain ``nn.Sequential`` goes through
the fast Sequential reader), ``ours-wrapped`` on the same module wrapped in :class:`ForwardWrapper` (forces the
torch.fx reader), ``regioncam`` runs the PyPI package regioncam on the same float32 weights.
``bench_partition.py`` starts ``python benchmarks/cases.py CASE_JSON RESULT_JSON ...`` (see :func:`main`) once per
case and reads the JSON it writes.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch
from torch import nn

import spline_utils as su
from spline_utils import data
from spline_utils.data import mnist_loader as mnist
from spline_utils.training import nets, train

try:
    import regioncam
except ImportError:  # a benchmark-only package (make bench-deps): without it the parent skips the regioncam cases
    regioncam = None

MLP_WIDTHS = {"2-16-16-16": (2, 16, 16, 16), "2-32-32-32": (2, 32, 32, 32), "2-64-64": (2, 64, 64),
              "2-64-64-64": (2, 64, 64, 64), "2-32x5": (2, 32, 32, 32, 32, 32), "2-128-128": (2, 128, 128),
              "2-256-256": (2, 256, 256)}
MLP_BOUNDS = (-1.0, 1.0, -1.0, 1.0)  # regioncam.Regioncam(size=1) partitions this same square
CANVAS_BOUNDS = (0.0, 1.0, 0.0, 1.0)  # the full canvas a * six + b * nine
SIX, NINE = 6, 9
# a case's time budget counts from its process's start (before torch was imported), as the parent's timer does
PROCESS_STARTED = time.monotonic() - (time.time() - psutil.Process().create_time())


@dataclass(frozen=True)
class Case:
    """One timed call, repeated: ``model`` (a key of :data:`MODELS` or ``mlp:<key of MLP_WIDTHS>``) through
    ``method``, killed after ``timeout_s``."""

    name: str
    model: str
    method: str  # "ours", "ours-wrapped", "regioncam"; "prepare" trains and saves an image network's weights;
    # "baseline" only imports (the interpreter's own memory and thread pools)
    timeout_s: float
    repeats: int  # at least this many runs (fast cases: until MIN_SECONDS of runs)


class ForwardWrapper(nn.Module):
    """A module whose forward calls the wrapped model: the same weights, but not a plain Sequential, so
    ``partition2d`` reads it with the torch.fx tracer."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


def practitioner_cnn(seed: int = 0) -> nn.Sequential:
    """The issue's practitioner CNN: Conv2d(1,4,5)-ReLU-Conv2d(4,4,5)-ReLU-Flatten-Linear(1600,10), 28x28 inputs."""
    with nets.seeded(seed):
        return nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Conv2d(4, 4, 5), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 20 * 20, 10))


def max_pool_cnn(seed: int = 0) -> nn.Sequential:
    """conv-BN-ReLU-MaxPool2d(2) twice, then a linear classifier (28x28 inputs): needs the graph path (MaxPool)."""
    with nets.seeded(seed):
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(6 * 4 * 4, 10))


# name -> (builder, image side): trained 3 epochs on the offline digits at that side, partitioned on the full canvas
# through a six and a nine at that side.
MODELS = {
    "paper-cnn": (lambda: nets.small_cnn(seed=0), 28),
    "practitioner-cnn": (practitioner_cnn, 28),
    "preact-resnet": (lambda: nets.preact_resnet(widths=(8, 16, 32), seed=0), 16),  # chapter 3's ResNet, 16x16
    "maxpool-cnn": (max_pool_cnn, 28),
}


def canvas_images(side: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The first six and the first nine of MNIST's test set if the cache holds real MNIST (never downloads), else of
    the offline digits; at ``side`` x ``side``. Returns (six, nine, where they came from)."""
    try:
        images, labels = mnist.mnist(train=False, download=False)
        source = "MNIST test set (cache)"
    except FileNotFoundError:
        images, labels = data.digits()
        source = "offline digits (scikit-learn)"
    if side != images.shape[-1]:
        images = torch.nn.functional.interpolate(images, size=(side, side), mode="area")
    return images[labels == SIX][0], images[labels == NINE][0], source


def trained_model(name: str, weights_dir: Path) -> nn.Module:
    """The model ``name`` of :data:`MODELS` after 3 seeded epochs on the offline digits (SGD as the book's recipe for
    the paper CNN), in eval mode. Its weights are saved to ``weights_dir`` the first time, so every case of one bench
    run partitions the very same weights and pays for training once."""
    build, side = MODELS[name]
    model = build()
    cached = weights_dir / f"{name}.pt"
    if cached.exists():
        model.load_state_dict(torch.load(cached))
    else:
        images, labels = data.digits(size=side)
        train.fit(model, images, labels, epochs=3, lr=0.05, momentum=0.9, batch_size=128, seed=0)
        torch.save(model.state_dict(), cached)
    model.eval()
    if not all(torch.isfinite(p).all() for p in model.state_dict().values() if p.is_floating_point()):
        raise RuntimeError(f"training {name} diverged (non-finite weights)")
    return model


def regioncam_regions(layers: list[tuple]) -> int:
    """Partition ``MLP_BOUNDS`` with regioncam: its ``linear`` takes ``x @ weight + bias`` with float32 ``weight`` of
    shape (in, out); a ReLU after every layer, as in the MLPs here. Returns its number of faces (regions)."""
    camera = regioncam.Regioncam(size=1.0)
    for weight, bias in layers:
        camera.linear(weight, bias)
        camera.relu()
    return camera.num_faces


def timed_runs(call, repeats: int, min_seconds: float, deadline: float) -> tuple[list[float], object]:
    """Seconds of successive calls, and the last call's result: at least ``repeats`` (fast cases until their runs
    add up to ``min_seconds``, at most 301 runs), but no new run once another one would likely end after
    ``deadline`` (a ``time.monotonic()`` value)."""
    seconds: list[float] = []
    while True:
        result = None  # the previous call's result is freed first: peak memory is that of one call
        started = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - started)
        enough = len(seconds) >= repeats and (sum(seconds) >= min_seconds or len(seconds) >= 301)
        if enough or time.monotonic() + max(seconds) > deadline:
            return seconds, result


def thread_settings() -> dict:
    """torch's thread counts and every native thread pool threadpoolctl sees (OpenBLAS, OpenMP, MKL)."""
    from threadpoolctl import threadpool_info

    pools = [f"{pool.get('internal_api')} {pool.get('version')} {pool.get('threading_layer', '')} "
             f"num_threads={pool.get('num_threads')} ({Path(pool.get('filepath', '')).name})"
             for pool in threadpool_info()]
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "pools": pools,
            "env": {key: os.environ[key] for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                      "RAYON_NUM_THREADS") if key in os.environ}}


def apply_thread_settings(torch_threads: int, blas_threads: int):
    """Set torch's intra-op threads and limit the native BLAS/OpenMP pools, where asked (0: library default)."""
    if torch_threads:
        torch.set_num_threads(torch_threads)
    if blas_threads:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=blas_threads)  # kept alive by the caller
    return None


def measure(case: Case, weights_dir: Path, min_seconds: float) -> dict:
    """Build the case's model and time its method; the dict written as the case's JSON.

    Repeated calls stop early when another one would likely end after 80% of the case's time budget, counted from
    this process's start (so a slow case still reports its first call instead of being killed).
    """
    if case.method == "baseline":
        return {"threads": thread_settings()}
    if case.method == "prepare":
        trained_model(case.model, weights_dir)
        return {"prepared": case.model}
    if case.model.startswith("mlp:"):
        model = nets.mlp(MLP_WIDTHS[case.model[4:]], final_activation=True, seed=0).eval()
        bounds, plane, source = MLP_BOUNDS, None, ""
    else:
        model = trained_model(case.model, weights_dir)
        six, nine, source = canvas_images(MODELS[case.model][1])
        bounds, plane = CANVAS_BOUNDS, su.image_canvas(six, nine)
    deadline = PROCESS_STARTED + 0.8 * case.timeout_s
    if case.method == "regioncam":
        linears = [module for module in model if isinstance(module, nn.Linear)]
        layers = [(layer.weight.detach().float().T.contiguous().numpy(), layer.bias.detach().float().numpy())
                  for layer in linears]
        seconds, regions = timed_runs(lambda: regioncam_regions(layers), case.repeats, min_seconds, deadline)
        return {"regions": int(regions), "seconds": seconds}
    subject = ForwardWrapper(model) if case.method == "ours-wrapped" else model
    try:
        caps = {} if plane is None else {"max_regions": CANVAS_MAX_REGIONS}  # full canvases may pass the default cap
        seconds, partition = timed_runs(lambda: su.partition2d(subject, bounds, plane=plane, **caps), case.repeats,
                                        min_seconds, deadline)
    except su.PartitionTooLarge as error:
        return {"refused": str(error), "canvas": source}
    return {"regions": int(partition.num_regions), "seconds": seconds, "result_type": type(partition).__name__,
            "canvas": source}


CANVAS_MAX_REGIONS = 2_000_000  # the full canvases are measured against the memory budget (max_bytes), not the region cap


def main() -> None:
    """``python cases.py CASE_JSON RESULT_JSON WEIGHTS_DIR MIN_SECONDS TORCH_THREADS BLAS_THREADS``."""
    case_json, result_path, weights_dir, min_seconds, torch_threads, blas_threads = sys.argv[1:7]
    case = Case(**json.loads(case_json))
    limits = apply_thread_settings(int(torch_threads), int(blas_threads))
    try:
        result = measure(case, Path(weights_dir), float(min_seconds))
    except Exception as error:  # reported in the table as "error: ...", with the traceback on stderr
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    del limits
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
