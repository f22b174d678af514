"""The named two-item datasets (Multi-MNIST / Multi-Fashion-MNIST): construction, splits, seeding, cache.

Built over a small synthetic IDX base written into a temporary folder, so nothing downloads and
the tests take a fraction of a second; the real Fashion-MNIST version is checked when the Debian
package's files are installed.
"""
from pathlib import Path

import numpy as np
import pytest

from nnlocal.data import (MULTI_SPLITS, build_multi_split, describe_datasets, load_dataset, load_multi_mnist,
                          multi_cache_path, multi_mnist, write_idx)
from nnlocal.data.multi import MULTI_VAL_SIZE

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
N_TRAIN, N_TEST, VAL = 30, 12, 10            # synthetic base: train 20 / val 10 / test 12
SIZES = {"train": N_TRAIN - VAL, "val": VAL, "test": N_TEST}


def _write_base(root: Path, n_train=N_TRAIN, n_test=N_TEST, s=28, seed=0):
    rng = np.random.default_rng(seed)
    base = {}
    for split, n, prefix in (("train", n_train, "train"), ("test", n_test, "t10k")):
        x = rng.integers(0, 256, size=(n, s, s), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(root / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(root / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz", y)
        base[split] = (x[:, None], y.astype(np.int64))
    return base


@pytest.fixture
def base(tmp_path):
    return _write_base(tmp_path / "data")


def _load(tmp_path, split, seed=0, **kw):
    kw.setdefault("val_size", VAL)
    return load_multi_mnist("multi-fashion-mnist", split, seed, root=tmp_path / "data", cache_dir=tmp_path / "cache",
                            download=False, **kw)


def test_shapes_labels_and_construction(tmp_path, base):
    for split in MULTI_SPLITS:
        x, y = _load(tmp_path, split)
        n = SIZES[split]
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32 and y.shape == (n, 2) and y.dtype == np.int64
        assert 0.0 <= x.min() and x.max() <= 1.0
        # the same images as the documented construction over the split's base range
        x8, y8, src = build_multi_split(base["train"], base["test"], split, seed=0, val_size=VAL)
        np.testing.assert_array_equal(x, x8.astype(np.float32) / np.float32(255.0))
        np.testing.assert_array_equal(y, y8)
        lo = N_TRAIN - VAL if split == "val" else 0
        bx, by = base["test"] if split == "test" else base["train"]
        np.testing.assert_array_equal(src[:, 0], lo + np.arange(n))            # left items in order
        np.testing.assert_array_equal(y[:, 0], by[src[:, 0]])                  # label pairs follow the items
        np.testing.assert_array_equal(y[:, 1], by[src[:, 1]])
        # and equal multi_mnist over that range with the split's generator
        rng = np.random.default_rng([0, MULTI_SPLITS.index(split)])
        hi = lo + n
        xm, _ = multi_mnist(bx[lo:hi], by[lo:hi], rng=rng)
        np.testing.assert_array_equal(x8, xm)


def test_splits_are_disjoint_and_sized_like_the_original(base):
    used = {}
    for split in MULTI_SPLITS:
        _, _, src = build_multi_split(base["train"], base["test"], split, seed=3, val_size=VAL)
        used[split] = set(src.ravel().tolist())
        assert len(src) == SIZES[split]
    assert used["train"] <= set(range(0, N_TRAIN - VAL))        # right items come from the same range
    assert used["val"] <= set(range(N_TRAIN - VAL, N_TRAIN))
    assert used["test"] <= set(range(N_TEST))                  # (indices into the test set)
    assert not used["train"] & used["val"]


def test_deterministic_given_the_seed(tmp_path, base):
    a = _load(tmp_path, "train", seed=5, cache=False)
    b = _load(tmp_path, "train", seed=5, cache=False)
    c = _load(tmp_path, "train", seed=6, cache=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1][:, 1], c[1][:, 1])          # another seed draws other right items
    assert not multi_cache_path("multi-fashion-mnist", "train", 5, tmp_path / "cache", VAL).exists()
    # a split does not depend on which other splits were built before it
    v1 = build_multi_split(base["train"], base["test"], "val", seed=5, val_size=VAL)[0]
    np.testing.assert_array_equal(_load(tmp_path, "val", seed=5, cache=False)[0], v1 / np.float32(255.0))


def test_cache_hit_and_rebuild(tmp_path, base):
    x, y = _load(tmp_path, "val", seed=2)
    path = multi_cache_path("multi-fashion-mnist", "val", 2, tmp_path / "cache", VAL)
    assert path.exists() and path.name == "seed2-val-val10.npz"
    with np.load(path, allow_pickle=False) as f:                # plain arrays, no pickle
        assert f["images"].dtype == np.uint8
    # the base set is no longer needed: the cache answers
    saved = {p: p.read_bytes() for p in (tmp_path / "data" / "fashion-mnist").iterdir()}
    for p in saved:
        p.unlink()
    x2, y2 = _load(tmp_path, "val", seed=2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    for p, data in saved.items():
        p.write_bytes(data)
    # a cache file of another seed (or a damaged one) is rebuilt, with a warning
    other = multi_cache_path("multi-fashion-mnist", "val", 3, tmp_path / "cache", VAL)
    other.write_bytes(path.read_bytes())
    with pytest.warns(UserWarning, match="seed, split"):
        x3, _ = _load(tmp_path, "val", seed=3)
    np.testing.assert_array_equal(x3, _load(tmp_path, "val", seed=3, cache=False)[0])
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unusable cache file"):
        x4, _ = _load(tmp_path, "val", seed=2)
    np.testing.assert_array_equal(x4, x)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]   # atomic: no leftovers


def test_load_dataset_name_and_describe(tmp_path, monkeypatch):
    # load_dataset uses the original's 10,000-image validation split: a base of 8x8 images keeps it small
    _write_base(tmp_path / "data", n_train=MULTI_VAL_SIZE + 7, n_test=5, s=8)
    monkeypatch.setenv("NNLOCAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NNLOCAL_DATA", str(tmp_path / "data"))
    x, y = load_dataset("Multi-Fashion-MNIST", "train", download=False, seed=1)
    assert x.shape == (7, 1, 8, 8) and y.shape == (7, 2)
    xv, _ = load_dataset("multi_fashion_mnist", "val", download=False, seed=1)
    assert xv.shape == (MULTI_VAL_SIZE, 1, 8, 8)
    rows = {(r["dataset"], r["split"]): r for r in describe_datasets()}
    assert rows["multi-fashion-mnist", "test"]["n"] == 5
    assert rows["multi-fashion-mnist", "val"]["n"] == MULTI_VAL_SIZE
    assert rows["multi-fashion-mnist", "train"]["status"] == "found"
    assert "cache" in rows["multi-fashion-mnist", "train"]["where"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="multi-cifar", split="train"), "unknown two-item dataset"),
    (dict(split="validation"), "unknown split 'validation'"),
    (dict(split="train", seed=-1), "non-negative int"),
    (dict(split="train", seed=1.5), "non-negative int"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_multi_mnist(**kwargs, cache_dir=tmp_path, download=False)


def test_val_size_must_leave_a_training_split(base):
    with pytest.raises(ValueError, match="val_size"):
        build_multi_split(base["train"], base["test"], "train", val_size=N_TRAIN)


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist (full training set) is not installed")
def test_real_multi_fashion_mnist(tmp_path):
    from nnlocal.data import read_idx

    train_labels = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz").astype(np.int64)
    test_labels = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    for split, left in (("val", train_labels[50_000:]), ("test", test_labels)):
        x, y = load_multi_mnist("multi-fashion-mnist", split, 0, cache=False, cache_dir=tmp_path, download=False)
        assert x.shape == (10_000, 1, 28, 28) and x.dtype == np.float32 and y.shape == (10_000, 2)
        np.testing.assert_array_equal(y[:, 0], left)         # val: the last 10,000 training images, in order
        assert set(np.unique(y[:, 1])) == set(range(10))
        assert not list(tmp_path.iterdir())                   # cache=False writes nothing
