"""The session history: every recorded session catalogued in an embedded SQLite database.

One row per session log, keyed by the SHA-256 of the file, so importing a folder twice (or the
same log under two names, e.g. synced from the clip and copied by hand) adds it once. A row holds
who ran, with which clip, when, for how long, the session's summary metrics (the medians
``strideclip replay --json`` prints), its cues and the fatigue onset. What a log cannot say -
distance, shoes, surface, tags - is given at import or edited later.

Weekly trends and the training-load rule are computed from these rows (``weekly``): a week is
an ISO week (Monday to Sunday, UTC); the load is running time, and a week whose running time
rises more than ``load_rise_pct`` (default 10 %) over the previous week is flagged - the
"10 % rule" of running coaches (see docs/history.md for what is known of it).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from strideclip.cadence_plan import target_spm
from strideclip.errors import StrideClipError

SCHEMA_VERSION = 1
LOAD_RISE_PCT = 10.0
BASELINE_SESSIONS = 5  # a cross-session baseline is the median of this many latest sessions

# Session summary keys kept as columns (the rest stays in summary_json).
METRIC_COLUMNS = {
    "cadence_spm": "cadence_spm_median",
    "peak_vertical_g": "peak_vertical_g_median",
    "peak_vgrf_bw": "peak_vgrf_bw_median",
    "contact_ms": "contact_ms_median",
    "pelvic_rotation_deg": "pelvic_rotation_deg_median",
    "pelvic_drop_deg": "pelvic_drop_deg_median",
    "pelvic_tilt_deg": "pelvic_tilt_deg_median",
}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    log_sha256 TEXT NOT NULL UNIQUE,
    log_path TEXT NOT NULL,
    athlete TEXT NOT NULL,
    clip TEXT,
    source TEXT,
    started_at TEXT NOT NULL,        -- ISO 8601, UTC
    started_from TEXT NOT NULL,      -- 'log', 'given' or 'file time' (a clip's flash log has no calendar)
    duration_s REAL NOT NULL,
    running_s REAL NOT NULL,         -- time spent in running steps
    steps INTEGER NOT NULL,
    running_steps INTEGER NOT NULL,
    distance_m REAL,
    shoes TEXT,
    surface TEXT,
    tags TEXT NOT NULL DEFAULT '',   -- comma-separated
    {", ".join(f"{c} REAL" for c in METRIC_COLUMNS)},
    cues INTEGER NOT NULL,
    fatigue_onset_s REAL,
    log_damage TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_athlete ON sessions (athlete, started_at);
"""


class HistoryError(StrideClipError):
    """The history database cannot be used (wrong file, newer schema, unknown session)."""


def default_path() -> Path:
    """$STRIDECLIP_HISTORY, else history.sqlite in the user's data directory."""
    if os.environ.get("STRIDECLIP_HISTORY"):
        return Path(os.environ["STRIDECLIP_HISTORY"])
    import platformdirs

    return Path(platformdirs.user_data_dir("strideclip", appauthor=False)) / "history.sqlite"


@dataclass
class ImportResult:
    imported: list = field(default_factory=list)  # (path, session id)
    already: list = field(default_factory=list)  # (path, session id) known by content
    bad: list = field(default_factory=list)  # (path, why)


