"""Chapter 4's Fig 6 helpers: pruning one layer without retraining, every subset of kept nodes, and the figures."""
import itertools

import matplotlib.pyplot as plt
import numpy as np
import torch

import spline_utils as su
from spline_utils.pruning import spline_criterion as sp
from spline_utils.training import nets, train
from spline_utils.experiments import spline_policy as policy

BOUNDS = (-3.0, 3.0, -3.0, 3.0)


def _net_and_data():
    net = nets.mlp((2, 3, 4, 2), seed=0)
    x = torch.rand(200, 2) * 6 - 3
    return net, x, (x[:, 0] > 0).long()


def test_pruning_a_layer_equals_zeroing_its_outgoing_weights():
    net, x, _ = _net_and_data()
    keep = np.array([True, False, True, False])
    zeroed = policy.double_copy(net)
    with torch.no_grad():
        zeroed[4].weight[:, ~torch.from_numpy(keep)] = 0.0  # the oracle: removed nodes contribute nothing
        expected = zeroed(x.double())
        got = policy.prune_layer(policy.double_copy(net), 1, keep)(x.double())
    torch.testing.assert_close(got, expected)


def test_subset_accuracies_cover_every_choice_once():
    net, x, y = _net_and_data()
    subsets = policy.subset_accuracies(net, 1, x, y)
    assert sorted(subsets) == [1, 2, 3, 4]
    for n, (chosen, accuracies) in subsets.items():
        assert [tuple(c) for c in chosen] == list(itertools.combinations(range(4), n))
        assert accuracies.shape == (len(chosen),)
    assert subsets[4][1][0] == train.accuracy(net, x, y)  # keeping all nodes is the network itself
    keep = np.isin(np.arange(4), subsets[2][0][3])
    assert subsets[2][1][3] == policy.accuracy_keeping(net, 1, keep, x, y)


def test_fig6_figure_and_frames_fit_the_column():
    net, x, y = _net_and_data()
    partition = su.partition2d(net, BOUNDS)
    distance = sp.spline_distances(net, "parameter")[1]
    data_distance = sp.spline_distances(net, "data", probe=x)[1]
    threshold = sp.threshold_for_groups(distance, 2)
    groups = sp.spline_groups(distance, threshold)
    keep = sp.group_representatives(distance, groups)
    pruned = su.partition2d(policy.prune_layer(net, 1, keep), BOUNDS)
    subsets = policy.subset_accuracies(net, 1, x, y)
    figures = [policy.fig6_figure(partition, pruned, distance, 0, groups, threshold, BOUNDS),
               policy.teaser_figure(partition, pruned, distance, 0, BOUNDS),
               policy.reference_frame(partition, distance, data_distance, 1, BOUNDS, threshold),
               policy.threshold_frame(pruned, partition, threshold, keep, 0.9, subsets, {2: 0.9}, BOUNDS)]
    for fig in figures:
        assert fig.get_size_inches()[0] == 8.0  # the 800-px column
        plt.close(fig)
