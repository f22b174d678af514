"""End to end: the same nets trained 50 steps with SGD + momentum in float64, in nnlocal and in
torch from the same initial weights on the same mini-batches, end with the same weights
(rtol 1e-6). Every forward, backward, loss and optimizer step is in the loop, so a slip anywhere
shows up here even if a unit test missed it."""
import numpy as np
import pytest

from nnlocal import nn, optim

torch = pytest.importorskip("torch")

N_STEPS = 50


def _copy_into_torch(ours, theirs):
    theirs.double()
    state = {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def _train_both(ours, theirs, make_batch, lr=0.05, momentum=0.9, weight_decay=0.0):
    ours.to(np.float64)
    _copy_into_torch(ours, theirs)
    opt = optim.SGD(ours.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    t_opt = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loss_fn, t_loss_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    losses = []
    for step in range(N_STEPS):
        x, y = make_batch(rng)
        opt.zero_grad()
        loss = loss_fn(ours(x), y)
        ours.backward(loss_fn.backward())
        opt.step()

        t_opt.zero_grad()
        t_loss = t_loss_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        t_opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=1e-6), f"loss at step {step}"
        losses.append(loss)
    theirs_sd = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs_sd[name].numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=f"{name} after {N_STEPS} steps")
    return losses


def _mlp_batch(rng, n_in=12, n_classes=5, batch=16):
    x = rng.standard_normal((batch, n_in))
    # a learnable rule, so the loss falls and the weights really move
    y = (np.abs(x[:, :n_classes]).argmax(axis=1)).astype(np.int64)
    return x, y


def test_mlp_two_hidden_layers_trains_like_torch():
    ours = nn.Sequential(nn.Linear(12, 32, rng=0), nn.ReLU(), nn.Linear(32, 16, rng=1), nn.Tanh(),
                         nn.Linear(16, 5, rng=2))
    theirs = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16),
                                 torch.nn.Tanh(), torch.nn.Linear(16, 5))
    start = ours[0].weight.data.astype(np.float64).copy()
    losses = _train_both(ours, theirs, _mlp_batch, weight_decay=1e-3)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # it learned something
    assert np.abs(ours[0].weight.data - start).max() > 1e-2  # the weights moved


def test_mlp_with_dropout_in_eval_and_other_activations_trains_like_torch():
    ours = nn.Sequential(nn.Linear(12, 20, rng=3), nn.LeakyReLU(0.1), nn.Dropout(0.5, rng=0).eval(),
                         nn.Linear(20, 10, rng=4), nn.Sigmoid(), nn.Linear(10, 5, rng=5))
    theirs = torch.nn.Sequential(torch.nn.Linear(12, 20), torch.nn.LeakyReLU(0.1), torch.nn.Dropout(0.5).eval(),
                                 torch.nn.Linear(20, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 5))
    _train_both(ours, theirs, _mlp_batch, lr=0.1, momentum=0.5)


def _conv_batch(rng, batch=8):
    x = rng.standard_normal((batch, 1, 8, 8))
    # class = which quadrant holds the largest mean: a spatial rule a conv net can learn
    q = np.stack([x[:, 0, :4, :4].mean((1, 2)), x[:, 0, :4, 4:].mean((1, 2)),
                  x[:, 0, 4:, :4].mean((1, 2)), x[:, 0, 4:, 4:].mean((1, 2))], axis=1)
    return x, q.argmax(axis=1).astype(np.int64)


def test_small_conv_net_trains_like_torch():
    # nnlocal.nn's __init__ swallows an ImportError of the conv module; import it directly so a
    # broken conv.py fails here instead of skipping
    from nnlocal.nn.conv import Conv2d
    from nnlocal.nn.pooling import MaxPool2d

    ours = nn.Sequential(Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), MaxPool2d(2),
                         Conv2d(4, 6, 3, rng=1), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 2 * 2, 4, rng=2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                 torch.nn.Conv2d(4, 6, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                 torch.nn.Linear(6 * 2 * 2, 4))
    start = ours[0].weight.data.astype(np.float64).copy()
    losses = _train_both(ours, theirs, _conv_batch)
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert np.abs(ours[0].weight.data - start).max() > 1e-2
