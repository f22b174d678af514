"""The results store: one SQLite file (stdlib ``sqlite3``, WAL journal), written only by the client.

Schema (``PRAGMA user_version = 1``)::

    sweeps(name PRIMARY KEY, trial, spec_hash, spec JSON, axes JSON, description, created)
    trials(id, sweep -> sweeps.name, spec_hash, params JSON, seed, status 'done'|'failed',
           metrics JSON, error, seconds, host, pid, started, finished, attempts,
           UNIQUE(sweep, params, seed))
    runs(id, sweep, started, finished, workers, scheduler, submitted, done, failed, wall_seconds)

``params`` is the trial's full keyword arguments (fixed and grid values) as canonical JSON (sorted
keys), so the UNIQUE constraint identifies a trial. Each result is committed in its own
transaction as it arrives, with ``synchronous = FULL``: a committed trial is on disk, and killing
the client loses only the trials still running. A rerun skips ``done`` trials and runs ``failed``
ones again (the row is updated in place and ``attempts`` counts the runs); a ``done`` row is never
overwritten. A sweep name is bound to its spec hash: the same name with another spec is refused.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from .registry import SweepError
from .spec import Spec, canonical_json

__all__ = ["Store", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    name        TEXT PRIMARY KEY,
    trial       TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    spec        TEXT NOT NULL,
    axes        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id        INTEGER PRIMARY KEY,
    sweep     TEXT NOT NULL REFERENCES sweeps(name),
    spec_hash TEXT NOT NULL,
    params    TEXT NOT NULL,
    seed      INTEGER NOT NULL,
    status    TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    metrics   TEXT,
    error     TEXT,
    seconds   REAL,
    host      TEXT,
    pid       INTEGER,
    started   TEXT,
    finished  TEXT,
    attempts  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (sweep, params, seed)
);
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    sweep        TEXT NOT NULL REFERENCES sweeps(name),
    started      TEXT NOT NULL,
    finished     TEXT,
    workers      INTEGER,
    scheduler    TEXT,
    submitted    INTEGER NOT NULL,
    done         INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    wall_seconds REAL
);
"""

_UPSERT = """
INSERT INTO trials (sweep, spec_hash, params, seed, status, metrics, error, seconds, host, pid, started, finished)
VALUES (:sweep, :spec_hash, :params, :seed, :status, :metrics, :error, :seconds, :host, :pid, :started, :finished)
ON CONFLICT (sweep, params, seed) DO UPDATE SET
    status = excluded.status, metrics = excluded.metrics, error = excluded.error, seconds = excluded.seconds,
    host = excluded.host, pid = excluded.pid, started = excluded.started, finished = excluded.finished,
    attempts = trials.attempts + 1
WHERE trials.status = 'failed'
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _differences(old: dict, new: dict) -> list[str]:
    """Which parts of two canonical specs differ, e.g. ['seeds', 'grid.dt']."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(key)
    return out


