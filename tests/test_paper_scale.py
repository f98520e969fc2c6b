"""PAPER_SCALE's code path, run: the paper's networks with their recipes on CIFAR-format files this test writes.

Chapters 3 and 4 train AlexNet-, VGG-16- and PreResNet-101-style networks on local CIFAR-10/100 files when
``PAPER_SCALE = True``. Here the same calls (``recipes.paper_recipe``, ``data.cifar``, ``eb_training.train_dense`` and
``eb_training.compare``) run for two epochs on a handful of synthetic images in the real files' layout, so a reader
with a GPU and the data gets a run, or a clear error before training where a method does not apply.
"""
import dataclasses
import pickle

import numpy as np
import pytest
import torch

import spline_utils as su
from spline_utils import data
from spline_utils.training import recipes
from spline_utils.experiments import eb_training

IMAGES_PER_CLASS = 1


#: The published archives' folders and batch files (written here, not read from the package under test).
LAYOUT = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
          "cifar100": ("cifar-100-python", ["train", "test"])}


def write_cifar(root, name, n_classes, seed=0):
    """The standard python-pickle batches: dicts with b"data" uint8 (n, 3072) and b"labels" / b"fine_labels"."""
    generator = np.random.default_rng(seed)
    folder = root / LAYOUT[name][0]
    folder.mkdir(parents=True, exist_ok=True)
    for file in LAYOUT[name][1]:
        labels = np.repeat(np.arange(n_classes), IMAGES_PER_CLASS)
        batch = {b"batch_label": file.encode(), b"data": generator.integers(0, 256, (len(labels), 3072), np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(len(labels))]}
        if name == "cifar10":
            batch[b"labels"] = labels.tolist()
        else:
            batch[b"fine_labels"], batch[b"coarse_labels"] = labels.tolist(), (labels // 5).tolist()
        with open(folder / file, "wb") as handle:
            pickle.dump(batch, handle)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar(root, "cifar10", 10)
    write_cifar(root, "cifar100", 100)
    return root


def paper_split(root, recipe, n_train, n_test):
    train_x, train_y = data.cifar(root, recipe.dataset, train=True)
    test_x, test_y = data.cifar(root, recipe.dataset, train=False)
    return eb_training.Split(train_x[:n_train], train_y[:n_train], test_x[:n_test], test_y[:n_test])


@pytest.mark.parametrize("network", ["alexnet", "vgg16", "preresnet101"])
def test_chapter3_paper_runs(cifar_root, network):
    """Chapter 3: train_dense with the spline and mask detectors, the recipe scaled to two epochs."""
    recipe = recipes.paper_recipe(network).scaled(2)
    split = paper_split(cifar_root, recipe, 2, 2)
    assert split.input_shape == (3, 32, 32)
    canvas = su.image_canvas(split.test_x[0], split.test_x[1])  # the chapter's probe sets, two points each
    probes = {"train": split.train_x, "test": split.test_x,
              "random": torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
              "canvas": canvas(su.grid_points((0, 1, 0, 1), 2)[2][:2]).float()}
    run = eb_training.train_dense(recipe.build_model(0), split, recipe, ratios=(0.5,), probe=probes)
    assert len(run.epoch_losses) == 2 and np.isfinite(run.epoch_losses).all()
    assert 0.0 <= run.accuracy <= 1.0
    assert run.spline_distances.shape == (2, 2)
    assert sorted(run.states) == [0, 1, 2]


def test_chapter4_paper_comparison_on_vgg16(cifar_root):
    """Chapter 4: every method of the comparison on VGG-16 / CIFAR-100, two epochs, one seed and ratio."""
    recipe = recipes.paper_recipe("vgg16")
    recipe = dataclasses.replace(recipe, epochs=2, finetune_epochs=1)
    split = paper_split(cifar_root, recipe, 2, 2)
    rows = eb_training.compare(recipe.build_model, split, seeds=(0,), ratios=(0.5,), recipe=recipe, probe_size=2)
    assert {row["method"] for row in rows} == set(eb_training.METHODS)
    dense = next(row for row in rows if row["method"] == "dense")
    for row in rows:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["flops"] > 0
        if row["method"] != "dense":
            assert row["parameters"] < dense["parameters"]


def test_comparison_refuses_preresnet_before_training(cifar_root, monkeypatch):
    """Node surgery does not apply to PreResNet-101 (not an nn.Sequential): a clear error, and no epoch is wasted."""
    recipe = recipes.paper_recipe("preresnet101").scaled(2)
    split = paper_split(cifar_root, recipe, 2, 2)
    monkeypatch.setattr(eb_training, "train_dense", lambda *args, **kwargs: pytest.fail("trained before refusing"))
    with pytest.raises(TypeError, match="node surgery needs an nn.Sequential.*PreActResNet"):
        eb_training.compare(recipe.build_model, split, seeds=(0,), ratios=(0.5,), recipe=recipe, probe_size=2)
