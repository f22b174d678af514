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

REPO = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC and path.stat().st_size > 1000


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


# ------------------------------------------------------------------------------------------- nnlocal sweep
SWEEP_SPEC = """[sweep]
name = "cli"
trial = "deep.logic_gate"
seeds = 2
[params]
epochs = 2
[grid]
model = ["deep", "asym_ep"]
"""


def _sweep_cli(argv, capsys):
    """Run ``nnlocal sweep ...`` in-process: (exit status, stdout, stderr)."""
    try:
        rc = cli.main(["sweep", *argv])
    except SystemExit as exc:     # argparse's own usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_one_line_error(rc, err, message):
    assert rc == 2, err
    assert message in _one_line_error(err), err


def test_sweep_without_dask_says_what_to_install():
    """The extra is missing: simulated by making `import dask.distributed` fail in a fresh interpreter."""
    code = ("import sys; sys.modules['dask.distributed'] = None; sys.modules['distributed'] = None\n"
            "from nnlocal.cli import main; sys.exit(main(['sweep', 'run', 'spec.toml']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    _assert_one_line_error(res.returncode, res.stderr, "")
    assert res.stderr == 'nnlocal: error: nnlocal sweep needs dask: pip install "nnlocal[sweep]"\n'
    assert res.stdout == ""


SWEEP_ERRORS = [
    (["run"], "needs a SPEC.toml"),
    (["run", "{tmp}/missing.toml"], "missing.toml not found"),
    (["run", "{spec:trial = \"deep.logic_gat\"}"], "unknown trial 'deep.logic_gat' (did you mean 'deep.logic_gate'?)"),
    (["run", "{spec:bta = 2.0}"], "[params] bta: unknown parameter of trial deep.logic_gate (did you mean 'beta'?)"),
    (["run", "{spec:epochs = \"two\"}"], "[params] epochs must be an integer"),
    (["run", "{spec:seeds = 0}"], "seeds must be a positive count"),
    (["run", "{spec}", "--workers", "0"], "--workers must be at least 1"),
    (["run", "{spec}", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument"),
    (["status", "{tmp}/none.sqlite"], "no sweep store at"),
    (["report", "{tmp}/none.sqlite"], "no sweep store at"),
    (["bogus"], "invalid choice: 'bogus'"),
]


@pytest.mark.parametrize("argv, message", SWEEP_ERRORS, ids=[" ".join(a)[:30] for a, _ in SWEEP_ERRORS])
def test_sweep_errors_are_one_line_with_exit_status_2(tmp_path, capsys, argv, message):
    pytest.importorskip("dask.distributed")

    def expand(arg):
        if arg.startswith("{spec"):
            text = SWEEP_SPEC
            if ":" in arg:   # an extra line, replacing the [sweep]/[params] key of the same name
                line = arg[6:-1]
                key = line.split("=")[0].strip()
                text = re.sub(rf"^{key} = .*$", line, text, flags=re.M) if re.search(rf"^{key} = ", text, re.M) \
                    else text.replace("[params]\n", f"[params]\n{line}\n")
            path = tmp_path / "spec.toml"
            path.write_text(text)
            return str(path)
        return arg.replace("{tmp}", str(tmp_path))

    rc, out, err = _sweep_cli([expand(a) for a in argv], capsys)
    _assert_one_line_error(rc, err, message)


def test_sweep_refuses_a_changed_spec(tmp_path, capsys):
    pytest.importorskip("dask.distributed")
    from nnlocal.sweep import Store, load_spec

    path = tmp_path / "spec.toml"
    path.write_text(SWEEP_SPEC)
    with Store(tmp_path / "s.sqlite") as store:
        store.begin_sweep(load_spec(path))
    path.write_text(SWEEP_SPEC.replace("epochs = 2", "epochs = 3"))
    rc, out, err = _sweep_cli(["run", str(path), "--store", str(tmp_path / "s.sqlite")], capsys)
    _assert_one_line_error(rc, err, "the spec of sweep 'cli' has changed")
    assert "changed: params.epochs" in err


def test_sweep_list_names_every_trial_and_its_params():
    pytest.importorskip("dask.distributed")
    # a fresh process: other tests register the test-only trials in this one
    res = subprocess.run([sys.executable, "-m", "nnlocal.cli", "sweep", "run", "--list"], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    out = res.stdout
    assert res.returncode == 0, res.stderr
    for name in ("deep.logic_gate", "eqprop.classify", "arp.mlp", "kwta.sdr", "pan.lenet5_vs_tron",
                 "butd.counter_hebb", "butd.multitask"):
        assert re.search(rf"^{re.escape(name)}: ", out, re.M), out
    assert "model=\"deep\" {deep|deep_oh|asym_ep}" in out and "dataset=\"digits\"" in out
    assert "test." not in out      # the test-only trials are not registered by default


def test_sweep_commands_have_help():
    for command in (["sweep"], ["sweep", "run"], ["sweep", "status"], ["sweep", "report"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(command + ["--help"])
        assert exc.value.code == 0


def test_ci_installs_the_sweep_extra_with_the_test_extra():
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test,sweep]"' in ci
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^sweep = \[.*"dask\[distributed\]', pyproject, re.M)


def test_the_repository_stands_on_its_own():
    """Users do not have the development folder ../shared: nothing a user reads points at it."""
    pattern = re.compile(r"\.\./shared|shared/(spec|seeds|data|API\.md)")
    offenders = []
    for path in [REPO / "README.md", *(REPO / "docs").rglob("*.md"), *(REPO / "docs").rglob("*.py"),
                 *(REPO / "nnlocal").rglob("*.py"), *(REPO / "demos").rglob("*.py")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{n}")
    assert not offenders, f"references to ../shared: {offenders}"


def test_every_relative_link_in_the_readme_and_docs_resolves():
    offenders = []
    for md in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        for m in re.finditer(r"\]\(([^)#\s]+)(#[^)]*)?\)", md.read_text(encoding="utf-8")):
            target = m.group(1)
            if "://" not in target and not (md.parent / target).exists():
                offenders.append(f"{md.relative_to(REPO)} -> {target}")
    assert not offenders, f"broken links: {offenders}"