class History:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path)
            self.db.row_factory = sqlite3.Row
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"{self.path}: not a StrideClip history database ({e})") from None
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            self.db.commit()
        elif int(row[0]) > SCHEMA_VERSION:
            raise HistoryError(f"{self.path}: history schema {row[0]} is newer than this strideclip ({SCHEMA_VERSION})")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- import -------------------------------------------------------------------------------
    def import_paths(self, paths, *, athlete: str | None = None, shoes: str | None = None,
                     surface: str | None = None, tags: tuple = (), distance_km: float | None = None,
                     cue_settings: dict | None = None) -> ImportResult:
        """Import session logs (files, or folders searched for *.sclog). Bad logs are reported
        in ``bad`` and skipped; known ones (same bytes) are left as they are."""
        result = ImportResult()
        for path in _log_files(paths):
            sha = _sha256(path)
            known = self.db.execute("SELECT id FROM sessions WHERE log_sha256=?", (sha,)).fetchone()
            if known:
                result.already.append((path, known[0]))
                continue
            try:
                row = session_row(path, cue_settings=cue_settings)
            except StrideClipError as e:
                result.bad.append((path, str(e)))
                continue
            except OSError as e:
                result.bad.append((path, f"{path}: cannot read: {e.strerror or e}"))
                continue
            row.update(log_sha256=sha, shoes=shoes, surface=surface, tags=",".join(tags),
                       distance_m=distance_km * 1000 if distance_km else None)
            if athlete:
                row["athlete"] = athlete
            cols = ", ".join(row)
            cur = self.db.execute(f"INSERT INTO sessions ({cols}) VALUES ({', '.join('?' * len(row))})",
                                  tuple(row.values()))
            self.db.commit()
            result.imported.append((path, cur.lastrowid))
        return result

    def edit(self, session_id: int, *, distance_km: float | None = None, shoes: str | None = None,
             surface: str | None = None, tags: tuple | None = None, athlete: str | None = None) -> None:
        changes = {"distance_m": distance_km * 1000 if distance_km is not None else None, "shoes": shoes,
                   "surface": surface, "tags": ",".join(tags) if tags is not None else None, "athlete": athlete}
        changes = {k: v for k, v in changes.items() if v is not None}
        if not self.session(session_id):
            raise HistoryError(f"no session {session_id} in {self.path}")
        if changes:
            self.db.execute(f"UPDATE sessions SET {', '.join(f'{k}=?' for k in changes)} WHERE id=?",
                            (*changes.values(), session_id))
            self.db.commit()

    # --- queries ------------------------------------------------------------------------------
    def session(self, session_id: int) -> dict | None:
        row = self.db.execute("SELECT * FROM sessions WHERE id=?", (session_id,)).fetchone()
        return dict(row) if row else None

    def session_for_log(self, path) -> dict | None:
        row = self.db.execute("SELECT * FROM sessions WHERE log_sha256=?", (_sha256(Path(path)),)).fetchone()
        return dict(row) if row else None

    def sessions(self, athlete: str | None = None, *, before: str | None = None) -> list[dict]:
        """Sessions in time order (optionally one athlete's, optionally only those started before)."""
        sql, args = "SELECT * FROM sessions WHERE 1=1", []
        if athlete:
            sql, args = sql + " AND athlete=?", [athlete]
        if before:
            sql, args = sql + " AND started_at<?", [*args, before]
        return [dict(r) for r in self.db.execute(sql + " ORDER BY started_at, id", args)]

    def athletes(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT athlete FROM sessions ORDER BY athlete")]

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
        session's cadence on that day (strideclip.cadence_plan)."""
        first = next((r for r in self.sessions(athlete) if r["running_steps"] and r["cadence_spm"]), None)
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


def session_row(path: Path, *, cue_settings: dict | None = None) -> dict:
    """What the history keeps of one log: the whole host pipeline run over it."""
    from strideclip.pipeline import Session
    from strideclip.replay import replay, session_start

    session = Session(cue_settings=cue_settings or {})
    summary = replay(path, session=session)
    if not summary["samples"]:
        raise HistoryError(f"{path}: no samples in this log ({summary['log_damage']['summary']})")
    table = session.step_table()
    running = table[table["running"] == 1]
    started_at, started_from = session_start(summary)
    onset = next((c["t_s"] for c in summary["fatigue"] if c["state"] == "fatigued"), None)
    row = {
        "log_path": str(path.resolve()), "athlete": summary["athlete"] or summary["clip"] or "unknown",
        "clip": summary["clip"], "source": summary["source"], "started_at": started_at.isoformat(timespec="seconds"),
        "started_from": started_from, "duration_s": summary["duration_s"],
        "running_s": round(float(np.nansum(running["step_time_s"])), 1), "steps": summary["steps"],
        "running_steps": summary["running_steps"], "cues": len(summary["cues"]), "fatigue_onset_s": onset,
        "log_damage": summary["log_damage"]["summary"],
        "summary_json": json.dumps({k: v for k, v in summary.items() if k != "host_events"}),
        "imported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    for col, key in METRIC_COLUMNS.items():
        row[col] = summary.get(key)
    return row


def _log_files(paths) -> list[Path]:
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.sclog") if q.is_file())
        else:
            files.append(p)
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _week_start(started_at: str) -> dt.date:
    d = dt.date.fromisoformat(started_at[:10])
    return d - dt.timedelta(days=d.weekday())
