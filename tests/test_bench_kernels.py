"""``nnlocal bench kernels``: every Numba kernel of every ``cpu.py`` has an argument builder in
``nnlocal/bench/bench_kernels.py`` (so no kernel escapes the benchmark), at three sizes or more, and
each builder's arguments run on both the kernel and its NumPy reference."""
import sys
import types

import pytest

from nnlocal.bench import bench_kernels as bk


def test_every_kernel_has_a_case_at_three_sizes_or_more():
    kernels = bk.all_kernels()
    assert {pkg for pkg, _ in kernels} >= {"nnlocal.kernels.conv", "nnlocal.methods.deep"}, kernels
    missing = [k for k in kernels if k not in bk.CASES]
    assert not missing, f"kernels without a case in nnlocal/bench/bench_kernels.py CASES: {missing}"
    stale = [k for k in bk.CASES if k not in kernels]
    assert not stale, f"CASES entries for names that are no (longer) kernels: {stale}"
    for key in kernels:
        sizes = [label for label, _ in bk.CASES[key](False)]
        assert len(sizes) >= 3 and len(set(sizes)) == len(sizes), (key, sizes)


def test_a_reexported_reference_is_not_a_kernel(monkeypatch):
    def f(x):
        return x

    reference = types.ModuleType("fakepkg.reference")
    reference.f, reference.g = f, lambda x: x
    cpu = types.ModuleType("fakepkg.cpu")
    cpu.f, cpu.g, cpu.h = f, lambda x: 2 * x, lambda x: 3 * x      # f re-exported; g a twin; h cpu-only
    cpu.__all__ = ["f", "g", "h"]
    monkeypatch.setitem(sys.modules, "fakepkg.reference", reference)
    monkeypatch.setitem(sys.modules, "fakepkg.cpu", cpu)
    assert bk.kernels_of("fakepkg") == ["g", "h"]
    assert bk.kernels_of("nnlocal.methods.kwta") == []                  # kwta's cpu.py re-exports everything


def test_cases_refuse_a_kernel_without_a_builder(monkeypatch):
    key = bk.all_kernels()[0]
    monkeypatch.delitem(bk.CASES, key)
    with pytest.raises(KeyError, match=key[1]):
        next(bk.cases(quick=True))


def test_each_builder_runs_on_the_kernel_and_the_reference():
    """One call of each side at each kernel's first (smallest) size, in quick mode."""
    seen = set()
    for case in bk.cases(quick=True):
        kernel = case.name.split(" ")[0]
        if kernel in seen:
            continue
        seen.add(kernel)
        assert case.baseline_name == "numpy reference"
        case.nnlocal()
        case.baseline()
    assert len(seen) == len(bk.all_kernels())


def test_bench_lists_kernels():
    from nnlocal.bench import available

    assert "kernels" in available()
