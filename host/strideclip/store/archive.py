"""An archive of session logs re-analysed into one Parquet dataset (``strideclip reanalyse``,
issue #26, docs/archive.md).

Every log of a folder (``*.sclog``, subfolders included) goes through the one analysis,
``strideclip.session.replay.analyse``, and its row is made as the history makes it
(``history_logs.row_of_analysis``). What ``OUT`` holds:

    OUT/athlete=<name>/month=<YYYY-MM>/<session>.parquet   a row per step: ``session``, then STEP_METRICS_DTYPE
    OUT/_sessions.parquet                                  a row per log (SESSION_COLUMNS): its summary, or why not
    OUT/_sessions/<session>.json                           that row, written as each log is done: what a rerun reads
    OUT/_run.json                                          what the dataset was made with (version, cue settings)

``session`` is the start of the log's SHA-256. A rerun into the same ``OUT`` skips the logs whose
bytes it has done, redoes those that changed (and those that failed for a reason other than their
content), and drops what came from logs no longer in the archive: it ends with the dataset a
fresh run makes. Each file is written under a hidden temporary name and renamed when whole
(strideclip.stream.outputs); Arrow readers skip names starting with ``_`` or ``.`` (``read_steps``).
Where the logs are analysed (here, a process pool, a Dask cluster) is strideclip.store.archive_runs.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from strideclip import __version__
from strideclip.analysis.metrics import STEP_METRICS_DTYPE
from strideclip.errors import ArchiveError, OutputError, StrideClipError, needs_extra
from strideclip.store.history_logs import METRIC_COLUMNS, file_sha256, log_files, row_of_analysis, session_key
from strideclip.stream.outputs import OutputFile, check_folder, writing

if TYPE_CHECKING:  # pyarrow is imported where a table is written or read: the workers never need it
    import pyarrow as pa

RUN_FILE = "_run.json"
LEDGER = "_sessions"
SUMMARY_FILE = "_sessions.parquet"
SESSION_HEX = 16  # digits of the SHA-256 that name a session: 64 bits, no collision in any archive
FORMAT = 1  # of what OUT holds; another one is not resumed

# The summary table's columns and their Arrow types (the medians as the summary names them).
SESSION_COLUMNS = (
    ("file", "string"), ("session", "string"), ("log_sha256", "string"), ("log_bytes", "int64"),
    ("status", "string"), ("reason", "string"), ("athlete", "string"), ("clip", "string"), ("source", "string"),
    ("clip_session", "string"), ("started_at", "timestamp"), ("started_from", "string"), ("month", "string"),
    ("duration_s", "float64"), ("running_s", "float64"), ("steps", "int64"), ("running_steps", "int64"),
    ("cues", "int64"), ("fatigue_onset_s", "float64"), ("log_damage", "string"),
    *((key, "float64") for key in METRIC_COLUMNS.values()),
)
ANALYSED, UNREADABLE, FAILED = "analysed", "unreadable", "failed"  # FAILED: not the log's fault; tried again


@dataclass(frozen=True)
class LogTask:
    """One log to analyse: where it is (absolute), its name in the archive, its bytes' hash."""

    path: str
    file: str
    sha256: str
    log_bytes: int
    mtime_ns: int
    cue_settings: dict | None = None

    @property
    def session(self) -> str:
        return self.sha256[:SESSION_HEX]


@dataclass
class LogResult:
    """A log's row of the summary table and its step table (None when it was not analysed)."""

    task: LogTask
    row: dict
    steps: np.ndarray | None = None


@dataclass
class ArchiveRun:
    """What a run did: logs found, analysed now, skipped (done before), the logs that cannot be
    analysed (file, reason; those done before too), those that failed for another reason (tried
    again next run), sessions dropped (their log changed or went), steps and hours analysed now."""

    logs: int = 0
    analysed: int = 0
    skipped: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    dropped: int = 0
    restarted: bool = False  # the analysis code changed since the dataset was made: every session done again
    steps: int = 0
    hours: float = 0.0
    wall_s: float = 0.0


