"""Utilities: gradcheck, pickle-free atomic checkpoints, seeds and torch's default initialisation."""
import os
import pickle
import stat
import zipfile

import numpy as np
import pytest

import nnlocal
from nnlocal import nn
from nnlocal.data import write_idx
from nnlocal.nn import init
from nnlocal.utils import GradcheckError


# ----------------------------------------------------------------------------- gradcheck

def _net_and_loss(seed=0):
    rng = np.random.default_rng(seed)
    net = nn.Sequential(nn.Linear(3, 4, rng=1), nn.Tanh(), nn.Linear(4, 2, rng=2)).to(np.float64)
    x, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    loss = nn.MSELoss()

    def fn(x_, w0):
        net[0].weight.data = w0
        return loss(net(x_), t)

    w0 = net[0].weight.data.copy()
    fn(x, w0)
    net.zero_grad()
    gx = net.backward(loss.backward())
    return fn, [x, w0], [gx, net[0].weight.grad.copy()]


def test_gradcheck_passes_a_right_gradient():
    fn, inputs, analytic = _net_and_loss()
    numeric = nnlocal.gradcheck(fn, inputs, analytic=analytic)
    np.testing.assert_allclose(numeric[1], analytic[1], rtol=1e-6)


@pytest.mark.parametrize("defect", ["scaled", "transposed-sign", "one-entry"])
def test_gradcheck_catches_a_wrong_gradient(defect):
    fn, inputs, analytic = _net_and_loss()
    wrong = [a.copy() for a in analytic]
    if defect == "scaled":
        wrong[0] *= 1.01
    elif defect == "transposed-sign":
        wrong[1] = -wrong[1]
    else:
        wrong[1][2, 1] += 1e-3
    with pytest.raises(GradcheckError, match="input [01] at"):
        nnlocal.gradcheck(fn, inputs, analytic=wrong)


def test_gradcheck_argument_checks():
    fn, inputs, analytic = _net_and_loss()
    with pytest.raises(GradcheckError, match="shape"):
        nnlocal.gradcheck(fn, inputs, analytic=[analytic[0], analytic[1].T])
    with pytest.raises(GradcheckError, match="1 analytic gradients for 2 inputs"):
        nnlocal.gradcheck(fn, inputs, analytic=analytic[:1])
    with pytest.raises(ValueError, match="float64"):
        nnlocal.numerical_grad(lambda x: x.sum(), [np.ones(3, dtype=np.float32)])


