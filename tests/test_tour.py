"""`nnlocal tour`: one quick run (shared by the tests of this module) and the runner's contracts.

The quick tour runs once per test session here (module-scoped fixture): what it prints, results.md,
index.md with a caption per figure, the figures themselves read back, and the time of each part.
"""
import contextlib
import importlib.util
import io
import re
import sys
import types
from pathlib import Path

import pytest

from nnlocal import cli, kernels
from nnlocal.report import format_seconds, machine_info, write_index
from nnlocal.tour import PARTS, Row, success_cell
from nnlocal.tour import runner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_tour(tmp_path_factory):
    """``nnlocal tour --quick`` once: (exit status, stdout, output folder)."""
    out = tmp_path_factory.mktemp("tour")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = cli.main(["tour", "--quick", "--out", str(out)])
    return rc, printed.getvalue(), out


def _figures(out):
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "index.md").read_text())


def _table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def test_tour_quick_runs_every_method_and_writes_valid_pngs(quick_tour):
    rc, printed, out = quick_tour
    assert rc == 0, printed
    table = (out / "results.md").read_text()
    for label, _ in PARTS:
        assert re.search(rf"^\| {re.escape(label)} ", table, re.M), f"no row for {label} in\n{table}"
    assert not re.search(r"^\|[^|]*\|[^|]*\| error ", table, re.M), f"a tour part failed:\n{table}"
    figures = _figures(out)
    assert len(figures) >= len(PARTS), f"expected a figure per part, index lists {figures}"
    for rel in figures:
        with open(out / rel, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC, f"{rel} is not a PNG"


def test_every_tour_figure_reads_back_at_a_readable_size(quick_tour):
    import matplotlib.image

    _, _, out = quick_tour
    for rel in _figures(out):
        image = matplotlib.image.imread(out / rel)
        height, width = image.shape[:2]
        assert image.ndim == 3 and image.shape[2] in (3, 4), (rel, image.shape)
        assert 300 <= height <= 1200 and 500 <= width <= 2000, (rel, image.shape)
        assert float(image[..., :3].std()) > 0.05, f"{rel} is (nearly) blank"


def test_every_tour_figure_has_a_caption_in_the_index(quick_tour):
    _, _, out = quick_tour
    index = (out / "index.md").read_text()
    for rel in _figures(out):
        name = rel.removesuffix(".png")
        section = index.split(f"### {name}\n", 1)[1].split(f"![{name}]", 1)[0].strip()
        assert len(section.split()) >= 8 and section.endswith("."), f"{name}: caption {section!r}"


def test_terminal_table_is_compact_and_the_full_table_is_in_results_md(quick_tour):
    _, printed, out = quick_tour
    lines = _table_lines(printed)
    assert lines, printed
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["method", "task", "metric", "nnlocal", "baseline"]
    widest = max(len(line) for line in lines)
    assert widest <= 120, f"the terminal table is {widest} characters wide:\n" + "\n".join(lines)
    full = _table_lines((out / "results.md").read_text().split("\n\n")[0])
    assert [c.strip() for c in full[0].strip("|").split("|")] == runner.FULL_COLUMNS
    assert len(lines) == len(full), "the terminal and results.md show different rows"


def test_each_part_time_is_shown_once(quick_tour):
    _, printed, out = quick_tour
    assert "seconds" not in _table_lines(printed)[0]
    for label, _ in PARTS:
        shown = [line for line in printed.splitlines() if re.match(rf"{re.escape(label)}\s+\d+(\.\d+)? s$", line)]
        assert len(shown) == 1, f"{label}: {shown}"
    results = (out / "results.md").read_text()
    times = _table_lines(results.split("Time per part")[1])
    assert [line.split("|")[1].strip() for line in times[2:]] == [label for label, _ in PARTS] + ["total"]
    seconds = [float(line.split("|")[2]) for line in times[2:]]
    assert all(s >= 0 for s in seconds) and seconds[-1] == pytest.approx(sum(seconds[:-1]), abs=0.2)


def test_tour_names_its_machine_in_a_footer(quick_tour):
    _, printed, out = quick_tour
    m = machine_info()
    for text in (printed, (out / "results.md").read_text(), (out / "index.md").read_text()):
        line = next(line for line in text.splitlines() if line.startswith("machine: "))
        for part in (m["cpu"], f"{m['cores']} cores", f"numpy {m['numpy']}", f"numba {m['numba']}",
                     f"{kernels.current()} kernels", "1 thread"):
            assert part in line, (part, line)
        assert "openblas" in line.lower() or "mkl" in line.lower() or "blas" in line.lower(), line
    assert (out / "results.md").read_text().rstrip().splitlines()[-1].startswith("machine: ")
    assert printed.index("machine: ") > printed.rindex("\n| "), printed    # a footer: after the table


@pytest.mark.parametrize("threads", [1, 2])
def test_the_runner_sets_one_thread_limit_for_every_part(tmp_path, monkeypatch, threads):
    import numba
    from threadpoolctl import threadpool_info

    seen = []

    def run(quick, out_dir, seed=0, progress=None):
        seen.append(({i["filepath"]: i["num_threads"] for i in threadpool_info()}, numba.get_num_threads()))
        return [Row("FAKE", "probe", "threads", numba.get_num_threads())], []

    monkeypatch.setitem(sys.modules, "nnlocal.tour._probe", types.SimpleNamespace(run=run))
    monkeypatch.setattr(runner, "PARTS", [("FAKE", "_probe"), ("FAKE2", "_probe")])
    before = numba.get_num_threads()
    with contextlib.redirect_stdout(io.StringIO()):
        _, ok = runner.run_tour(quick=True, out_dir=tmp_path, threads=threads)
    assert ok and len(seen) == 2
    for pools, numba_threads in seen:
        assert pools and set(pools.values()) == {threads}, pools
        assert numba_threads == min(threads, numba.config.NUMBA_NUM_THREADS)
    assert numba.get_num_threads() == before
    assert f"{threads} thread" in (tmp_path / "results.md").read_text()


def test_limit_threads_rejects_a_bad_count():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="limit_threads"), kernels.limit_threads(bad):
            pass


