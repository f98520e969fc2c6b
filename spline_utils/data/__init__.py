"""Data: the paper's toy 2-D tasks, offline handwritten digits, and the MNIST and CIFAR loaders.

``from spline_utils import data`` gives ``x_task``, ``square_task``, ``disk_task``, ``train_test_split``, ``digits``
(:mod:`.toy`), ``mnist`` (:mod:`.mnist_loader`) and ``cifar`` (:mod:`.cifar_loader`). Nothing downloads anything unless
its caller passes ``download=True``.
"""
from spline_utils.data.cifar_loader import cifar
from spline_utils.data.mnist_loader import mnist
from spline_utils.data.toy import digits, disk_task, square_task, train_test_split, x_task

__all__ = ["x_task", "square_task", "disk_task", "train_test_split", "digits", "mnist", "cifar"]
