"""Optimizers and schedulers against torch: 20 steps on the same gradient sequence give the same
parameters (float64), every hyper-parameter variant, parameter groups, lr schedules, state dicts."""
import copy

import numpy as np
import pytest

from nnlocal import nn, optim
from tests.torch_twin import assert_close

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 3, 2)]
N_STEPS = 20


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(N_STEPS)]
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    return ours, theirs, grads


def _groups(params, split, group_opts):
    if not split:
        return params
    return [{"params": params[:1], **group_opts[0]}, {"params": params[1:], **group_opts[1]}]


def _run(ours_cls, theirs_cls, kwargs, split=False, group_opts=({}, {}), seed=0, skip=None):
    ours, theirs, grads = _setup(seed)
    opt = ours_cls(_groups(ours, split, group_opts), **kwargs)
    t_opt = theirs_cls(_groups(theirs, split, group_opts), **kwargs)
    for step, gs in enumerate(grads):
        for k, (p, t, g) in enumerate(zip(ours, theirs, gs)):
            if skip is not None and k == skip and step % 2:  # this parameter has no gradient this step
                p.grad, t.grad = None, None
            else:
                p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
        for k, (p, t) in enumerate(zip(ours, theirs)):
            assert_close(f"parameter {k} after step {step + 1}", p.data, t.detach().numpy(), rtol=1e-10, atol=1e-12)
    return opt, t_opt, ours, theirs


SGD_CASES = [dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
             dict(lr=0.05, momentum=0.8, nesterov=True), dict(lr=0.1, weight_decay=0.01),
             dict(lr=0.02, momentum=0.9, weight_decay=0.05, nesterov=True),
             dict(lr=0.03, momentum=0.5, dampening=0.5, weight_decay=0.1)]
ADAM_CASES = [dict(lr=0.01), dict(lr=0.05, weight_decay=0.1), dict(lr=0.01, amsgrad=True),
              dict(lr=0.02, betas=(0.5, 0.9), eps=1e-3, amsgrad=True, weight_decay=0.01)]
RMS_CASES = [dict(lr=0.01), dict(lr=0.01, momentum=0.9), dict(lr=0.01, centered=True),
             dict(lr=0.005, weight_decay=0.1), dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                                    weight_decay=0.01, eps=1e-4)]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_torch(kwargs):
    _run(optim.SGD, torch.optim.SGD, kwargs)


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=str)
def test_adam_matches_torch(kwargs):
    _run(optim.Adam, torch.optim.Adam, kwargs)


@pytest.mark.parametrize("kwargs", RMS_CASES, ids=str)
def test_rmsprop_matches_torch(kwargs):
    _run(optim.RMSprop, torch.optim.RMSprop, kwargs)


def test_defaults_match_torch():
    for ours_cls, t_cls in [(optim.SGD, torch.optim.SGD), (optim.Adam, torch.optim.Adam),
                            (optim.RMSprop, torch.optim.RMSprop)]:
        ours = ours_cls([nn.Parameter(np.zeros(2))]).param_groups[0]
        theirs = t_cls([torch.nn.Parameter(torch.zeros(2))]).param_groups[0]
        for k, v in ours.items():
            if k != "params":
                assert theirs[k] == v, (ours_cls.__name__, k)


@pytest.mark.parametrize("ours_cls,t_cls,kwargs,groups", [
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9), ({"lr": 0.01}, {"momentum": 0.5})),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01), ({"lr": 0.1}, {"betas": (0.8, 0.99)})),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01), ({"lr": 0.001, "centered": True}, {})),
], ids=["SGD", "Adam", "RMSprop"])
def test_parameter_groups_with_their_own_hyperparameters(ours_cls, t_cls, kwargs, groups):
    opt, _, _, _ = _run(ours_cls, t_cls, kwargs, split=True, group_opts=groups)
    assert opt.param_groups[0]["lr"] != opt.param_groups[1]["lr"] or ours_cls is optim.RMSprop


