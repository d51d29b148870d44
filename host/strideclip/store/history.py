"""The session history: every recorded session catalogued in an embedded SQLite database.

One row per clip session (``session_key``: the clip's id and session number with the host's start
time), not per file: importing a folder twice, the same log under two names, a truncated copy or a
log that grew since keeps one row, made from the longest copy. A row holds
who ran, with which clip, when, for how long, the session's summary metrics (the medians
``strideclip replay --json`` prints), its cues and the fatigue onset. What a log cannot say -
distance, shoes, surface, tags - is given at import or edited later.

Weekly trends and the training-load rule are computed from these rows (``weekly``): a week is
an ISO week (Monday to Sunday, UTC); the load is running time, and a week whose running time
rises more than ``load_rise_pct`` (default 10 %) over the previous week is flagged - the
"10 % rule" of running coaches (see docs/history.md for what is known of it).

The database is checked on open (``PRAGMA quick_check``): a damaged one raises ``HistoryDamaged``,
whose message names the file and ``strideclip history repair`` (strideclip.store.history_repair). Each
log's row is written in one transaction, taken at once and keyed by the session, so concurrent
imports queue behind the busy timeout instead of failing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from strideclip.analysis.fatigue import prior_from_history
from strideclip.coaching.cadence_plan import START_SPM_RANGE, target_spm
from strideclip.errors import HistoryError, StrideClipError
from strideclip.store.history_db import HistoryDatabase, default_path
from strideclip.store.history_logs import (METRIC_COLUMNS, WATCH_S, being_written, file_sha256, log_files,
                                           session_key, session_row, why_not_read)

LOAD_RISE_PCT = 10.0
BASELINE_SESSIONS = 5  # a cross-session baseline is the median of this many latest sessions
USER_COLUMNS = ("athlete", "distance_m", "shoes", "surface", "tags")  # given or edited: a re-import keeps them


@dataclass
class ImportResult:
    imported: list = field(default_factory=list)  # (path, session id)
    replaced: list = field(default_factory=list)  # (path, session id): a longer log of a known session
    already: list = field(default_factory=list)  # (path, session id): the session is known from as long a log
    bad: list = field(default_factory=list)  # (path, why)
    writing: list = field(default_factory=list)  # (path, why): still being written, not imported


class History(HistoryDatabase):
    """The catalogue: import logs, edit what a log cannot know, and the queries (sessions,
    baselines, the cadence plan, weekly trends and the load rule)."""

    # --- import -------------------------------------------------------------------------------
    def import_paths(self, paths: Iterable[str | Path], *, athlete: str | None = None, shoes: str | None = None,
                     surface: str | None = None, tags: tuple = (), distance_km: float | None = None,
                     cue_settings: dict | None = None, watch_s: float = WATCH_S) -> ImportResult:
        """Import session logs (files, or folders searched for *.sclog): see ``import_log``.

        A log modified in the last RECENT_S seconds is watched for ``watch_s`` (0: not watched,
        for a recorder that has just closed its logs); one that changes meanwhile is still being
        written and is not imported (``writing``)."""
        given = {"athlete": athlete, "shoes": shoes, "surface": surface, "tags": ",".join(tags) or None,
                 "distance_m": distance_km * 1000 if distance_km else None}
        given = {k: v for k, v in given.items() if v is not None}
        result = ImportResult()
        files = log_files(paths)
        writing = being_written(files, watch_s)
        for path in files:
            if path in writing:
                result.writing.append((path, f"{path}: still being written (it grew while watched); "
                                             "import it again once the recording has ended"))
                continue
            outcome, value = self.import_log(path, given=given, cue_settings=cue_settings)
            getattr(result, outcome).append((path, value))
        return result

    def import_log(self, path: Path, *, given: dict | None = None, cue_settings: dict | None = None,
                   session_id: int | None = None) -> tuple[str, int | str]:
        """Import one log: ("imported" | "replaced" | "already", session id) or ("bad", why).

        A session (``session_key``) already known from as long a log is left as it is; a longer
        log of it replaces the row, keeping what was given or edited. ``given``: values of
        USER_COLUMNS; ``session_id``: the id a new row gets (`history repair` keeps the old ones)."""
        given = given or {}
        try:
            size, sha, key = path.stat().st_size, file_sha256(path), session_key(path)
        except (StrideClipError, OSError) as e:
            return "bad", why_not_read(path, e)
        known = self._read("SELECT id, log_sha256, log_bytes FROM sessions WHERE session_key=?", (key,))
        if known and (known[0]["log_sha256"] == sha or (known[0]["log_bytes"] is not None
                                                         and known[0]["log_bytes"] >= size)):
            return "already", known[0]["id"]
        try:
            row = session_row(path, cue_settings=cue_settings)  # the slow part: outside the transaction
        except (StrideClipError, OSError) as e:
            return "bad", why_not_read(path, e)
        row.update(given, session_key=key, log_sha256=sha, log_bytes=size)
        if session_id is not None:
            row["id"] = session_id
        kept = [c for c in USER_COLUMNS if c not in given]
        cols = list(row)
        with self._write():  # one statement per log, so a concurrent import of the same session cannot clash
            existed = self.db.execute("SELECT 1 FROM sessions WHERE session_key=?", (key,)).fetchone()
            self.db.execute(
                f"INSERT INTO sessions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                f"ON CONFLICT (session_key) DO UPDATE SET "
                + ", ".join(f"{c}=excluded.{c}" for c in cols if c not in kept and c != "id")
                + " WHERE excluded.log_bytes > COALESCE(sessions.log_bytes, -1)",  # only a longer log replaces
                tuple(row.values()))
            changed = self.db.execute("SELECT changes()").fetchone()[0]
            sid = self.db.execute("SELECT id FROM sessions WHERE session_key=?", (key,)).fetchone()[0]
        if not existed:
            return "imported", sid
        return ("replaced" if changed else "already"), sid

    def edit(self, session_id: int, *, distance_km: float | None = None, shoes: str | None = None,
             surface: str | None = None, tags: tuple | None = None, athlete: str | None = None) -> None:
        changes = {"distance_m": distance_km * 1000 if distance_km is not None else None, "shoes": shoes,
                   "surface": surface, "tags": ",".join(tags) if tags is not None else None, "athlete": athlete}
        changes = {k: v for k, v in changes.items() if v is not None}
        if not self.session(session_id):
            raise HistoryError(f"no session {session_id} in {self.path}")
        if changes:
            with self._write():
                self.db.execute(f"UPDATE sessions SET {', '.join(f'{k}=?' for k in changes)} WHERE id=?",
                                (*changes.values(), session_id))

    # --- queries ------------------------------------------------------------------------------
    def session(self, session_id: int) -> dict | None:
        rows = self._read("SELECT * FROM sessions WHERE id=?", (session_id,))
        return dict(rows[0]) if rows else None

    def session_for_log(self, path: str | Path) -> dict | None:
        """The row of the log's session (made from this log or another copy of it)."""
        try:
            key = session_key(Path(path))
        except (StrideClipError, OSError):
            return None
        rows = self._read("SELECT * FROM sessions WHERE session_key=?", (key,))
        return dict(rows[0]) if rows else None

    def sessions(self, athlete: str | None = None, *, before: str | None = None) -> list[dict]:
        """Sessions in time order (optionally one athlete's, optionally only those started before)."""
        sql, args = "SELECT * FROM sessions WHERE 1=1", []
        if athlete:
            sql, args = sql + " AND athlete=?", [athlete]
        if before:
            sql, args = sql + " AND started_at<?", [*args, before]
        return [dict(r) for r in self._read(sql + " ORDER BY started_at, id", args)]

    def athletes(self) -> list[str]:
        return [r[0] for r in self._read("SELECT DISTINCT athlete FROM sessions ORDER BY athlete")]

    def baseline(self, athlete: str, *, before: str | None = None, n: int = BASELINE_SESSIONS) -> dict | None:
        """The athlete's usual form: per metric, the median of their latest ``n`` sessions'
        medians (sessions with running only). None without such a session."""
        rows = [r for r in self.sessions(athlete, before=before) if r["running_steps"]][-n:]
        if not rows:
            return None
        out = {"sessions": len(rows)}
        for col in METRIC_COLUMNS:
            v = [r[col] for r in rows if r[col] is not None]
            out[col] = float(np.median(v)) if v else None
        return out

    def plan_target_spm(self, athlete: str, on: dt.date) -> dict | None:
        """The cadence plan from the athlete's history: it starts at their first running
        session's cadence on that day (strideclip.coaching.cadence_plan); a session whose median
        is not a running cadence (a few steps of a short recording) cannot start it."""
        low, high = START_SPM_RANGE
        first = next((r for r in self.sessions(athlete)
                      if r["running_steps"] and r["cadence_spm"] and low <= r["cadence_spm"] <= high), None)
        if first is None:
            return None
        start = dt.date.fromisoformat(first["started_at"][:10])
        return {"start_spm": first["cadence_spm"], "since": start.isoformat(), "on": on.isoformat(),
                "target_spm": target_spm(first["cadence_spm"], start, on)}

    def weekly(self, athlete: str, *, load_rise_pct: float = LOAD_RISE_PCT) -> list[dict]:
        """One row per ISO week from the athlete's first session to their last: sessions,
        running time, steps, medians, the change in running time and the load warning."""
        rows = self.sessions(athlete)
        if not rows:
            return []
        by_week: dict = {}
        for r in rows:
            by_week.setdefault(_week_start(r["started_at"]), []).append(r)
        weeks, out = sorted(by_week), []
        week, prev_running_min = weeks[0], None
        while week <= weeks[-1]:
            rs = by_week.get(week, [])
            running_min = sum(r["running_s"] for r in rs) / 60
            w = {"week": week.isoformat(), "iso_week": "%d-W%02d" % week.isocalendar()[:2], "sessions": len(rs),
                 "running_min": round(running_min, 1), "steps": sum(r["steps"] for r in rs),
                 "distance_km": round(sum(r["distance_m"] or 0 for r in rs) / 1000, 2)}
            for col in METRIC_COLUMNS:  # weighted by running steps: a long run counts for more
                vals = [(r[col], r["running_steps"]) for r in rs if r[col] is not None and r["running_steps"]]
                w[col] = round(float(np.average([v for v, _ in vals], weights=[k for _, k in vals])), 2) if vals else None
            w["load_change_pct"] = (round(100 * (running_min / prev_running_min - 1), 1)
                                    if prev_running_min else None)
            w["load_warning"] = bool(w["load_change_pct"] is not None and w["load_change_pct"] > load_rise_pct)
            out.append(w)
            prev_running_min = running_min
            week += dt.timedelta(days=7)
        return out


