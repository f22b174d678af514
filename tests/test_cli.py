"""The front door: `nnlocal tour --quick`, `nnlocal bench`, `nnlocal datasets`, the demos, CI wiring."""
import re
import subprocess
import sys
from pathlib import Path

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


def test_bench_prints_a_ratio(tmp_path, capsys):
    pytest.importorskip("torch")
    rc = cli.main(["bench", "kwta", "--repeat", "1", "--quick", "--dir", str(REPO / "benchmarks"),
                   "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"ratio \d", printed), printed
    assert (tmp_path / "bench.csv").read_text().startswith("benchmark,")


def test_datasets_command_reports_each_dataset(capsys):
    assert cli.main(["datasets"]) == 0
    printed = capsys.readouterr().out.lower()
    for name in ("digits", "mnist", "fashion-mnist", "cifar10"):
        assert name in printed


def test_every_command_has_help():
    for command in ([], ["tour"], ["bench"], ["datasets"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(command + ["--help"])
        assert exc.value.code == 0


DEMOS = sorted((REPO / "demos").glob("*.py"))


@pytest.mark.parametrize("demo", DEMOS, ids=[d.stem for d in DEMOS])
def test_demo_help(demo):
    res = subprocess.run([sys.executable, str(demo), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "--dataset" in res.stdout or "--seeds" in res.stdout


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
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "nnlocal").rglob("*.py")
                 if re.search(r"^\s*(import torch|from torch)", p.read_text(), re.M)]
    assert not offenders, f"nnlocal/ must not import torch: {offenders}"


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
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("nnlocal: error: "), err
    assert message in err, err


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
