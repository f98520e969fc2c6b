"""Benchmark of the exact partition engine: regions per second and seconds per partition.

Seeded, default-initialized MLPs (hidden layers only, ReLU after each) on [-1, 1]^2, and the paper's small CNN
(trained briefly on the offline digits so its partition is realistic) on the slice a * image0 + b * image1; the graph
engine on the book's PreAct ResNet (narrow, untrained) on a window of that slice and on a conv-BN-ReLU-MaxPool CNN.
Each case runs at least REPEATS times (fast ones until their runs add up to MIN_SECONDS); the median is reported,
and the first (cold) run on its own: the first partitions in a
process pay for the operating system's setup of fresh memory (the CNN slice allocates ~1.6 GB), later ones reuse it.
MLPs are compared with edge subdivision (Berzins, ICML 2023) on the same seeded weights, timed on this project's
2-core machine by the issue that set the targets (its code is not part of this project).
Usage: ``python benchmarks/bench_partition.py [--repeats 7]``.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import spline_utils as su
from spline_utils import data
from spline_utils.training import nets, train

MLP_WIDTHS = [(2, 16, 16, 16), (2, 32, 32, 32), (2, 64, 64), (2, 64, 64, 64), (2, 128, 128), (2, 256, 256)]
EDGE_SUBDIVISION_SECONDS = {(2, 16, 16, 16): 0.029, (2, 32, 32, 32): 0.061, (2, 64, 64): 0.113,
                            (2, 64, 64, 64): 0.219, (2, 128, 128): 0.484, (2, 256, 256): 6.3}
SPEEDUP_TARGETS = {(2, 16, 16, 16): 5.0, (2, 32, 32, 32): 5.0}  # times faster than edge subdivision
SECONDS_TARGETS = {(2, 64, 64, 64): 0.15, (2, 256, 256): 3.0}
CNN_REGIONS_PER_SECOND_TARGET = 75_000
MIN_SECONDS = 2.0  # fast cases repeat until their runs add up to this
MAX_REPEATS = 301


def time_partition(model, bounds, plane, repeats):
    """Median and first-run seconds, and the last partition: at least ``repeats`` runs, and for fast cases as many
    as fill :data:`MIN_SECONDS` (up to :data:`MAX_REPEATS`), so that millisecond timings are not one noisy sample."""
    seconds, partition = [], None
    while len(seconds) < repeats or (sum(seconds) < MIN_SECONDS and len(seconds) < MAX_REPEATS):
        started = time.perf_counter()
        partition = su.partition2d(model, bounds, plane=plane)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), seconds[0], partition


def verdict(median: float, n_regions: int, widths=None) -> str:
    """'ok' or 'MISSED' against the case's target, with the target; empty where it has none."""
    if widths in SPEEDUP_TARGETS:
        target = SPEEDUP_TARGETS[widths]
        return f"{'ok' if EDGE_SUBDIVISION_SECONDS[widths] / median >= target else 'MISSED'} >={target:g}x edge"
    if widths in SECONDS_TARGETS:
        target = SECONDS_TARGETS[widths]
        return f"{'ok' if median <= target else 'MISSED'} <={target:g}s"
    if widths == "cnn":
        target = CNN_REGIONS_PER_SECOND_TARGET
        return f"{'ok' if n_regions / median >= target else 'MISSED'} >={target // 1000}k/s"
    return ""


def cnn_case():
    """The paper's CNN after 3 epochs on the digits, on the whole 6-9 canvas: (model, bounds, plane)."""
    images, labels = data.digits()
    model = nets.small_cnn(seed=0)
    train.fit(model, images, labels, epochs=3, lr=0.05, momentum=0.9, batch_size=128, seed=0)
    six, nine = images[labels == 6][0], images[labels == 9][0]
    return model, (0, 1, 0, 1), su.image_canvas(six, nine)


def residual_case(six, nine):
    """The book's PreAct ResNet (narrow, untrained, seeded) on a window of the 6-9 canvas: (model, bounds, plane)."""
    return nets.preact_resnet(widths=(4, 8, 16), seed=0), (0.45, 0.55, 0.45, 0.55), su.image_canvas(six, nine)


def max_pool_cnn(seed: int = 0) -> torch.nn.Sequential:
    """conv-BN-ReLU-MaxPool2d(2) twice, then a linear classifier (28x28 inputs)."""
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(6, 6, 5), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(6 * 4 * 4, 10)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"# partition2d benchmark: median of at least {args.repeats} runs (fast cases: {MIN_SECONDS:g} s of runs) and "
          "the first run; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| {'network':<32} | {'regions':>8} | {'median s':>9} | {'first s':>8} | {'regions/s':>10} | "
          f"{'edge subdiv. s':>14} | {'speed-up':>8} | target |")
    print(f"|{'-' * 34}|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 12}|{'-' * 16}|{'-' * 10}|--------|")
    cases = [(f"MLP {'-'.join(map(str, w))}", lambda w=w: (nets.mlp(w, final_activation=True, seed=0),
                                                           (-1, 1, -1, 1), None), w) for w in MLP_WIDTHS]
    images, labels = data.digits()
    six, nine = images[labels == 6][0], images[labels == 9][0]
    cases.append(("paper CNN, slice 6-9 (digits)", cnn_case, "cnn"))
    cases.append(("PreActResNet 4-8-16, 6-9 window", lambda: residual_case(six, nine), None))
    cases.append(("MaxPool CNN, 6-9 window", lambda: (max_pool_cnn(), (0.45, 0.55, 0.45, 0.55),
                                                      su.image_canvas(six, nine)), None))
    for name, build, key in cases:  # built just before it is timed: the MLPs run before the CNN is trained
        model, bounds, plane = build()
        median, first, partition = time_partition(model, bounds, plane, args.repeats)
        edge = EDGE_SUBDIVISION_SECONDS.get(key)
        edge_columns = f"{edge:>14.3f} | {edge / median:>7.1f}x" if edge else f"{'':>14} | {'':>8}"
        print(f"| {name:<32} | {partition.num_regions:>8} | {median:>9.3f} | {first:>8.3f} | "
              f"{partition.num_regions / median:>10.0f} | {edge_columns} | {verdict(median, partition.num_regions, key)} |",
              flush=True)


if __name__ == "__main__":
    main()