def analyse_log(task: LogTask, progress: Callable[[int, int], None] | None = None) -> LogResult:
    """The task every runner runs: the log through ``analyse``, its row; never raises for a log
    (a worker far away reports what went wrong in the row)."""
    from strideclip.session.replay import analyse

    row = {"file": task.file, "session": task.session, "log_sha256": task.sha256, "log_bytes": task.log_bytes}
    try:
        summary, table = analyse(task.path, cue_settings=task.cue_settings, progress=progress)
        kept = row_of_analysis(Path(task.path), summary, table)
        clip_session = session_key(Path(task.path))
    except StrideClipError as e:  # the log itself: damaged, no samples, not a log
        return LogResult(task, {**row, "status": UNREADABLE, "reason": str(e).removeprefix(f"{task.path}: ")})
    except Exception as e:  # a worker that cannot see the file, or a fault in the analysis: tried again next run
        return LogResult(task, {**row, "status": FAILED, "reason": f"{type(e).__name__}: {e}"})
    row.update(status=ANALYSED, reason=None, clip_session=clip_session, month=kept["started_at"][:7],
               **{k: kept[k] for k in ("athlete", "clip", "source", "started_at", "started_from", "duration_s",
                                       "running_s", "steps", "running_steps", "cues", "fatigue_onset_s", "log_damage")},
               **{key: kept[col] for col, key in METRIC_COLUMNS.items()})
    return LogResult(task, row, table)


def reanalyse(archive_dir: str | os.PathLike, out_dir: str | os.PathLike, *, workers: int | None = None,
              scheduler: str | None = None, cue_settings: dict | None = None, force: bool = False,
              progress: Callable[[float, float], None] | None = None) -> ArchiveRun:
    """Every log of ``archive_dir`` into the dataset ``out_dir`` (module docstring): on ``workers``
    local processes (default: one per CPU; 1 runs here), or on the Dask cluster whose scheduler
    is ``scheduler`` (``tcp://host:port``). ``force``: start ``out_dir`` over. ``progress(done,
    total)`` in bytes of logs. Ctrl-C keeps every session done (a rerun resumes)."""
    from strideclip.store.archive_runs import check_dask, run_tasks

    needs_extra("pyarrow", "export")  # the dataset is Parquet
    started_s = time.monotonic()
    if scheduler:
        check_dask()
    archive = Path(archive_dir)
    if not archive.is_dir():
        raise ArchiveError(f"{archive} is not a folder: give reanalyse the folder of session logs")
    here, there = archive.resolve(), Path(out_dir).resolve()
    if there == here or there in here.parents:  # --force would remove the archive with it
        raise OutputError(f"{out_dir} holds the archive {archive}: choose another -o", path=str(out_dir))
    if there.suffix == ".sclog":
        raise OutputError(f"{out_dir} is a session log's name: choose another -o", path=str(out_dir))
    out, restarted = prepare_output(out_dir, force=force, made_with=made_with(cue_settings))
    done, todo, run = _plan(archive, out, cue_settings)
    run.restarted = restarted
    total_bytes = sum(t.log_bytes for t in todo) or 1
    done_bytes = 0
    try:
        results = run_tasks(todo, workers=workers, scheduler=scheduler,
                            progress=progress and (lambda d, _t: progress(done_bytes + d, total_bytes)))
        with closing(results):  # on Ctrl-C too: the pool stops
            for result in results:
                with _ctrl_c_after():  # a session's files and its entry here, together
                    done[result.task.session] = _keep(out, result)
                    done_bytes += result.task.log_bytes
                    _count(run, result)
                if progress:
                    progress(done_bytes, total_bytes)
    finally:  # interrupted too: the table says what is there
        with _ctrl_c_after():
            _tidy(out)
            write_summary(out, [e["row"] for e in done.values()])
        run.wall_s = time.monotonic() - started_s
    return run


def made_with(cue_settings: dict | None) -> dict:
    """What a dataset is made with, in ``_run.json``: a rerun with other settings is refused; one
    whose analysis code changed starts over (that is what a re-analysis is for)."""
    return {"made_by": "strideclip reanalyse", "format": FORMAT, "version": __version__,
            "analysis": analysis_fingerprint(),
            "cue_settings": sorted([int(k), int(v)] for k, v in (cue_settings or {}).items())}


ANALYSIS_PACKAGES = ("clipcore", "strideclip.stream", "strideclip.analysis", "strideclip.coaching", "strideclip.session")