def test_success_cell_gives_the_wilson_interval():
    # Wilson 95 % interval of 5/20: [0.1119, 0.4690]; of 0/4: [0, 0.4899]; of 20/20: [0.8389, 1]
    assert success_cell(5, 20) == "5/20 (11-47 %)"
    assert success_cell(0, 4) == "0/4 (0-49 %)"
    assert success_cell(20, 20) == "20/20 (84-100 %)"


def test_butd_layer_names_say_which_layer_each_index_is():
    from nnlocal.methods import butd
    from nnlocal.tour.butd import layer_names

    core = butd.simple_core((1, 8, 8), channels=4, kernel_size=3, padding=1, pools=((2, 2), (2, 2)), rng=0)
    assert list(layer_names(core).values()) == ["0: conv1", "1: pool1", "2: conv2", "3: pool2", "5: fc1"]
    stats = butd.mask_stats(butd.task_masks(butd.TaskBUTDNet(core, 10, n_tasks=2, rng=1)))
    assert [r["unit"] for r in stats] == ["0", "1", "2", "3", "5"]
    assert "units" not in stats[0] and stats[-1]["neurons"] == 50


def test_format_seconds_never_prints_a_bare_zero_for_a_fast_run():
    assert [format_seconds(s) for s in (0.0431, 0.31, 0.999, 12.34, 59.97, 125.4)] == \
        ["0.043 s", "0.31 s", "1.0 s", "12.3 s", "1 min 00 s", "2 min 05 s"]


def test_write_index_puts_each_caption_under_its_figure_and_the_footer_last(tmp_path):
    figures = [tmp_path / "a.png", tmp_path / "b.png"]
    path = write_index(tmp_path, figures, {"T": "| x |"}, title="t", captions={"a": "Look at a."},
                       footer="machine: here")
    text = path.read_text()
    assert text.index("### a") < text.index("Look at a.") < text.index("![a](a.png)") < text.index("### b")
    assert "Look at a." not in text.split("### b")[1]
    assert text.rstrip().endswith("machine: here")
    assert text.count("machine: here") == 1


# The demos' figures: every figure a demo saves has a caption in the CAPTIONS it passes to write_index
DEMOS = sorted(p for p in (Path(__file__).resolve().parents[1] / "demos").glob("*.py"))


@pytest.mark.parametrize("demo", DEMOS, ids=[d.stem for d in DEMOS])
def test_every_demo_figure_has_a_caption(demo):
    source = demo.read_text()
    names = re.findall(r'save_figure\(fig, \w+, "([^"]+)"\)', source)
    assert names, f"{demo.name}: no save_figure call found"
    spec = importlib.util.spec_from_file_location(f"_demo_{demo.stem}", demo)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)          # defines CAPTIONS; main() runs only as a script
    missing = [n for n in names if len(module.CAPTIONS.get(n, "").split()) < 8]
    assert not missing, f"{demo.name}: no caption for {missing}"
    assert "captions=CAPTIONS" in source