class Store:
    """A sweep results file. ``Store(path)`` creates it; ``Store(path, create=False)`` requires it.

    Use it as a context manager (it closes the connection). Only one process should write a store:
    the client that runs the sweep.
    """

    def __init__(self, path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise SweepError(f"no sweep store at {self.path}")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0)
            self.conn.row_factory = sqlite3.Row
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SweepError(f"{self.path} was written by a newer nnlocal (store schema {version}, "
                                 f"this one reads {SCHEMA_VERSION})")
            if create or version:
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = FULL")
                self.conn.execute("PRAGMA foreign_keys = ON")
                with self.conn:
                    self.conn.executescript(_SCHEMA)
                    self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif not self._has_table("trials"):
                raise SweepError(f"{self.path} is not a sweep store (it has no trials table)")
        except sqlite3.DatabaseError as exc:
            raise SweepError(f"{self.path} is not a usable SQLite sweep store: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    # ---- sweeps ---------------------------------------------------------------------------------
    def begin_sweep(self, spec: Spec) -> None:
        """Record ``spec`` under its name, or check that the name was run with the same spec."""
        with self.conn:
            row = self.conn.execute("SELECT spec_hash, spec FROM sweeps WHERE name = ?", (spec.name,)).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO sweeps (name, trial, spec_hash, spec, axes, description, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (spec.name, spec.trial, spec.hash, canonical_json(spec.canonical()), json.dumps(spec.axes),
                     spec.description, _now()))
            elif row["spec_hash"] != spec.hash:
                changed = _differences(json.loads(row["spec"]), spec.canonical())
                raise SweepError(
                    f"the spec of sweep {spec.name!r} has changed since it was run into {self.path} "
                    f"(changed: {', '.join(changed) or 'unknown'}; stored hash {row['spec_hash'][:12]}, "
                    f"now {spec.hash[:12]}); refusing to mix results: give the changed sweep a new name "
                    "or use another --store")

    def sweeps(self) -> list[dict]:
        """Every sweep in the store: name, trial, spec_hash, spec (dict), axes, description, created."""
        rows = self.conn.execute("SELECT * FROM sweeps ORDER BY created, name").fetchall()
        return [{**dict(r), "spec": json.loads(r["spec"]), "axes": json.loads(r["axes"])} for r in rows]

    def sweep(self, name: str) -> dict:
        for s in self.sweeps():
            if s["name"] == name:
                return s
        names = ", ".join(s["name"] for s in self.sweeps()) or "none"
        raise SweepError(f"no sweep named {name!r} in {self.path} (sweeps there: {names})")

    # ---- trials ---------------------------------------------------------------------------------
    def statuses(self, sweep: str) -> dict[tuple[str, int], str]:
        """``{(params JSON, seed): 'done' | 'failed'}`` of every stored trial of ``sweep``."""
        rows = self.conn.execute("SELECT params, seed, status FROM trials WHERE sweep = ?", (sweep,))
        return {(r["params"], r["seed"]): r["status"] for r in rows}

    def record(self, spec: Spec, params_json: str, seed: int, result: dict) -> None:
        """Commit one trial's result (its own transaction). A done row is never overwritten."""
        metrics = None if result.get("metrics") is None else canonical_json(result["metrics"])
        with self.conn:
            self.conn.execute(_UPSERT, {
                "sweep": spec.name, "spec_hash": spec.hash, "params": params_json, "seed": int(seed),
                "status": result["status"], "metrics": metrics, "error": result.get("error"),
                "seconds": result.get("seconds"), "host": result.get("host"), "pid": result.get("pid"),
                "started": result.get("started"), "finished": result.get("finished")})

    def rows(self, sweep: str, status: str | None = None) -> list[dict]:
        """Stored trials of ``sweep`` with ``params`` and ``metrics`` decoded, in insertion order."""
        query, args = "SELECT * FROM trials WHERE sweep = ?", [sweep]
        if status is not None:
            query, args = query + " AND status = ?", args + [status]
        out = []
        for r in self.conn.execute(query + " ORDER BY id", args):
            d = dict(r)
            d["params"] = json.loads(d["params"])
            d["metrics"] = None if d["metrics"] is None else json.loads(d["metrics"])
            out.append(d)
        return out

    # ---- runs -----------------------------------------------------------------------------------
    def start_run(self, sweep: str, submitted: int, workers: int | None, scheduler: str | None) -> int:
        with self.conn:
            cur = self.conn.execute("INSERT INTO runs (sweep, started, workers, scheduler, submitted) "
                                    "VALUES (?, ?, ?, ?, ?)", (sweep, _now(), workers, scheduler, submitted))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, done: int, failed: int, wall_seconds: float) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished = ?, done = ?, failed = ?, wall_seconds = ? WHERE id = ?",
                              (_now(), done, failed, wall_seconds, run_id))

    def runs(self, sweep: str) -> list[dict]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs WHERE sweep = ? ORDER BY id", (sweep,))]

    # ---- progress -------------------------------------------------------------------------------
    def status(self) -> list[dict]:
        """One row per sweep: trials in the spec, done, failed, pending, and the last finished run."""
        out = []
        for s in self.sweeps():
            spec = s["spec"]
            total = len(spec["seeds"])
            for values in spec["grid"].values():
                total *= len(values)
            counts = dict(self.conn.execute("SELECT status, COUNT(*) FROM trials WHERE sweep = ? GROUP BY status",
                                            (s["name"],)).fetchall())
            done, failed = counts.get("done", 0), counts.get("failed", 0)
            last = self.conn.execute("SELECT * FROM runs WHERE sweep = ? AND finished IS NOT NULL "
                                     "ORDER BY id DESC LIMIT 1", (s["name"],)).fetchone()
            out.append({"sweep": s["name"], "trial": s["trial"], "trials": total, "done": done, "failed": failed,
                        "pending": total - done - failed,
                        "last run": "-" if last is None else
                        f"{last['finished']}, {last['submitted']} trials in {last['wall_seconds']:.1f} s on "
                        + (f"{last['workers']} worker(s)" if last["workers"] else str(last["scheduler"]))})
        return out
