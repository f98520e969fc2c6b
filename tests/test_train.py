"""The training loop: seeding, callbacks, snapshots; checked against a hand-written SGD loop."""
import pytest
import torch
import torch.nn.functional as F

from spline_utils.training import nets, train


def toy_data(n=40, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=generator)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def test_fit_matches_a_hand_written_sgd_loop():
    x, y = toy_data()
    model, reference = nets.mlp((2, 5, 2), seed=1), nets.mlp((2, 5, 2), seed=1)
    state = train.fit(model, x, y, epochs=3, lr=0.1, batch_size=16, seed=7)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(7)
    losses = []
    for _ in range(3):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 16):
            batch = order[start:start + 16]
            optimizer.zero_grad()
            loss = F.cross_entropy(reference(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert state.losses == pytest.approx(losses)
    assert state.iteration == 9 and state.epoch == 3 and len(state.epoch_losses) == 3
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_callback_order_and_early_stop():
    events = []

    class Log(train.Callback):
        def on_train_begin(self, state):
            events.append(("begin", state.iteration))

        def on_backward_end(self, state):
            assert all(p.grad is not None for p in state.model.parameters())
            events.append(("backward", state.iteration))

        def on_iteration_end(self, state):
            events.append(("iteration", state.iteration))

        def on_epoch_end(self, state):
            assert not state.model.training
            events.append(("epoch", state.epoch))
            state.stop = state.epoch == 2

    x, y = toy_data(20)
    state = train.fit(nets.mlp((2, 3, 2), seed=0), x, y, epochs=5, batch_size=10, callbacks=[Log()])
    assert state.epoch == 2
    assert events == [("begin", 0), ("backward", 0), ("iteration", 0), ("backward", 1), ("iteration", 1),
                      ("epoch", 1), ("backward", 2), ("iteration", 2), ("backward", 3), ("iteration", 3),
                      ("epoch", 2)]


def test_snapshots_are_deep_copies_at_the_requested_counts():
    x, y = toy_data()
    model = nets.mlp((2, 5, 2), seed=3)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    snapshots = train.Snapshots(iterations=[0, 1, 5], epochs=[0, 2])
    train.fit(model, x, y, epochs=2, lr=0.1, batch_size=10, seed=0, callbacks=[snapshots])
    assert sorted(snapshots.at_iteration) == [0, 1, 5] and sorted(snapshots.at_epoch) == [0, 2]
    for key, value in initial.items():
        torch.testing.assert_close(snapshots.at_iteration[0][key], value)
        torch.testing.assert_close(snapshots.at_epoch[0][key], value)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(snapshots.at_epoch[2][key], value)   # 8 steps = 2 epochs: the final model
    assert not torch.equal(snapshots.at_iteration[1]["0.weight"], initial["0.weight"])
    # replaying one step from the initial weights gives the 1-step snapshot
    replay = nets.mlp((2, 5, 2), seed=3)
    with pytest.raises(_Stop):
        train.fit(replay, x, y, epochs=1, lr=0.1, batch_size=10, seed=0, callbacks=[StopAfter(1)])
    for key, value in replay.state_dict().items():
        torch.testing.assert_close(snapshots.at_iteration[1][key], value)
    with pytest.raises(ValueError):
        train.Snapshots(iterations=[-1])


class StopAfter(train.Callback):
    """Raises out of the loop after ``steps`` optimizer steps (fit only checks ``stop`` at epoch ends)."""

    def __init__(self, steps):
        self.steps = steps

    def on_iteration_end(self, state):
        if state.iteration + 1 == self.steps:
            raise _Stop


class _Stop(Exception):
    pass


def test_bad_arguments_raise():
    x, y = toy_data()
    with pytest.raises(ValueError, match="same length"):
        train.fit(nets.mlp((2, 3, 2)), x, y[:-1], epochs=1)
    with pytest.raises(ValueError):
        train.fit(nets.mlp((2, 3, 2)), x, y, epochs=1, batch_size=0)


def test_accuracy_counts_correct_predictions():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert train.accuracy(model, x, torch.tensor([0, 1, 1, 1]), batch_size=3) == 0.75
