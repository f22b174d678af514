"""Sweep specs: a TOML file naming a trial, its seeds, fixed parameters and a grid.

::

    [sweep]
    name = "deep-xor"            # letters, digits, '.', '_' and '-'
    trial = "deep.logic_gate"    # a registered trial (`nnlocal sweep run --list`)
    seeds = 100                  # 0..99, or an explicit list such as [3, 7, 11]
    imports = []                 # optional: modules that register more trials (importable on the workers)
    description = "..."          # optional, shown in the report

    [params]                     # fixed keyword arguments of the trial
    gate = "XOR"

    [grid]                       # every combination of these values is run, for every seed
    dt = [0.05, 0.1]
    beta = [5.0, 10.0]

Everything is checked when the spec is read, before anything runs: unknown tables or keys, the
trial name, every parameter name against the trial's signature, value types against the defaults,
declared choices, empty or repeated grid values, and the seeds. All problems are reported together
in one :class:`~nnlocal.sweep.SweepError`.

A spec's identity is :attr:`Spec.hash`, the SHA-256 of its canonical JSON (sorted keys, the seeds
as a list, integers given for float parameters written as floats), so ``seeds = 3`` and
``seeds = [0, 1, 2]`` are the same sweep, and so are ``beta = 10`` and ``beta = 10.0``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import re
from pathlib import Path

from .registry import SweepError, Trial, get_trial

__all__ = ["Spec", "load_spec", "parse_spec", "canonical_json"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SWEEP_KEYS = {"name", "trial", "seeds", "imports", "description"}
_SCALARS = (bool, int, float, str)


def canonical_json(obj) -> str:
    """Compact JSON with sorted keys: one spelling per value (the store's keys and the spec hash)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated sweep: ``trials()`` lists every (params, seed) it runs."""

    name: str
    trial: str
    seeds: tuple[int, ...]
    params: dict                       # fixed parameters
    grid: dict                         # axis -> list of values, in the file's order
    imports: tuple[str, ...] = ()
    description: str = ""
    source: str = "<spec>"

    def canonical(self) -> dict:
        """What defines the sweep (its hash is over this): not the description, not the axis order."""
        return {"name": self.name, "trial": self.trial, "seeds": list(self.seeds), "params": self.params,
                "grid": self.grid, "imports": list(self.imports)}

    @property
    def hash(self) -> str:
        return hashlib.sha256(canonical_json(self.canonical()).encode()).hexdigest()

    @property
    def axes(self) -> list[str]:
        return list(self.grid)

    def cells(self) -> list[dict]:
        """Every combination of the grid values (one empty cell without a grid), first axis slowest."""
        return [dict(zip(self.grid, combo)) for combo in itertools.product(*self.grid.values())]

    def trials(self) -> list[tuple[dict, int]]:
        """Every ``(params, seed)`` of the sweep, seed by seed, so a partial run covers every cell evenly."""
        cells = [{**self.params, **cell} for cell in self.cells()]
        return [(params, seed) for seed in self.seeds for params in cells]

    def __len__(self) -> int:
        return len(self.seeds) * len(self.cells())


def _toml():
    try:
        import tomllib
    except ModuleNotFoundError:   # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise SweepError('reading a sweep spec on Python 3.10 needs tomli: pip install "nnlocal[sweep]"') \
                from None
    return tomllib


def load_spec(path) -> Spec:
    """Read and validate the TOML spec at ``path``."""
    path = Path(path)
    tomllib = _toml()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"spec file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read the spec file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, source=str(path))


# ------------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------------

def _is_value(v) -> bool:
    """A TOML scalar, or a list of them (e.g. hidden sizes); no tables, no dates."""
    if isinstance(v, list):
        return all(isinstance(x, _SCALARS) for x in v)
    return isinstance(v, _SCALARS)


def _normalise(value, types: tuple):
    """Integers given for a float parameter become floats (so 10 and 10.0 are one trial)."""
    if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _seeds(value, problems: list) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            problems.append(f"[sweep] seeds must be a positive count or a list of seeds, got {value}")
            return ()
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if any(s < 0 for s in value):
            problems.append("[sweep] seeds must be non-negative")
        if len(set(value)) != len(value):
            dup = sorted({s for s in value if value.count(s) > 1})
            problems.append(f"[sweep] seeds repeat {dup}")
        return tuple(value)
    problems.append(f"[sweep] seeds must be a positive count or a non-empty list of integers, got {value!r}")
    return ()


def _check_params(trial: Trial, params: dict, grid: dict, problems: list) -> None:
    for table, entries in (("params", params), ("grid", grid)):
        for key in entries:
            if key == "seed":
                problems.append(f"[{table}] seed: seeds are set by [sweep] seeds, not as a parameter")
            elif key not in trial.params:
                close = difflib.get_close_matches(key, trial.params, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"[{table}] {key}: unknown parameter of trial {trial.name}{hint}; "
                                f"its parameters: {', '.join(trial.params)}")
    for table, entries in (("params", params), ("grid", grid)):
        for key, values in entries.items():
            for v in ([values] if table == "params" else values) if key in trial.params else ():
                problem = trial.accepts(key, v)
                if problem:
                    problems.append(f"[{table}] {key} {problem}" if problem.startswith("must")
                                    else f"[{table}] {key} = {problem}")


def parse_spec(data: dict, source: str = "<spec>") -> Spec:
    """Validate a spec given as a dict (a parsed TOML document); raises one :class:`SweepError` that
    lists every problem."""
    problems: list[str] = []
    for table in data:
        if table not in ("sweep", "params", "grid"):
            problems.append(f"unknown table [{table}] (a spec has [sweep], [params] and [grid])")
    sweep, params, grid = data.get("sweep"), data.get("params", {}), data.get("grid", {})
    if not isinstance(sweep, dict):
        raise SweepError(f"{source}: a [sweep] table with name, trial and seeds is required")
    for table, value in (("params", params), ("grid", grid)):
        if not isinstance(value, dict):
            raise SweepError(f"{source}: [{table}] must be a table")
    for key in sweep:
        if key not in _SWEEP_KEYS:
            problems.append(f"[sweep] {key}: unknown key (expected {', '.join(sorted(_SWEEP_KEYS))})")
    for key in ("name", "trial", "seeds"):
        if key not in sweep:
            problems.append(f"[sweep] {key} is missing")
    name, trial_name = sweep.get("name", ""), sweep.get("trial", "")
    if "name" in sweep and (not isinstance(name, str) or not _NAME.match(name)):
        problems.append(f"[sweep] name must be letters, digits, '.', '_' or '-' (starting with a letter or "
                        f"digit), got {name!r}")
    if "trial" in sweep and not isinstance(trial_name, str):
        problems.append(f"[sweep] trial must be a string, got {trial_name!r}")
    seeds = _seeds(sweep["seeds"], problems) if "seeds" in sweep else ()
    imports = sweep.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(m, str) and m for m in imports):
        problems.append(f"[sweep] imports must be a list of module names, got {imports!r}")
        imports = []
    description = sweep.get("description", "")
    if not isinstance(description, str):
        problems.append("[sweep] description must be a string")
        description = ""

    for key, value in params.items():
        if not _is_value(value):
            problems.append(f"[params] {key}: expected a number, bool, string or a list of them, got {value!r}")
    for key, values in grid.items():
        if not isinstance(values, list):
            problems.append(f"[grid] {key} must be a list of values, got {values!r} "
                            "(a single value belongs in [params])")
        elif not values:
            problems.append(f"[grid] {key} is empty: give at least one value")
        elif not all(_is_value(v) for v in values):
            problems.append(f"[grid] {key}: values must be numbers, bools, strings or lists of them")
        elif len({canonical_json(v) for v in values}) != len(values):
            problems.append(f"[grid] {key} repeats a value: {values!r}")
        if key in params:
            problems.append(f"{key} is both in [params] and in [grid]")
    grid = {k: v for k, v in grid.items() if isinstance(v, list)}

    if isinstance(trial_name, str) and trial_name:
        try:
            trial = get_trial(trial_name, imports)
        except SweepError as exc:
            problems.append(str(exc))
        else:
            _check_params(trial, params, grid, problems)
            if not problems:
                params = {k: _normalise(v, trial.types[k]) for k, v in params.items()}
                grid = {k: [_normalise(v, trial.types[k]) for v in vs] for k, vs in grid.items()}
    if problems:
        raise SweepError(f"{source}: " + "; ".join(problems))
    return Spec(name=name, trial=trial_name, seeds=seeds, params=dict(params), grid=dict(grid),
                imports=tuple(imports), description=description, source=source)
