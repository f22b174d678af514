"""`nnlocal bench` machinery: goal verdicts, --threads, --dir, peak memory, and the benchmarks shipping
in the installed package (run from outside the repository)."""
import csv
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nnlocal import bench, cli
from nnlocal.bench.common import goal_met, peak_rss

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("goal, row, expected", [
    ("ratio <= 1.0", {"ratio": 1.0}, True),
    ("ratio <= 1.0", {"ratio": 1.01}, False),
    ("ratio < 1 (kept)", {"ratio": 1.0}, False),
    ("ratio <= 0.125 (>= 8x faster)", {"ratio": 0.1}, True),          # the "(>= 8x" aside is not a clause
    ("ratio ≤ 0.5, roofline ≥ 0.5", {"ratio": 0.4, "roofline": 0.6}, True),
    ("ratio <= 0.5 (>= 2x), roofline >= 0.5", {"ratio": 0.4, "roofline": 0.3}, False),
    ("ratio >= 8", {"ratio": 9.0}, True),
    ("ratio <= 1.0", {"ratio": None}, None),                            # nothing to compare
    ("kept if it pays", {"ratio": 0.5}, None),                          # no clause
])
def test_goal_verdict(goal, row, expected):
    assert goal_met(goal, row) is expected


EXTRA = '''
import numba
import numpy as np
from threadpoolctl import threadpool_info

from nnlocal.bench import Case, MemoryCase

SEEN = []
a = np.ones((64, 64))


def work():
    SEEN.append((numba.get_num_threads(), max(i["num_threads"] for i in threadpool_info()
                                              if i["user_api"] == "blas")))
    return a @ a


def cases(quick=False):
    return [Case("tiny matmul", work, lambda: a.dot(a), baseline_name="numpy", goal="ratio <= 1000"),
            MemoryCase("200 MB bytearray", "x = bytearray(200 << 20); x[::4096] = b'x' * len(x[::4096])",
                       "pass", baseline_name="empty python")]
'''


@pytest.fixture
def extra_dir(tmp_path):
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "bench_tiny.py").write_text(textwrap.dedent(EXTRA))
    return folder


def test_extra_dir_threads_and_memory(extra_dir, tmp_path, capsys):
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 cores for --threads 1,2")
    assert "tiny" in bench.available(extra_dir) and "engine" in bench.available(extra_dir)
    out = tmp_path / "out"
    assert cli.main(["bench", "tiny", "--dir", str(extra_dir), "--threads", "1,2", "--repeat", "2",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    seen = set(sys.modules["nnlocal_bench_extra.bench_tiny"].SEEN)
    assert seen == {(1, 1), (2, 2)}, seen                    # Numba and BLAS limited alike, per count
    rows = list(csv.DictReader(open(out / "bench.csv")))
    assert [r["threads"] for r in rows] == ["1", "2"]
    assert rows[0]["nnlocal_speedup"] == "" and float(rows[1]["nnlocal_speedup"]) > 0
    assert "nnlocal_speedup" in printed and "ratio <= 1000: met" in printed
    assert printed.count("machine: ") == 2 and "load average" in printed     # progress and table
    memory = list(csv.DictReader(open(out / "memory.csv")))
    assert len(memory) == 1 and memory[0]["threads"] == "1"                  # memory runs once
    assert float(memory[0]["nnlocal_mb"]) > 200 > float(memory[0]["baseline_mb"])
    assert "Peak memory" in (out / "bench.md").read_text()


def test_peak_rss_is_the_childs_own_and_reports_failures():
    ballast = bytearray(300 << 20)      # this process is large: a child must not be charged for it
    ballast[::4096] = b"x" * len(ballast[::4096])
    big, _ = peak_rss("x = bytearray(200 << 20); x[::4096] = b'x' * len(x[::4096])")
    small, _ = peak_rss("import sys; sys.exit(0)")
    assert 200 < big < 300 and small < 100, (big, small)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        peak_rss("1 / 0")


def _copy_sources(dest: Path) -> Path:
    """The files a wheel is built from (pyproject, README, nnlocal/), outside the repository."""
    src = dest / "src"
    shutil.copytree(REPO / "nnlocal", src / "nnlocal", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    return src


def test_installed_wheel_lists_the_benchmarks_outside_the_repository(tmp_path):
    """Build a wheel, install it (no dependencies) into a folder, run `nnlocal bench --list` from elsewhere."""
    src = _copy_sources(tmp_path)
    wheels, target, cwd = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    cwd.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    build = subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    wheel = next(wheels.glob("nnlocal-*.whl"))
    install = subprocess.run(pip + ["install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = dict(os.environ, PYTHONPATH=str(target))
    res = subprocess.run([sys.executable, "-c", "import nnlocal.bench as b; print(b.__file__)\n"
                          "from nnlocal.cli import main; raise SystemExit(main(['bench', '--list']))"],
                         capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert res.returncode == 0, res.stderr
    first, *names = res.stdout.split()
    assert Path(first).is_relative_to(target), first            # the installed copy, not the repository
    assert {"engine", "pan", "arp", "deep", "eqprop", "kwta", "butd", "memory"} <= set(names), names
    assert (target / "bin" / "nnlocal").exists()                 # the console script
    assert re.search(r"^Provides-Extra: bench$", next(target.glob("nnlocal-*.dist-info/METADATA")).read_text(), re.M)
