"""What the image trials share: cached datasets, one mini-batch training loop, accuracy."""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=4)
def _train_test(name: str):
    """Both splits of a dataset, loaded once per worker process and kept read-only."""
    from ...data import load_train_test

    arrays = load_train_test(name)[:4]
    for a in arrays:
        a.setflags(write=False)
    return arrays


def load_data(dataset: str, max_train: int = 0, flatten: bool = False):
    """``(x_train, y_train, x_test, y_test)`` of ``dataset`` (images in [0, 1], NCHW, or (N, D) with
    ``flatten``); ``max_train > 0`` keeps the first ``max_train`` training images."""
    from ...data import canonical_name

    x_tr, y_tr, x_te, y_te = _train_test(canonical_name(dataset))
    if max_train < 0:
        raise ValueError(f"max_train must be >= 0 (0 = all), got {max_train}")
    if max_train:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    if flatten:
        x_tr, x_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)
    return x_tr, y_tr, x_te, y_te


def train(model, opt, loader, epochs: int, step, scheduler=None) -> float:
    """Mini-batch training. Per batch: ``opt.zero_grad()``, then ``step(xb, yb)`` - the forward pass,
    the loss and whatever fills ``.grad`` (backprop or a local rule) - returning the batch loss, or
    None to skip the update; then ``opt.step()``. ``scheduler.step()`` after every epoch.
    Returns the mean loss of the last epoch (nan if every batch was skipped)."""
    losses = []
    for _ in range(epochs):
        model.train()
        losses = []
        for xb, yb in loader:
            opt.zero_grad()
            loss = step(xb, yb)
            if loss is None:
                continue
            opt.step()
            losses.append(float(loss))
        if scheduler is not None:
            scheduler.step()
    return float(np.mean(losses)) if losses else float("nan")


def backprop_step(model, loss_fn):
    """``step`` for :func:`train`: ``loss_fn(model(x), y)``, then backprop of its gradient."""
    def step(xb, yb):
        loss = loss_fn(model(xb), yb)
        if loss is None:      # e.g. a triplet sampler that found no triple in the batch
            return None
        model.backward(loss_fn.backward())
        return loss

    return step


def accuracy_pct(model, x, y, batch: int = 1000, predict=None) -> float:
    """Test accuracy in percent, ``batch`` images at a time, in eval mode (``predict`` replaces
    ``model`` as the function from images to logits, e.g. to pass a task)."""
    model.eval()
    predict = model if predict is None else predict
    correct = sum(int(np.sum(predict(x[i:i + batch]).argmax(axis=1) == y[i:i + batch]))
                  for i in range(0, len(x), batch))
    return 100.0 * correct / len(x)
