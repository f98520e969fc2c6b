"""Draw the landing page's picture, ``book/_static/landing-partition.png``: a trained 2-16-16-2 ReLU network's exact
input-space partition with its two layers of splines and its decision boundary.

Run once after a change to the picture (seeded, so the result is reproducible): ``python tools/landing_figure.py``.
The PNG is committed; the book build does not run this script.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from spline_utils import data, partition2d, plot  # noqa: E402
from spline_utils.training import nets, train  # noqa: E402


OUTPUT = Path(__file__).resolve().parents[1] / "book" / "_static" / "landing-partition.png"
BOUNDS = (-4.2, 4.2, -2.4, 2.4)  # wider than tall: a banner over the disk task's [-3, 3]^2
WIDTHS = (2, 16, 16, 2)
SEED = 0
MAX_BYTES = 300_000


def draw(output: Path = OUTPUT, dpi: int = 110) -> dict:
    """Train the network and draw its exact partition to ``output`` (PNG).

    Returns
    -------
    dict
        ``regions`` (int, regions of the partition), ``accuracy`` (float, on the training points), ``bytes`` (int,
        size of the PNG; above ``MAX_BYTES`` it raises ``RuntimeError`` saying to lower ``dpi``).
    """
    x, y = data.disk_task(n_samples=3000, centre=(0.0, 0.0), radius=1.6, seed=SEED)
    model = nets.mlp(WIDTHS, seed=SEED)
    train.fit(model, x, y, epochs=100, lr=0.05, momentum=0.9, batch_size=128, seed=SEED)
    model.eval()
    partition = partition2d(model, bounds=BOUNDS)
    fig, ax = plt.subplots(figsize=(8.4, 4.8))
    colours = plot.region_colours(partition.num_regions, seed=SEED, saturation=0.2)  # pale: the lines stand out
    plot.draw_regions(ax, partition.polygons, colours, edgecolor="white", linewidth=0.4)
    plot.draw_layer_splines(ax, partition, 0, color=plot.SPLINE_BLUE, linewidth=1.0)
    plot.draw_layer_splines(ax, partition, 1, color=plot.LAYER2_GREEN, linewidth=1.2)
    plot.draw_boundary(ax, partition, linewidth=2.6)
    plot.setup_axes(ax, BOUNDS)
    ax.set_axis_off()
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    fig.savefig(output, dpi=dpi)
    plt.close(fig)
    size = output.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{output.name} is {size} bytes; lower dpi to keep it under {MAX_BYTES}")
    return {"regions": partition.num_regions, "accuracy": train.accuracy(model, x, y), "bytes": size}


if __name__ == "__main__":
    torch.set_num_threads(1)  # small matrices: one thread is fastest and leaves the other cores alone
    print(draw())