@pytest.mark.parametrize("ours_cls,t_cls,kwargs", [
    (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5)),
], ids=["SGD", "Adam", "RMSprop"])
def test_parameters_without_gradient_are_skipped_like_torch(ours_cls, t_cls, kwargs):
    _run(ours_cls, t_cls, kwargs, skip=1)


def test_frozen_parameter_is_not_updated():
    p = nn.Parameter(np.ones(3), requires_grad=False)
    p.grad = np.ones(3)
    q = nn.Parameter(np.ones(3))
    q.grad = np.ones(3)
    optim.Adam([p, q], lr=0.1).step()
    assert np.all(p.data == 1) and np.all(q.data < 1)


def test_adam_state_matches_torch():
    opt, t_opt, ours, theirs = _run(optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True))
    sd, t_sd = opt.state_dict(), t_opt.state_dict()
    assert sd["param_groups"][0]["params"] == t_sd["param_groups"][0]["params"]
    for i, t_state in t_sd["state"].items():
        assert sd["state"][i]["step"] == int(t_state["step"])
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert_close(f"Adam state {key} of parameter {i}", sd["state"][i][key], t_state[key].numpy(), rtol=1e-10,
                         atol=1e-14)


def test_zero_grad():
    params = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))]
    for p in params:
        p.grad = np.ones_like(p.data)
    optim.SGD(params, lr=0.1).zero_grad()
    assert all(p.grad is None for p in params)


# ----------------------------------------------------------------------------- state dict

@pytest.mark.parametrize("ours_cls,kwargs", [(optim.SGD, dict(lr=0.1, momentum=0.9)),
                                             (optim.Adam, dict(lr=0.01, amsgrad=True)),
                                             (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True))],
                         ids=["SGD", "Adam", "RMSprop"])
def test_state_dict_round_trip_resumes_exactly(ours_cls, kwargs):
    params, _, grads = _setup(3)
    opt = ours_cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.001}], **kwargs)

    def steps(o, ps, gs):
        for g_step in gs:
            for p, g in zip(ps, g_step):
                p.grad = g.copy()
            o.step()

    steps(opt, params, grads[:10])
    sd = opt.state_dict()
    clone = [nn.Parameter(p.data.copy()) for p in params]
    opt2 = ours_cls([{"params": clone[:2]}, {"params": clone[2:]}], **kwargs)
    opt2.load_state_dict(copy.deepcopy(sd))
    assert opt2.param_groups[1]["lr"] == 0.001  # hyper-parameters come back too
    # the state dict is a snapshot: changing it afterwards does not touch either optimizer
    for s in sd["state"].values():
        for v in s.values():
            if isinstance(v, np.ndarray):
                v[...] = 1e9
    steps(opt, params, grads[10:])
    steps(opt2, clone, grads[10:])
    for p, q in zip(params, clone):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("ours_cls,kwargs", [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                             (optim.Adam, dict(lr=0.01, amsgrad=True)),
                                             (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True))],
                         ids=["SGD", "Adam", "RMSprop"])
