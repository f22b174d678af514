"""The front door: `nnlocal tour --quick`, `nnlocal bench`, `nnlocal datasets`, the demos, CI wiring, and
the error convention (one line `<prog>: error: ...`, status 2 for usage errors, no traceback without --debug)."""
import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnlocal import cli
from nnlocal.tour import PARTS

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC and path.stat().st_size > 1000


def test_tour_quick_runs_every_method_and_writes_valid_pngs(tmp_path, capsys):
    out = tmp_path / "tour"
    rc = cli.main(["tour", "--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    table = (out / "results.md").read_text()
    for label, _ in PARTS:
        assert re.search(rf"^\| {re.escape(label)} ", table, re.M), f"no row for {label} in\n{table}"
    assert not re.search(r"^\|[^|]*\|[^|]*\| error ", table, re.M), f"a tour part failed:\n{table}"
    index = (out / "index.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", index)
    assert len(figures) >= len(PARTS), f"expected a figure per part, index lists {figures}"
    for rel in figures:
        assert _is_png(out / rel), f"{rel} is not a valid PNG"


def test_bench_prints_a_ratio_a_goal_verdict_and_the_machine(tmp_path, capsys):
    pytest.importorskip("torch")
    from nnlocal.report import machine_info

    rc = cli.main(["bench", "kwta", "--repeat", "1", "--quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"ratio \d", printed), printed
    machine = machine_info()
    table = (tmp_path / "bench.md").read_text()
    for text in (printed, table):
        stamp = next(line for line in text.splitlines() if line.startswith("machine: "))
        for part in (machine["cpu"], f"{machine['cores']} cores", f"numpy {machine['numpy']}",
                     f"torch {machine['torch']}", machine["blas"].split(",")[0]):
            assert part in stamp, (part, stamp)
        assert re.search(r"ratio <= 1\.0: (met|missed) ", text), text
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    assert rows and all(r["cpu"] == machine["cpu"] and r["torch"] == machine["torch"] for r in rows)
    assert {r["goal_met"] for r in rows} <= {"True", "False"}


def test_datasets_command_reports_each_dataset(capsys):
    assert cli.main(["datasets"]) == 0
    printed = capsys.readouterr().out.lower()
    for name in ("digits", "mnist", "fashion-mnist", "cifar10"):
        assert name in printed


def test_every_command_has_help(capsys):
    for command in ([], ["tour"], ["bench"], ["datasets"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(command + ["--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "``" not in text, text      # no RST markup in the terminal


def test_every_option_has_a_help_text():
    parser = cli.build_parser()
    for name, sub in parser.subcommands.choices.items():
        for action in sub._actions + parser._actions:
            if action.dest == "command":     # the subcommand choice itself
                continue
            assert action.help, f"nnlocal {name} {'/'.join(action.option_strings) or action.dest} has no help text"


# --------------------------------------------------------------------------------------------- errors
def _one_line_error(err: str, prog: str = "nnlocal") -> str:
    """The error line of ``err``, checking the convention: no traceback, exactly one error line."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}"), err
    return lines[0]


def _fails(argv, capsys) -> tuple[int, str]:
    try:
        status = cli.main(argv)
    except SystemExit as exc:       # argparse's own usage errors
        status = exc.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["bench", "nosuchbench"], "nnlocal: error: unknown benchmark(s) nosuchbench; available: "),
    (["bench", "--threads", "999", "kwta"], "nnlocal: error: --threads 999: choose 1 to "),
    (["bench", "--threads", "0"], "nnlocal bench: error: argument --threads"),
    (["tour", "--only", "nosuchpart"], "nnlocal tour: error: argument --only: invalid choice"),
    (["datasets", "--download", "nosuchdata"], "nnlocal datasets: error: argument --download: unknown dataset"),
    (["datasets", "--download", "digits"], "nnlocal datasets: error: argument --download: digits is bundled"),
], ids=["bench-name", "bench-threads", "bench-threads-zero", "tour-only", "download-name", "download-digits"])
def test_usage_errors_are_one_line_with_status_2(argv, expected, capsys):
    status, err = _fails(argv, capsys)
    assert status == 2
    assert _one_line_error(err).startswith(expected), err


def test_bench_dir_that_does_not_exist(tmp_path, capsys):
    status, err = _fails(["bench", "--dir", str(tmp_path / "nope")], capsys)
    assert status == 2 and "no such folder" in _one_line_error(err)


def test_unknown_option_prints_the_subcommands_usage(capsys):
    status, err = _fails(["tour", "--bogus"], capsys)
    assert status == 2
    assert err.startswith("usage: nnlocal tour ") and "--quick" in err, err
    assert _one_line_error(err) == "nnlocal tour: error: unrecognized arguments: --bogus"


def test_debug_flag_and_environment_add_the_traceback(capsys, monkeypatch):
    for argv in (["--debug", "bench", "nosuchbench"], ["bench", "nosuchbench", "--debug"]):
        status, err = _fails(argv, capsys)
        assert status == 2 and "Traceback" in err and "UsageError" in err
        assert err.rstrip().splitlines()[-1].startswith("nnlocal: error: unknown benchmark")
    monkeypatch.setenv("NNLOCAL_DEBUG", "1")
    status, err = _fails(["bench", "nosuchbench"], capsys)
    assert status == 2 and "Traceback" in err


def test_runtime_failure_is_one_line_with_status_1(capsys):
    def broken():
        raise RuntimeError("the kernel diverged\nsecond line of detail")

    assert cli.call(broken, "demo.py") == 1
    line = _one_line_error(capsys.readouterr().err, "demo.py")
    assert line == "demo.py: error: RuntimeError: the kernel diverged (--debug shows the rest and the traceback)"
    assert cli.call(lambda: None, "demo.py") == 0 and cli.call(lambda: 3, "demo.py") == 3
    assert cli.call(lambda: {"accuracy": 0.9}, "demo.py") == 0       # a demo's main returns its results


def test_missing_optional_module_says_what_to_install():
    status, message_torch = cli.describe_error(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert status == 2 and "pip install torch==2.13.0" in message_torch
    assert 'pip install "nnlocal[bench]"' in message_torch
    status, message = cli.describe_error(ModuleNotFoundError("No module named 'foo.bar'", name="foo.bar"))
    assert status == 2 and message.endswith("pip install foo")
    assert cli.describe_error(ModuleNotFoundError(name="torch.nn"))[1] == message_torch


def test_bench_without_torch_says_what_to_install(tmp_path):
    """torch blocked: nnlocal and every benchmark module import, --list works, running one fails in one line."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "import importlib, nnlocal, nnlocal.bench as b\n"
            "[importlib.import_module(f'nnlocal.bench.bench_{n}') for n in b.available()]\n"
            "from nnlocal.cli import main\n"
            "assert main(['bench', '--list']) == 0\n"
            "sys.exit(main(['bench', 'kwta', '--quick', '--repeat', '1', '--out', sys.argv[1]]))")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert res.returncode == 2, res.stderr
    assert "engine" in res.stdout.split() and "kwta" in res.stdout.split()
    line = _one_line_error(res.stderr)
    assert "pip install torch==2.13.0" in line and 'pip install "nnlocal[bench]"' in line


def _offline_env(tmp_path, data_dir):
    env = dict(os.environ, PYTHONPATH=str(REPO), NNLOCAL_DATA=str(data_dir), NNLOCAL_CACHE=str(tmp_path / "cache"),
               NNLOCAL_OFFLINE="1")
    return env


def test_demo_with_a_missing_dataset_fails_in_one_line(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    res = subprocess.run([sys.executable, str(REPO / "demos" / "pan_lenet5.py"), "--dataset", "mnist", "--epochs", "1",
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=_offline_env(tmp_path, empty))
    assert res.returncode == 2, res.stderr
    line = _one_line_error(res.stderr, "pan_lenet5.py")
    for expected in ("MNIST (train split) not found", "nnlocal datasets --download mnist", str(tmp_path / "cache"),
                     "`--dataset digits` needs no download"):
        assert expected in line, (expected, line)


def test_corrupt_idx_file_fails_in_one_line_saying_to_replace_it(tmp_path, capsys, monkeypatch):
    from nnlocal.data import load_mnist, write_idx

    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    for key, value in _offline_env(tmp_path, tmp_path).items():
        monkeypatch.setenv(key, value)
    assert cli.call(lambda: load_mnist("test"), "demo.py") == 2
    line = _one_line_error(capsys.readouterr().err, "demo.py")
    assert "t10k-images-idx3-ubyte.gz: corrupt gzip stream" in line
    assert "delete it" in line and "nnlocal datasets --download mnist" in line


def test_every_demo_runs_under_the_error_convention():
    for demo in DEMOS:
        text = demo.read_text()
        assert re.search(r'^if __name__ == "__main__":\n    run\(main\)\n', text, re.M), demo.name
        assert "from nnlocal.cli import HelpFormatter, run" in text, demo.name


DEMOS = sorted((REPO / "demos").glob("*.py"))


@pytest.mark.parametrize("demo", DEMOS, ids=[d.stem for d in DEMOS])
def test_demo_help(demo):
    res = subprocess.run([sys.executable, str(demo), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--dataset" in res.stdout or "--seeds" in res.stdout
    epochs = re.search(r"--epochs EPOCHS (.*?)(?= --|$)", " ".join(res.stdout.split()))
    assert epochs and "(default: " in epochs.group(1), f"--epochs shows no default:\n{res.stdout}"


@pytest.mark.parametrize("demo", DEMOS, ids=[d.stem for d in DEMOS])
def test_demo_smoke_one_epoch_on_digits(demo, tmp_path):
    res = subprocess.run([sys.executable, str(demo), "--help"], capture_output=True, text=True, timeout=120)
    args = [sys.executable, str(demo), "--epochs", "1", "--out", str(tmp_path)]
    if "digits" in res.stdout:          # the image demos; deep_logic's --dataset names logic gates
        args += ["--dataset", "digits"]
    if "--smoke" in res.stdout:
        args += ["--smoke"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, f"{demo.name} failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    pngs = list(Path(tmp_path).rglob("*.png"))
    assert pngs, f"{demo.name} wrote no figure"
    assert all(_is_png(p) for p in pngs)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    m = re.search(r"NNLOCAL_REQUIRE_TORCH=1 (python -m pytest[^\n`]*)", readme)
    assert m, "README must show the test command with NNLOCAL_REQUIRE_TORCH=1"
    assert "export NNLOCAL_REQUIRE_TORCH=1" in ci
    assert m.group(1).strip() in ci
    assert "torch==2.13.0" in ci


def test_library_never_imports_torch():
    """Only the benchmark modules (nnlocal/bench/) may import torch, and only inside functions."""
    offenders = []
    for p in (REPO / "nnlocal").rglob("*.py"):
        in_bench = p.parent.name == "bench"
        pattern = r"^(import torch|from torch)" if in_bench else r"^\s*(import torch|from torch)"
        if re.search(pattern, p.read_text(), re.M):
            offenders.append(str(p.relative_to(REPO)))
    assert not offenders, f"nnlocal/ must not import torch (nnlocal/bench/: only inside functions): {offenders}"
