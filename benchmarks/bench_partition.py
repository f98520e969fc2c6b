"""Benchmark of the exact partition engine: regions per second and seconds per partition.

Seeded, default-initialized MLPs (hidden layers only, ReLU after each) on [-1, 1]^2, and the paper's small CNN
(trained briefly on the offline digits so its partition is realistic) on the slice a * image0 + b * image1; the graph
engine on the book's PreAct ResNet (narrow, untrained) on a window of that slice and on a conv-BN-ReLU-MaxPool CNN.
Each case runs REPEATS times; the median is reported. Usage: ``python benchmarks/bench_partition.py [--repeats 5]``.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import spline_utils as su
from spline_utils import data, nets, train

MLP_WIDTHS = [(2, 16, 16, 16), (2, 32, 32, 32), (2, 64, 64), (2, 64, 64, 64), (2, 128, 128), (2, 256, 256)]
TARGETS = {(2, 64, 64, 64): 0.15, (2, 256, 256): 3.0}


def time_partition(model, bounds, plane, repeats):
    seconds, partition = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        partition = su.partition2d(model, bounds, plane=plane)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), min(seconds), partition


def cnn_case():
    images, labels = data.digits()
    model = nets.small_cnn(seed=0)
    train.fit(model, images, labels, epochs=3, lr=0.05, momentum=0.9, batch_size=128, seed=0)
    six, nine = images[labels == 6][0], images[labels == 9][0]
    return model, su.image_canvas(six, nine)


def residual_case(six, nine):
    """The book's PreAct ResNet (narrow, untrained, seeded) on a window of the 6-9 canvas."""
    return nets.preact_resnet(widths=(4, 8, 16), seed=0), su.image_canvas(six, nine), (0.45, 0.55, 0.45, 0.55)


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
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"# partition2d benchmark: median of {args.repeats} runs; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| {'network':<32} | {'regions':>8} | {'median s':>9} | {'best s':>7} | {'regions/s':>10} | target |")
    print(f"|{'-' * 34}|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 12}|--------|")
    cases = [(f"MLP {'-'.join(map(str, w))}", nets.mlp(w, final_activation=True, seed=0), (-1, 1, -1, 1), None,
              TARGETS.get(w)) for w in MLP_WIDTHS]
    cnn, plane = cnn_case()
    cases.append(("paper CNN, slice 6-9 (digits)", cnn, (0, 1, 0, 1), plane, None))
    images, labels = data.digits()
    six, nine = images[labels == 6][0], images[labels == 9][0]
    resnet, resnet_plane, resnet_bounds = residual_case(six, nine)
    cases.append(("PreActResNet 4-8-16, 6-9 window", resnet, resnet_bounds, resnet_plane, None))
    cases.append(("MaxPool CNN, 6-9 window", max_pool_cnn(), (0.45, 0.55, 0.45, 0.55), su.image_canvas(six, nine),
                  None))
    for name, model, bounds, plane, target in cases:
        median, best, partition = time_partition(model, bounds, plane, args.repeats)
        verdict = "" if target is None else ("ok" if median <= target else "MISSED") + f" {target:g}s"
        print(f"| {name:<32} | {partition.num_regions:>8} | {median:>9.3f} | {best:>7.3f} | "
              f"{partition.num_regions / median:>10.0f} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