def analysis_fingerprint() -> str:
    """A hash of the source of every module a session's analysis runs (the clip's detector and
    cue policy, the reader, the metrics, fatigue, cues, the pipeline): it changes with the code."""
    import importlib

    h = hashlib.sha256()
    for name in ANALYSIS_PACKAGES:
        folder = Path(importlib.import_module(name).__file__).parent
        for path in sorted(folder.glob("*.py")):
            h.update(f"{name}/{path.name}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def prepare_output(out_dir: str | os.PathLike, *, force: bool, made_with: dict) -> tuple[Path, bool]:
    """``out_dir`` ready to write: a new folder, one this command made with the same settings (to
    resume), or, with ``force``, a former one of its own (or a file) removed. Anything else is
    refused. Also whether a former dataset of the same settings was started over because the
    analysis code changed since it was made."""
    out = Path(out_dir)
    run_file = out / RUN_FILE
    if out.is_dir() and run_file.is_file():
        try:
            before = json.loads(run_file.read_text())
        except (OSError, ValueError):
            before = None
        same_settings = isinstance(before, dict) and all(before.get(k) == made_with[k]
                                                         for k in ("made_by", "format", "cue_settings"))
        code_changed = same_settings and before.get("analysis") != made_with["analysis"]
        if force or code_changed:
            shutil.rmtree(out)
            check_folder(out, option="-o")
            out.mkdir()
            _write_json(out / RUN_FILE, made_with)
            return out, code_changed and not force
        elif not same_settings:
            raise OutputError(f"{out} was made with other cue settings: add --force to start "
                              f"over, or choose another -o", path=str(out))
        else:
            return out, False
    elif out.is_dir() and any(out.iterdir()):
        raise OutputError(f"{out} is a folder that strideclip reanalyse did not make: choose another -o (it is not "
                          f"removed, --force or not)", path=str(out))
    elif out.is_symlink() or out.is_file():
        if not force:
            raise OutputError(f"{out} exists: add --force to replace it, or choose another -o", path=str(out))
        out.unlink()
    check_folder(out, option="-o")
    out.mkdir(exist_ok=True)
    _write_json(out / RUN_FILE, made_with)
    return out, False


def _plan(archive: Path, out: Path, cue_settings: dict | None) -> tuple[dict, list[LogTask], ArchiveRun]:
    """The sessions already done (session -> ledger entry), the logs to analyse (largest first:
    the pool ends together), and the run's counts so far. Drops what no log of the archive holds."""
    ledger = _read_ledger(out)
    known = {e["row"]["file"]: e for e in ledger.values()}
    tasks: dict[str, LogTask] = {}
    files = log_files([archive])
    run = ArchiveRun(logs=len(files))
    for path in files:
        file = path.relative_to(archive).as_posix()
        try:
            st = path.stat()
            was = known.get(file)
            same = was and (was["row"]["log_bytes"], was["log_mtime_ns"]) == (st.st_size, st.st_mtime_ns)
            sha = was["row"]["log_sha256"] if same else file_sha256(path)  # hashed only when new or touched
        except OSError as e:  # gone since listed, or not readable by this user: tried again next run
            run.failed.append((file, f"cannot read it: {e.strerror or e}"))
            continue
        task = LogTask(str(path.resolve()), file, sha, st.st_size, st.st_mtime_ns, cue_settings)
        tasks.setdefault(task.session, task)  # an exact copy of a log is the same session: analysed once
    done = {}
    for session, entry in ledger.items():
        task = tasks.get(session)
        if task is None or entry["row"]["status"] == FAILED:
            _drop(out, entry)
            run.dropped += task is None
            continue
        if (entry["row"]["file"], entry["log_mtime_ns"]) != (task.file, task.mtime_ns):  # moved or touched
            entry = {**entry, "row": {**entry["row"], "file": task.file}, "log_mtime_ns": task.mtime_ns}
            _write_json(out / LEDGER / f"{session}.json", entry)
        done[session] = entry
        if entry["row"]["status"] == UNREADABLE:  # said again each run, with its reason
            run.unreadable.append((entry["row"]["file"], entry["row"]["reason"]))
    kept_parts = {out / e["part"] for e in done.values() if e["part"]}
    for part in out.glob("athlete=*/month=*/*.parquet"):  # of a session dropped, or written but not yet in the ledger
        if part not in kept_parts and not part.name.startswith("."):
            part.unlink()
    run.skipped = len(done)
    todo = sorted((t for s, t in tasks.items() if s not in done), key=lambda t: (-t.log_bytes, t.file))
    return done, todo, run


def _keep(out: Path, result: LogResult) -> dict:
    """A result in ``out``: its steps (if any), then its ledger entry, each whole or not at all."""
    row, part = result.row, None
    if result.steps is not None and len(result.steps):
        part = f"athlete={quote(row['athlete'], safe='')}/month={row['month']}/{row['session']}.parquet"
        _write_steps(out / part, row["session"], result.steps)
    entry = {"row": row, "part": part, "log_mtime_ns": result.task.mtime_ns}
    _write_json(out / LEDGER / f"{row['session']}.json", entry)
    return entry


def _count(run: ArchiveRun, result: LogResult) -> None:
    row = result.row
    if row["status"] == ANALYSED:
        run.analysed += 1
        run.steps += len(result.steps)
        run.hours += row["duration_s"] / 3600
    else:
        (run.unreadable if row["status"] == UNREADABLE else run.failed).append((row["file"], row["reason"]))


def _write_steps(path: Path, session: str, table: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {"session": pa.array([session] * len(table), pa.string())}
    # NaN (a value the data could not support) becomes null, as in `export --format parquet`
    cols.update((name, pa.array(table[name], from_pandas=True)) for name in STEP_METRICS_DTYPE.names)
    with writing(OutputFile(path, force=True)) as (part,):
        pq.write_table(pa.table(cols), part)


@contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """A Ctrl-C during the block takes effect at its end, where this thread can hold it (a
    command's main thread): a Ctrl-C inside left a session's files without its entry, or no summary."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list = []
    before = signal.signal(signal.SIGINT, lambda *_: pressed.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
    if pressed:
        raise KeyboardInterrupt


def write_summary(out: Path, rows: list[dict]) -> Path:
    """The summary table, a row per log sorted by file, as ``out/_sessions.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
             "timestamp": pa.timestamp("ms", tz="UTC")}  # Parquet's coarsest
    rows = sorted(rows, key=lambda r: r["file"])
    cols = {}
    for name, kind in SESSION_COLUMNS:
        values = [r.get(name) for r in rows]
        if kind == "timestamp":
            values = [v and dt.datetime.fromisoformat(v) for v in values]
        cols[name] = pa.array(values, types[kind], from_pandas=kind == "float64")
    path = out / SUMMARY_FILE
    with writing(OutputFile(path, force=True)) as (part,):
        pq.write_table(pa.table(cols), part)
    return path


def read_steps(out_dir: str | os.PathLike) -> pa.Table:
    """Every step of a dataset ``reanalyse`` wrote, with ``athlete`` and ``month`` as strings
    (a name such as "007" stays a name)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    part = ds.partitioning(pa.schema([("athlete", pa.string()), ("month", pa.string())]), flavor="hive")
    return ds.dataset(out_dir, format="parquet", partitioning=part).to_table()


def _read_ledger(out: Path) -> dict[str, dict]:
    ledger = {}
    for path in sorted((out / LEDGER).glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            entry = json.loads(path.read_text())
            ledger[entry["row"]["session"]] = entry
        except (OSError, ValueError, KeyError, TypeError):  # not ours, or damaged: that log is done again
            path.unlink(missing_ok=True)
    return ledger


def _drop(out: Path, entry: dict) -> None:
    if entry.get("part"):
        (out / entry["part"]).unlink(missing_ok=True)
    (out / LEDGER / f"{entry['row']['session']}.json").unlink(missing_ok=True)


def _tidy(out: Path) -> None:
    """Temporary files a killed run left (hidden: no reader saw them) and empty partitions."""
    for tmp in out.rglob(".*.part.*"):
        tmp.unlink(missing_ok=True)
    for folder in sorted(out.glob("athlete=*/month=*")) + sorted(out.glob("athlete=*")):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing(OutputFile(path, force=True)) as (part,):
        part.write_text(json.dumps(value))
