"""One history row per clip session, whatever copies of its log arrive and in whichever order;
imports that run at the same time; a log still being written; `history --db X SUB`; schema 1."""
import json
import sqlite3
import subprocess
import threading
import time

import pytest

from mpy import find_tool
from strideclip.sim import simulate, steady_run, write_log
from strideclip.store.history import History
from strideclip.store.history_logs import session_row
from test_history import _cli
from test_history_damage import settled


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Ana's runs in two weeks, of the same length (the same simulated run, a week apart)."""
    folder = tmp_path_factory.mktemp("sessions")
    run = simulate(steady_run(2.5, cadence_spm=168, seed=70, rate_hz=104))
    for name, day in (("week1", "2026-11-03"), ("week2", "2026-11-10")):
        settled(write_log(run, folder / f"{name}.sclog", athlete="Ana", started_at=f"{day}T07:00:00.000+00:00"))
    return folder


def _weeks(db):
    return json.loads(_cli("history", "--db", db, "--json").stdout)["Ana"]


def test_a_truncated_copy_and_the_whole_log_are_one_session_whichever_comes_first(runs, tmp_path):
    whole = runs / "week2.sclog"
    full_running_min = round(session_row(whole)["running_s"] / 60, 1)
    folder = tmp_path / "synced"
    folder.mkdir()
    same_path = folder / "week2.sclog"
    same_path.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) * 6 // 10])  # cut short, e.g. copied mid-run
    settled(same_path)
    db = tmp_path / "h.sqlite"
    _cli("history", "import", runs / "week1.sclog", "--db", db)
    assert "1 imported" in _cli("history", "import", folder, "--db", db).stdout

    same_path.write_bytes(whole.read_bytes())  # the whole log arrives at the same path
    settled(same_path)
    out = _cli("history", "import", folder, "--db", db).stdout
    assert "(a longer log of a session in the history: replaces its row)" in out
    assert "0 imported, 0 already in the history, 0 bad, 1 replaced by a longer log" in out
    # and a truncated copy at another path, after the whole log: nothing changes
    other = tmp_path / "copy.sclog"
    other.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    settled(other)
    assert "0 imported, 1 already in the history" in _cli("history", "import", other, "--db", db).stdout

    got = _weeks(db)
    assert len(got["sessions"]) == 2 and got["sessions"][1]["log_path"] == str(same_path.resolve())
    week1, week2 = got["weeks"]
    assert week2["sessions"] == 1 and week2["running_min"] == full_running_min == week1["running_min"]
    assert not week2["load_warning"] and week2["load_change_pct"] == 0


def test_two_imports_of_one_folder_at_the_same_time_both_finish_and_count_each_session_once(runs, tmp_path):
    db = tmp_path / "h.sqlite"  # new: both also race to create it
    procs = [subprocess.Popen([find_tool("strideclip"), "history", "import", str(runs), "--db", str(db)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for rc, out, err in done:
        assert rc == 0 and "Traceback" not in err and "locked" not in err, (out, err)
    imported = [int(out.strip().splitlines()[-1].split(" imported")[0]) for _, out, _ in done]
    assert sum(imported) == 2  # each session imported by one of them, found known by the other
    with History(db) as h:
        assert sorted(s["log_path"] for s in h.sessions()) == sorted(str(p.resolve()) for p in runs.glob("*.sclog"))


def test_a_log_still_being_written_is_not_imported_until_it_stops_growing(runs, tmp_path):
    data = (runs / "week1.sclog").read_bytes()
    folder = tmp_path / "recording"
    folder.mkdir()
    log = folder / "live.sclog"
    log.write_bytes(data[:4096])

    def writer():  # a recording: a record every 50 ms or so, for 3 s
        with open(log, "ab") as f:
            for at in range(4096, len(data), len(data) // 60 + 1):
                f.write(data[at:at + len(data) // 60 + 1])
                f.flush()
                time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    db = tmp_path / "h.sqlite"
    try:
        during = _cli("history", "import", folder, "--db", db)
    finally:
        thread.join()
    assert f"not imported: {log}: still being written" in during.stderr
    assert "0 imported, 0 already in the history, 0 bad, 1 still being written" in during.stdout
    assert log.read_bytes() == data
    after = _cli("history", "import", folder, "--db", db)  # finished a moment ago: watched, and imported
    assert "1 imported" in after.stdout
    with History(db) as h:
        (row,) = h.sessions()
    assert row["log_bytes"] == len(data)


def test_history_db_before_or_after_the_subcommand_names_the_database(runs, tmp_path, private_history):
    db = tmp_path / "h.sqlite"
    assert "2 imported" in _cli("history", "--db", db, "import", runs).stdout
    _cli("history", "--db", db, "edit", 1, "--shoes", "Pegasus")
    _cli("history", "edit", 2, "--db", db, "--surface", "track")
    with History(db) as h:
        assert [(s["shoes"], s["surface"]) for s in h.sessions()] == [("Pegasus", None), (None, "track")]
    with History(private_history) as h:  # the default history was not touched
        assert not any(str(runs.resolve()) in s["log_path"] for s in h.sessions())
    both = _cli("history", "--db", db, "import", runs, "--db", tmp_path / "other.sqlite", ok=False)
    assert both.returncode == 2 and "two history databases given" in both.stderr


def test_a_schema_1_history_is_migrated_and_its_double_counted_copy_merged(runs, tmp_path):
    """Schema 1 keyed rows by the file's SHA-256: a truncated copy and its whole log were two."""
    part = tmp_path / "part.sclog"
    part.write_bytes((runs / "week2.sclog").read_bytes()[:60_000])
    settled(part)
    v2 = tmp_path / "v2.sqlite"
    _cli("history", "import", part, runs, "--db", v2)
    _cli("history", "import", part, "--db", tmp_path / "part.sqlite")
    rows = [dict(r) for r in _rows(v2) + _rows(tmp_path / "part.sqlite")]
    assert len(rows) == 3
    rows[0]["shoes"] = "Pegasus"
    v1 = tmp_path / "v1.sqlite"
    con = sqlite3.connect(v1)
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('schema', '1');")
    cols = [c for c in rows[0] if c not in ("id", "session_key", "log_bytes")]
    con.execute(f"CREATE TABLE sessions (id INTEGER PRIMARY KEY, log_sha256 TEXT NOT NULL UNIQUE, "
                f"{', '.join(c for c in cols if c != 'log_sha256')})")
    con.execute("CREATE INDEX sessions_by_athlete ON sessions (athlete, started_at)")
    for k, r in enumerate(rows, 1):
        con.execute(f"INSERT INTO sessions (id, {', '.join(cols)}) VALUES (?, {', '.join('?' * len(cols))})",
                    [k, *(r[c] for c in cols)])
    con.commit()
    con.close()

    with History(v1) as h:
        got = h.sessions()
    assert [s["log_path"] for s in got] == [str((runs / f"week{k}.sclog").resolve()) for k in (1, 2)]
    assert got[0]["shoes"] == "Pegasus" and all(s["log_bytes"] for s in got)
    assert sqlite3.connect(v1).execute("SELECT value FROM meta").fetchone() == ("2",)
    assert "0 imported, 3 already in the history" in _cli("history", "import", part, runs, "--db", v1).stdout


def _rows(db):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM sessions ORDER BY started_at, log_bytes").fetchall()
    finally:
        con.close()