def test_optimizer_and_scheduler_checkpoint_to_a_file_and_resume_exactly(ours_cls, kwargs, tmp_path):
    """nnlocal.save / load take an optimizer and a scheduler (nested state) as they take a model."""
    import nnlocal

    params, _, grads = _setup(3)

    def steps(o, ps, gs):
        for g_step in gs:
            for p, g in zip(ps, g_step):
                p.grad = g.copy()
            o.step()

    opt = ours_cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.001}], **kwargs)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    steps(opt, params, grads[:10])
    sched.step()
    nnlocal.save(opt, tmp_path / "opt.npz")
    nnlocal.save(sched, tmp_path / "sched.npz")
    clone = [nn.Parameter(p.data.copy()) for p in params]
    opt2 = ours_cls([{"params": clone[:2]}, {"params": clone[2:]}], **{**kwargs, "lr": 0.7})
    sched2 = optim.StepLR(opt2, step_size=1, gamma=0.5)
    nnlocal.load(opt2, tmp_path / "opt.npz")
    nnlocal.load(sched2, tmp_path / "sched.npz")
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]   # not 0.7
    assert sched2.state_dict() == sched.state_dict() and isinstance(sched2.last_epoch, int)
    for g, g2 in zip(opt.param_groups, opt2.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == {k: v for k, v in g2.items() if k != "params"}
        assert {k: type(v) for k, v in g.items() if k != "params"} == \
            {k: type(v) for k, v in g2.items() if k != "params"}          # betas a tuple, amsgrad a bool
    steps(opt, params, grads[10:])
    sched.step()
    steps(opt2, clone, grads[10:])
    sched2.step()
    for p, q in zip(params, clone):
        np.testing.assert_array_equal(p.data, q.data)
    # another optimizer's file, or a shape that does not fit, is refused before anything changes
    with pytest.raises(ValueError, match="parameter groups"):
        nnlocal.load(ours_cls(clone, **kwargs), tmp_path / "opt.npz")


def test_save_refuses_state_it_cannot_store(tmp_path):
    import nnlocal

    class Odd:
        def state_dict(self):
            return {"step": 1, "name": "adam"}

    with pytest.raises(ValueError, match="'name' is 'adam'; only numbers"):
        nnlocal.save(Odd(), tmp_path / "odd.npz")
    assert not (tmp_path / "odd.npz").exists()


def test_load_state_dict_rejects_mismatched_groups():
    a = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))]
    sd = optim.SGD(a, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": a[:1]}, {"params": a[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 holds 2 parameters in the state dict, 1 in the optimizer"):
        optim.SGD(a[:1], lr=0.1).load_state_dict(sd)


# ----------------------------------------------------------------------------- validation

def test_invalid_arguments():
    p = [nn.Parameter(np.ones(2))]
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="invalid lr"):
        optim.SGD(p, lr=-1.0)
    with pytest.raises(ValueError, match="invalid momentum"):
        optim.RMSprop(p, momentum=-0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="Parameters"):
        optim.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([{"params": p}, {"params": p}], lr=0.1)


# ----------------------------------------------------------------------------- schedulers

def _lrs(opt, sched, epochs, torch_side):
    out = []
    for _ in range(epochs):
        out.append([g["lr"] for g in opt.param_groups])
        if torch_side:
            opt.step()  # torch warns when the scheduler steps before the optimizer
        sched.step()
    return np.array(out)


@pytest.mark.parametrize("name,make", [
    ("StepLR", lambda mod, o: mod.StepLR(o, step_size=3, gamma=0.5)),
    ("StepLR-1", lambda mod, o: mod.StepLR(o, step_size=1, gamma=0.9)),
    ("ExponentialLR", lambda mod, o: mod.ExponentialLR(o, gamma=0.8)),
    ("LambdaLR", lambda mod, o: mod.LambdaLR(o, lambda e: 1.0 / (1 + e))),
    ("LambdaLR-list", lambda mod, o: mod.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 + (e % 3)])),
], ids=lambda v: v if isinstance(v, str) else "")
def test_scheduler_lr_sequence_matches_torch(name, make):
    ours_p = [nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))]
    t_p = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))]
    opt = optim.SGD([{"params": ours_p[:1]}, {"params": ours_p[1:], "lr": 0.3}], lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD([{"params": t_p[:1]}, {"params": t_p[1:], "lr": 0.3}], lr=0.1, momentum=0.9)
    ours = _lrs(opt, make(optim, opt), 15, False)
    theirs = _lrs(t_opt, make(torch.optim.lr_scheduler, t_opt), 15, True)
    assert_close(f"{name} learning rates", ours, theirs, rtol=1e-12, atol=0.0)


def test_scheduler_state_dict_round_trip():
    p = [nn.Parameter(np.ones(2))]
    opt = optim.Adam(p, lr=0.1)
    sched = optim.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(5):
        sched.step()
    opt2 = optim.Adam([nn.Parameter(np.ones(2))], lr=0.1)
    sched2 = optim.StepLR(opt2, step_size=2, gamma=0.1)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())
    assert sched.get_last_lr() == pytest.approx([0.1 * 0.01])
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())
