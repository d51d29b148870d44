"""A damaged history database: every command that opens it says so clearly (never a traceback),
the ones that only compare with the history go on without it, and `history repair` rebuilds it
from the logs it catalogued."""
import os
import random
import shutil
import sqlite3
import time

import pytest

from strideclip.errors import HistoryDamaged
from strideclip.sim import simulate, steady_run, write_log
from strideclip.store.history import History
from test_history import _cli

PAGE_BYTES = 4096  # SQLite's default page size, the history's


def settled(path):
    """As if written an hour ago: an import does not wait to see whether it is still being written."""
    t = time.time() - 3600
    os.utime(path, (t, t))
    return path


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Three logs of Ana's, catalogued (shoes given for #2), and the database's healthy bytes."""
    folder = tmp_path_factory.mktemp("runs")
    for k, day in enumerate(("2026-11-02", "2026-11-09", "2026-11-16")):
        settled(write_log(simulate(steady_run(1.5, cadence_spm=166, seed=60 + k, rate_hz=104)),
                          folder / f"run{k}.sclog", athlete="Ana", started_at=f"{day}T07:00:00.000+00:00"))
    db = folder.parent / "healthy.sqlite"
    _cli("history", "import", folder, "--db", db)
    _cli("history", "edit", 2, "--shoes", "Pegasus", "--db", db)
    with History(db) as h:
        sessions = h.sessions()
    con = sqlite3.connect(db)
    table_root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='sessions'").fetchone()[0]
    index_root = con.execute("SELECT rootpage FROM sqlite_master WHERE name='sessions_by_athlete'").fetchone()[0]
    con.close()
    return {"folder": folder, "bytes": db.read_bytes(), "sessions": sessions, "table_root": table_root,
            "index_root": index_root}


def damaged(history, tmp_path, page: int):
    """A copy of the history with one page (1-based) overwritten with random bytes."""
    data = bytearray(history["bytes"])
    data[(page - 1) * PAGE_BYTES:page * PAGE_BYTES] = random.Random(page).randbytes(PAGE_BYTES)
    db = tmp_path / "history.sqlite"
    db.write_bytes(bytes(data))
    return db


def same_sessions(got, want):
    keys = ("id", "session_key", "log_path", "started_at", "running_s", "steps", "cadence_spm")
    return [{k: r[k] for k in keys} for r in got] == [{k: r[k] for k in keys} for r in want]


@pytest.mark.parametrize("which", ["first page (the schema)", "the sessions table's root page", "the last page"])
def test_every_command_says_the_history_is_damaged_and_repair_rebuilds_it(history, tmp_path, which):
    pages = len(history["bytes"]) // PAGE_BYTES
    page = {"first page (the schema)": 1, "the sessions table's root page": history["table_root"],
            "the last page": pages}[which]
    db = damaged(history, tmp_path, page)
    damaged_bytes = db.read_bytes()
    with pytest.raises(HistoryDamaged):
        History(db)
    log = history["folder"] / "run2.sclog"

    def said(done, code):
        assert done.returncode == code, (done.args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stderr

    # commands that need the history: exit 1 naming the file, the problem and the way out
    for args in (["history"], ["history", "--json", "--athlete", "Ana"], ["history", "import", history["folder"]],
                 ["history", "edit", 1, "--shoes", "x"], ["plan", "--athlete", "Ana"]):
        err = said(_cli(*args, "--db", db, ok=False), 1)
        assert f"strideclip: {db}: " in err and "damaged" in err
        assert f"`strideclip history repair --db {db}`" in err, err
    # `history --db X SUB` names the same database
    err = said(_cli("history", "--db", db, "edit", 1, "--shoes", "x", ok=False), 1)
    assert f"{db}: " in err and "history repair" in err
    # commands that only compare with the history: said, and done without it
    html = tmp_path / "r.html"
    err = said(_cli("report", log, "-o", html, "--db", db, ok=False), 0)
    assert f"history not used: {db}: " in err and html.stat().st_size > 100_000
    err = said(_cli("replay", log, "--history-baseline", "--db", db, "--json", ok=False), 0)
    assert f"history not used: {db}: " in err and "no earlier sessions" not in err
    assert db.read_bytes() == damaged_bytes  # nothing above wrote to it ...

    out = _cli("history", "repair", "--db", db).stdout
    assert "3 session(s) restored from their logs, 0 kept without their log, 0 lost, 0 bad" in out
    (kept,) = db.parent.glob("history.sqlite.damaged-*")
    assert kept.read_bytes() == damaged_bytes  # ... and the damaged file is kept as it was
    with History(db) as h:
        assert same_sessions(h.sessions(), history["sessions"])
    assert "nothing to repair" in _cli("history", "repair", "--db", db).stdout


def test_repair_keeps_the_rows_it_can_read_and_reports_those_whose_log_is_gone(history, tmp_path):
    db = damaged(history, tmp_path, history["index_root"])  # an index: the rows themselves are intact
    gone = history["folder"] / "run0.sclog"
    moved = tmp_path / "elsewhere.sclog"
    shutil.copy(gone, moved)
    gone.unlink()
    try:
        done = _cli("history", "repair", "--db", db)
    finally:
        shutil.copy(moved, gone)
        settled(gone)
    assert f"#1 kept as it was read: its log {gone.resolve()} is gone" in done.stdout
    assert "2 session(s) restored from their logs, 1 kept without their log, 0 lost, 0 bad" in done.stdout
    with History(db) as h:
        got = h.sessions()
    assert same_sessions(got, history["sessions"])
    assert got[1]["shoes"] == "Pegasus"  # what was given is restored with the row


def test_repair_refuses_a_file_that_is_no_history(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my training notes\n" * 300)
    assert "not a StrideClip history database" in _cli("history", "--db", notes, ok=False).stderr
    done = _cli("history", "repair", "--db", notes, ok=False)
    assert done.returncode == 1 and "not a StrideClip history; left as it is" in done.stderr
    assert notes.read_text() == "my training notes\n" * 300 and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
