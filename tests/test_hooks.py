"""eval_with_hooks: eval mode and no gradients inside; hooks gone and training mode back afterwards, even on errors."""
import pytest
import torch
import torch.nn as nn

from spline_utils.reading.hooks import eval_with_hooks


def test_hooks_see_the_forward_pass_in_eval_mode_without_gradients():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU()).train()
    seen = []
    with eval_with_hooks(model, [(model[1], lambda module, inputs, output: seen.append(
            (module.training, output.requires_grad, tuple(output.shape))))]):
        model(torch.randn(4, 2))
    assert seen == [(False, False, (4, 3))]
    assert model.training and not model[1]._forward_hooks
    model(torch.randn(4, 2))
    assert len(seen) == 1, "the hook must be removed on leaving the block"


def test_an_error_inside_still_removes_hooks_and_restores_the_mode():
    model = nn.Sequential(nn.Linear(2, 3)).train()
    with pytest.raises(RuntimeError):
        with eval_with_hooks(model, [(model[0], lambda *args: None)]):
            model(torch.randn(4, 5))  # wrong width
    assert model.training and not model[0]._forward_hooks
    model.eval()
    with eval_with_hooks(model):
        pass
    assert not model.training, "an eval-mode model stays in eval mode"
