"""Running a model to look inside it: eval mode, no gradients, and forward hooks that are always removed."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn


@contextmanager
def eval_with_hooks(model: nn.Module, hooks: Iterable[tuple[nn.Module, Callable]] = ()) -> Iterator[nn.Module]:
    """Run the ``with`` block with ``model`` in eval mode, without gradients, and with forward hooks registered.

    Parameters
    ----------
    model : torch.nn.Module
    hooks : iterable of (module, hook)
        Each ``hook(module, inputs, output)`` is registered with ``module.register_forward_hook``.

    On leaving the block, also after an error, every hook is removed and the model's training mode is restored.
    """
    handles = [module.register_forward_hook(hook) for module, hook in hooks]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
