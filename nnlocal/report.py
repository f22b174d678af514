"""Results tables and figures shared by the demos, the tour and the benchmarks.

* :func:`format_table` / :func:`print_table` render a list of dict rows as an aligned text table
  (also valid Markdown).
* :func:`save_figure` writes a matplotlib figure as PNG (Agg backend, no display needed) and closes it.
* :func:`write_index` writes ``index.md`` in an output folder: the tables, then every figure with a
  one-sentence caption saying what to look at.
* :func:`format_seconds` writes a duration readably at any size (0.043 s, 12.3 s, 2 min 05 s).
* :func:`mean_std` writes a number over seeds as ``mean ± sample std``.
* :func:`machine_info` / :func:`machine_summary` say which machine and libraries produced a number
  (every printed benchmark table and the tour's footer name them).
"""
from __future__ import annotations

import functools
import importlib.metadata
import math
import os
import platform
from pathlib import Path

import numpy as np

from ._files import atomic_write, write_text

__all__ = ["format_table", "print_table", "save_figure", "write_index", "write_text", "new_figure", "format_seconds",
           "mean_std", "machine_info", "machine_summary"]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), columns in first-seen order unless given."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = []
        for r in rows:
            columns.extend(k for k in r if k not in columns)
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def print_table(rows: list[dict], columns: list[str] | None = None, title: str | None = None) -> str:
    text = format_table(rows, columns)
    if title:
        print(f"\n{title}")
    print(text)
    return text


def new_figure(*args, **kwargs):
    """``plt.subplots`` on the non-interactive Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, out_dir, name: str) -> Path:
    """Save ``fig`` as ``out_dir/name.png`` (atomically) and close it; returns the path."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.tight_layout()
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def write_index(out_dir, figures, tables: dict[str, str] | None = None, title: str = "nnlocal results",
                captions: dict[str, str] | None = None, footer: str | None = None) -> Path:
    """Write ``out_dir/index.md``: the tables, then every figure as an image link under its caption.

    ``captions`` maps a figure's name (its file name without ``.png``) to one or two sentences on
    what to look at; ``footer`` (e.g. the machine line) closes the page.
    """
    out_dir = Path(out_dir)
    captions = captions or {}
    lines = [f"# {title}", ""]
    for heading, table in (tables or {}).items():
        lines += [f"## {heading}", "", table, ""]
    lines += ["## Figures", ""]
    for fig in figures:
        name, rel = Path(fig).stem, os.path.relpath(fig, out_dir)
        lines += [f"### {name}", ""] + ([captions[name], ""] if captions.get(name) else [])
        lines += [f"![{name}]({rel})", ""]
    if footer:
        lines += ["---", "", footer, ""]
    path = out_dir / "index.md"
    write_text(path, "\n".join(lines))
    return path


def format_seconds(seconds: float) -> str:
    """A duration for people: ``0.043 s``, ``0.31 s``, ``12.3 s``, ``2 min 05 s`` (two significant digits
    below a second, so a fast run never reads ``0 s``)."""
    if seconds < 0.995:
        return f"{seconds:.2g} s"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def mean_std(values, digits: int = 2, scale: float = 1.0) -> str:
    """``"mean ± std"`` of ``scale * values`` with the sample standard deviation (ddof = 1), the way
    every table over seeds reports a number; one value prints alone (one seed has no spread)."""
    v = scale * np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("mean_std: no values")
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if v.size > 1 else f"{v[0]:.{digits}f}"


#: (cpuinfo flag, name) of the vector extensions, widest first: the first one present is named
_SIMD = [("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("asimd", "NEON")]


def _cpu_model() -> str:
    """The CPU's model name with its widest vector extensions, e.g. "Intel(R) Xeon(R) Processor (AVX-512, AMX)"."""
    model, flags = None, set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model is None:
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    simd = [name for flag, name in _SIMD if flag in flags][:1] + (["AMX"] if "amx_tile" in flags else [])
    return f"{model} ({', '.join(simd)})" if simd else model


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _library_owner(filepath) -> str:
    """The package bundling a shared library: ``site-packages/numpy.libs/x.so`` -> "numpy",
    ``site-packages/torch/lib/x.so`` -> "torch"; "system" outside site-packages."""
    parts = Path(filepath or "").parts
    for i, part in enumerate(parts[:-2]):
        if part in ("site-packages", "dist-packages"):
            return parts[i + 1].removesuffix(".libs")
    return "system"


@functools.lru_cache(maxsize=1)
def machine_info() -> dict:
    """The machine and library versions a measurement ran on (never imports torch).

    Keys: ``cpu`` (model name and widest vector extension), ``cores`` (logical CPUs), ``python``,
    ``numpy``, ``numba``, ``torch`` (installed version or None), ``blas`` (each BLAS/OpenMP library
    threadpoolctl finds loaded: its API, version, kernel architecture and the package bundling it).
    Cached: the first call decides which libraries are listed, so call it after the imports.
    """
    from threadpoolctl import threadpool_info

    import numpy as np

    blas = [" ".join(filter(None, [i.get("internal_api", i.get("user_api")), i.get("version")])) + " ("
            + ", ".join(filter(None, [i.get("architecture"), _library_owner(i.get("filepath"))])) + ")"
            for i in threadpool_info()]
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": _version("numba"), "torch": _version("torch"),
            "blas": "; ".join(blas) or "none found"}


def machine_summary(torch: bool = True) -> str:
    """One line naming the machine: CPU model, cores, numpy/BLAS (kernel), numba and torch versions."""
    m = machine_info()
    text = (f"{m['cpu']}, {m['cores']} cores; Python {m['python']}, numpy {m['numpy']}; BLAS/OpenMP: {m['blas']}; "
            f"numba {m['numba']}")
    if torch:
        text += f"; torch {m['torch'] or 'not installed'}"
    return text