def catalogue(paths: Iterable[str | Path], db_path: str | Path | None = None) -> tuple[ImportResult, Path] | None:
    """Add freshly recorded logs to the history (docs/history.md): those that exist, not watched
    (their writers have closed them). The result and the database's path; None when none of them
    exists. Raises HistoryError or OSError: the caller says so, and the recording stands."""
    paths = [Path(p) for p in paths if Path(p).exists()]
    if not paths:
        return None
    with History(db_path) as h:
        return h.import_paths(paths, watch_s=0), h.path


class PriorFor(Protocol):
    """``athlete_priors``' answer: an athlete's usual form (``prior_from_history``), None without one."""

    unusable: bool  # the history could not be read (said once, through ``warn``)

    def __call__(self, athlete: str) -> dict | None: ...


def athlete_priors(db_path: str | Path | None = None, *, before: str | None = None,
                   warn: Callable[[str], None] = print) -> PriorFor:
    """prior_for(athlete): their usual form from the history (None without one), for the fatigue
    state (strideclip.analysis.fatigue.prior_from_history). A history that cannot be read is said
    through ``warn`` and sets ``prior_for.unusable``."""
    def prior_for(athlete: str):
        if db_path is None and not default_path().exists():
            return None
        try:
            with History(db_path) as h:
                return prior_from_history(h.baseline(athlete, before=before))
        except HistoryError as e:
            warn(f"history not used: {e}")
            prior_for.unusable = True
            return None

    prior_for.unusable = False  # set once the history could not be read: nothing more to say of it
    return prior_for


def _week_start(started_at: str) -> dt.date:
    d = dt.date.fromisoformat(started_at[:10])
    return d - dt.timedelta(days=d.weekday())