def test_numerical_grad_on_non_contiguous_input_and_restores_it():
    x = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    y = np.arange(12.0).reshape(3, 4)[:, ::2]  # a strided view
    before = (x.copy(), y.copy())
    gx, gy = nnlocal.numerical_grad(lambda a, b: (a ** 2).sum() + (b ** 3).sum(), [x, y])
    np.testing.assert_allclose(gx, 2 * x, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(gy, 3 * y ** 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(y, before[1])


# ----------------------------------------------------------------------------- checkpoints

class WithBuffer(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.lin = nn.Linear(3, 4, rng=0, dtype=dtype)
        self.register_buffer("count", np.arange(4, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_exact(tmp_path, dtype):
    src = WithBuffer(dtype)
    src.lin.weight.data[...] = np.random.default_rng(1).standard_normal((4, 3)).astype(dtype) / 3
    path = tmp_path / "ck.npz"
    nnlocal.save(src, path)
    dst = WithBuffer(dtype)
    dst.lin.weight.data[...] = 0
    dst.count = np.zeros(4, dtype=dtype)
    assert nnlocal.load(dst, path) is dst
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert a.dtype == b.dtype == dtype, k
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left behind


def test_save_overwrites_and_has_a_normal_file_mode(tmp_path):
    path = tmp_path / "ck.npz"
    nnlocal.save(nn.Linear(2, 2, rng=0), path)
    nnlocal.save(nn.Linear(2, 2, rng=1), str(path))
    loaded = nnlocal.load(nn.Linear(2, 2, rng=5), path)
    np.testing.assert_array_equal(loaded.weight.data, nn.Linear(2, 2, rng=1).weight.data)
    old = os.umask(0o022)
    try:
        nnlocal.save(nn.Linear(2, 2, rng=0), path)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_failing_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    good = nn.Linear(3, 2, rng=0)
    nnlocal.save(good, path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        fh = args[0]
        fh.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        nnlocal.save(nn.Linear(3, 2, rng=1), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]
    np.testing.assert_array_equal(nnlocal.load(nn.Linear(3, 2, rng=9), path).weight.data, good.weight.data)


def _record_fsyncs(monkeypatch, target):
    """Replace os.fsync by a recorder of (is a folder, inode, does ``target`` exist yet)."""
    calls, real = [], os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        calls.append((stat.S_ISDIR(st.st_mode), st.st_ino, target.exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


@pytest.mark.parametrize("write", [
    lambda path: nnlocal.save(nn.Linear(3, 2, rng=0), path),
    lambda path: write_idx(path, np.arange(6, dtype=np.uint8)),
], ids=["nnlocal.save", "write_idx"])
def test_atomic_writes_fsync_the_file_then_the_folder_after_the_rename(tmp_path, monkeypatch, write):
    """A rename is durable only once its folder is flushed: file fsync, rename, folder fsync."""
    path = tmp_path / "out.bin"
    calls = _record_fsyncs(monkeypatch, path)
    write(path)
    assert path.exists()
    assert [(d, e) for d, _, e in calls] == [(False, False), (True, True)]   # the data, then the folder
    assert calls[1][1] == os.stat(tmp_path).st_ino


def test_load_rejects_truncated_file(tmp_path):
    path = tmp_path / "ck.npz"
    nnlocal.save(nn.Linear(30, 20, rng=0), path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated or not an .npz"):
            nnlocal.load(nn.Linear(30, 20, rng=0), path)


def test_load_rejects_foreign_npz_and_non_zip_files(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weight=np.zeros((2, 2)), bias=np.zeros(2))
    with pytest.raises(ValueError, match="not an nnlocal checkpoint"):
        nnlocal.load(nn.Linear(2, 2, rng=0), foreign)
    text = tmp_path / "notes.npz"
    text.write_text("hello, I am not a checkpoint\n")
    with pytest.raises(ValueError, match="not an .npz checkpoint"):
        nnlocal.load(nn.Linear(2, 2, rng=0), text)
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))  # a plain .npy under an .npz name
    with pytest.raises(ValueError, match="not an .npz checkpoint"):
        nnlocal.load(nn.Linear(2, 2, rng=0), npy)
    with pytest.raises(FileNotFoundError):
        nnlocal.load(nn.Linear(2, 2, rng=0), tmp_path / "missing.npz")


class _Marker:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_load_never_unpickles(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = _Marker(str(marker))
    np.savez(path, __nnlocal_format__=np.array(1), weight=obj, bias=np.zeros(2))
    with zipfile.ZipFile(path) as zf:  # the payload really is in the file
        assert b"pwned" in zf.read("weight.npy")
    with pytest.raises(ValueError, match="without pickle"):
        nnlocal.load(nn.Linear(2, 2, rng=0), path)
    assert not marker.exists()
    # a plain pickle file is not loaded either
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps(_Marker(str(marker))))
    with pytest.raises(ValueError):
        nnlocal.load(nn.Linear(2, 2, rng=0), pkl)
    assert not marker.exists()


def test_load_mismatched_module_names_the_key(tmp_path):
    path = tmp_path / "ck.npz"
    nnlocal.save(nn.Sequential(nn.Linear(2, 3, rng=0)), path)
    with pytest.raises(KeyError, match="missing key '1.weight'"):
        nnlocal.load(nn.Sequential(nn.Linear(2, 3, rng=0), nn.Linear(3, 1, rng=0)), path)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 2\)"):
        nnlocal.load(nn.Sequential(nn.Linear(2, 4, rng=0)), path, strict=False)


def test_save_rejects_unsaveable_state(tmp_path):
    m = nn.Linear(2, 2, rng=0)
    m.register_buffer("names", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="'names' has dtype"):
        nnlocal.save(m, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- seeds and init

def test_seed_makes_default_rng_reproducible():
    nnlocal.seed(123)
    a = nn.Linear(5, 4)
    b = nn.Linear(5, 4)
    nnlocal.seed(123)
    a2 = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.data, a2.weight.data)
    assert not np.array_equal(a.weight.data, b.weight.data)
    held = nnlocal.get_rng()  # a generator taken before seed() follows the re-seed
    nnlocal.seed(5)
    first = held.random(3)
    nnlocal.seed(5)
    np.testing.assert_array_equal(nnlocal.get_rng().random(3), first)


def test_int_rng_is_bit_identical_and_generators_advance():
    a, b = nn.Linear(7, 3, rng=42), nn.Linear(7, 3, rng=42)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, nn.Linear(7, 3, rng=43).weight.data)
    gen = np.random.default_rng(0)
    c, d = nn.Linear(7, 3, rng=gen), nn.Linear(7, 3, rng=gen)
    assert not np.array_equal(c.weight.data, d.weight.data)
    np.testing.assert_array_equal(c.weight.data, nn.Linear(7, 3, rng=np.random.default_rng(0)).weight.data)


@pytest.mark.parametrize("bad", [1.5, "0", True, np.random.RandomState(0)])
def test_get_rng_rejects_other_types(bad):
    with pytest.raises(TypeError, match="rng must be"):
        nnlocal.get_rng(bad)


def test_linear_init_matches_torch_bounds_and_distribution():
    torch = pytest.importorskip("torch")
    from scipy import stats

    fan_in, fan_out = 400, 300
    ours = nn.Linear(fan_in, fan_out, rng=0)
    bound = 1 / np.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) reduces to U(±1/sqrt(fan_in))
    for arr in (ours.weight.data, ours.bias.data):
        assert np.abs(arr).max() <= bound * (1 + 1e-6)
        assert np.abs(arr).max() > 0.98 * bound
    w = ours.weight.data.astype(np.float64).ravel()
    assert abs(w.mean()) < 5 * bound / np.sqrt(3 * w.size)
    assert w.var() == pytest.approx(bound ** 2 / 3, rel=0.02)
    torch.manual_seed(0)
    theirs = torch.nn.Linear(fan_in, fan_out)
    t_bound = max(theirs.weight.abs().max().item(), theirs.bias.abs().max().item())
    assert t_bound <= bound * (1 + 1e-6)
    assert stats.ks_2samp(w, theirs.weight.detach().numpy().ravel()).pvalue > 1e-3
    assert stats.ks_2samp(ours.bias.data, theirs.bias.detach().numpy()).pvalue > 1e-3


def test_init_helpers():
    assert init.fans((6, 4, 3, 3)) == (36, 54)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.fans((5,))
    w = init.xavier_uniform((50, 70), rng=0)
    assert np.abs(w).max() <= np.sqrt(6 / 120)
    k = init.kaiming_uniform((40, 30), a=0.0, rng=0, dtype=np.float64)
    assert k.dtype == np.float64 and np.abs(k).max() <= np.sqrt(6 / 30)
    assert init.default_weight_and_bias((3, 0), 3, rng=0)[0].shape == (3, 0)  # zero fan-in: no crash
