"""The session history: import (idempotent, bad logs skipped), weekly trends, the 10 % rule, the plan."""
import datetime as dt
import json
import sqlite3
import subprocess

import numpy as np
import pytest

from mpy import REPO, find_tool
from strideclip.errors import HistoryError
from strideclip.sim import simulate, steady_run, truth_path, write_log
from strideclip.sim.gait import RUN
from strideclip.store.history import History

# (day, minutes, cadence): week 45 400 s of running, week 46 460 s (+15 %), week 47 464 s (+1 %),
# week 48 none, week 49 one run.
PLAN = [("2026-11-02", 4.0, 164), ("2026-11-05", 4.0, 164), ("2026-11-09", 4.5, 168), ("2026-11-12", 4.5, 168),
        ("2026-11-18", 8.4, 172), ("2026-12-01", 4.0, 172)]


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    for k, (day, minutes, spm) in enumerate(PLAN):
        write_log(simulate(steady_run(minutes, cadence_spm=spm, seed=40 + k, rate_hz=104)), folder / f"run{k}.sclog",
                  athlete="Ana", started_at=f"{day}T07:00:00.000+00:00")
    return folder


def _cli(*args, ok=True):
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _running_s(log) -> float:
    steps = json.loads(truth_path(log).read_text())["steps"]
    return sum(t for t, kind in zip(steps["step_time_s"], steps["kind"]) if kind == RUN)


def test_history_over_weeks_gives_trends_the_load_warning_and_the_plan(weeks, tmp_path):
    db = tmp_path / "h.sqlite"
    out = _cli("history", "import", weeks, "--db", db, "--shoes", "Pegasus", "--surface", "road").stdout
    assert out.strip().endswith(f"{len(PLAN)} imported, 0 already in the history, 0 bad ({db})")
    got = json.loads(_cli("history", "--db", db, "--athlete", "Ana", "--json").stdout)["Ana"]
    assert [s["started_at"][:10] for s in got["sessions"]] == [d for d, _, _ in PLAN]
    assert all(s["shoes"] == "Pegasus" and s["surface"] == "road" for s in got["sessions"])

    weeks_ = got["weeks"]
    assert [w["iso_week"] for w in weeks_] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"]
    assert [w["sessions"] for w in weeks_] == [2, 2, 1, 0, 1]
    logs = sorted(weeks.glob("*.sclog"))
    truth_min = [sum(_running_s(logs[k]) for k in ks) / 60 for ks in ((0, 1), (2, 3), (4,), (), (5,))]
    assert [w["running_min"] for w in weeks_] == pytest.approx(truth_min, rel=0.03, abs=0.05)
    # the weekly cadence follows the runs' cadence
    for w, spm in zip(weeks_, (164, 168, 172, None, 172)):
        assert (w["cadence_spm"] is None) if spm is None else abs(w["cadence_spm"] - spm) < 2.0
    # +15 % is flagged, +1 % is not, and a week after a week off has nothing to compare with
    assert [w["load_warning"] for w in weeks_] == [False, True, False, False, False]
    assert weeks_[1]["load_change_pct"] == pytest.approx(15, abs=3)
    assert weeks_[4]["load_change_pct"] is None
    # the rule is configurable
    relaxed = json.loads(_cli("history", "--db", db, "--json", "--load-rise-pct", 25).stdout)["Ana"]["weeks"]
    assert not any(w["load_warning"] for w in relaxed)
    text = _cli("history", "--db", db).stdout
    assert "2026-W46" in text and "LOAD: running time up more than 10 %" in text.split("2026-W46")[1].split("\n")[0]

    # the cadence plan starts from the first session, 4 weeks later it is 5 spm higher
    with History(db) as h:
        first = h.sessions("Ana")[0]["cadence_spm"]
        plan = h.plan_target_spm("Ana", dt.date(2026, 11, 30))
        base = h.baseline("Ana", before="2026-11-10")
    assert plan["since"] == "2026-11-02" and plan["target_spm"] == round(first + 5)
    out = _cli("plan", "--athlete", "Ana", "--on", "2026-11-30", "--db", db).stdout
    assert f"metronome target {round(first + 5)} steps/min" in out and "target_spm = " in out
    nobody = _cli("plan", "--athlete", "Zed", "--db", db, ok=False)
    assert nobody.returncode == 1 and nobody.stderr.startswith("strideclip: no running session of Zed")  # docs/cli.md
    assert base["sessions"] == 3 and abs(base["cadence_spm"] - 164) < 2  # median of the 3 sessions before 10 Nov


def test_import_skips_bad_logs_keeps_damaged_ones_and_changes_nothing_the_second_time(weeks, tmp_path):
    folder = tmp_path / "synced"
    folder.mkdir()
    good = sorted(weeks.glob("*.sclog"))[:2]
    for p in good:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "junk.sclog").write_bytes(b"this is not a log")
    (folder / "empty.sclog").write_bytes((REPO / "tests" / "data" / "steady_208hz.sclog").read_bytes()[:8])
    # a scratch mid-file, in a session not imported otherwise (a damaged copy of good[1] would be good[1]'s session)
    damaged = bytearray(sorted(weeks.glob("*.sclog"))[2].read_bytes())
    damaged[len(damaged) // 2:len(damaged) // 2 + 300] = bytes(300)
    (folder / "sub").mkdir()
    (folder / "sub" / "damaged.sclog").write_bytes(bytes(damaged))
    db = tmp_path / "h.sqlite"

    first = _cli("history", "import", folder, "--db", db)
    assert "3 imported, 0 already in the history, 2 bad" in first.stdout
    assert "junk.sclog: not a StrideClip session log" in first.stderr
    assert "empty.sclog: no samples in this log" in first.stderr
    with History(db) as h:
        rows = h.sessions()
        assert any("damaged" in r["log_path"] and r["log_damage"] != "clean" for r in rows)
    before = sqlite3.connect(db).execute("SELECT * FROM sessions ORDER BY id").fetchall()

    again = _cli("history", "import", folder, good[0], "--db", db)
    assert "0 imported, 4 already in the history, 2 bad" in again.stdout
    assert sqlite3.connect(db).execute("SELECT * FROM sessions ORDER BY id").fetchall() == before

    # only bad logs: the command fails, naming them
    only_bad = _cli("history", "import", folder / "junk.sclog", "--db", db, ok=False)
    assert only_bad.returncode == 1 and "junk.sclog" in only_bad.stderr


def test_edit_sets_what_a_log_cannot_know_and_a_wrong_database_is_named(weeks, tmp_path):
    db = tmp_path / "h.sqlite"
    _cli("history", "import", sorted(weeks.glob("*.sclog"))[0], "--db", db)
    _cli("history", "edit", 1, "--distance-km", 5.2, "--tag", "intervals", "--tag", "hot", "--db", db)
    _cli("history", "import", sorted(weeks.glob("*.sclog"))[1], "--db", db, "--athlete", "Ben")
    both = _cli("history", "--db", db).stdout.splitlines()  # athletes side by side first
    assert both[0].startswith("athlete") and both[1].split()[:3] == ["Ana", "1", "2026-11-02"]
    assert both[2].split()[:3] == ["Ben", "1", "2026-11-05"]
    with History(db) as h:
        s = h.session(1)
    assert s["distance_m"] == 5200 and s["tags"] == "intervals,hot" and s["shoes"] is None
    missing = _cli("history", "edit", 9, "--shoes", "x", "--db", db, ok=False)
    assert missing.returncode == 1 and "no session 9" in missing.stderr
    not_db = tmp_path / "notes.txt"
    not_db.write_text("my training notes\n" * 100)
    wrong = _cli("history", "--db", not_db, ok=False)
    assert wrong.returncode == 1 and "notes.txt: not a StrideClip history database" in wrong.stderr
    assert not_db.read_text() == "my training notes\n" * 100
    with pytest.raises(HistoryError):
        History(not_db)


def test_report_compares_with_the_earlier_sessions_in_the_history(weeks, tmp_path):
    db = tmp_path / "h.sqlite"
    _cli("history", "import", weeks, "--db", db)
    _cli("history", "edit", 5, "--distance-km", 2.0, "--db", db)
    html = tmp_path / "r.html"
    out = _cli("report", sorted(weeks.glob("*.sclog"))[4], "-o", html, "--db", db).stdout
    assert "4 earlier session(s) compared" in out
    data = json.loads(html.read_text().split('<script type="application/json" id="report-data">')[1].split("</script>")[0])
    assert [p["started_at"][:10] for p in data["previous"]] == [d for d, _, _ in PLAN[:4]]
    assert data["distance_km"] == 2.0 and [s["km"] for s in data["splits_km"]] == [1, 2]
    assert np.isfinite(data["medians"]["cadence_spm"])


def test_replay_with_the_history_baseline_finds_a_runner_who_starts_off_form(weeks, tmp_path):
    db = tmp_path / "h.sqlite"
    _cli("history", "import", weeks, "--db", db)
    tired = tmp_path / "tired.sclog"  # 158 spm at their usual pace, where they usually run 164-172
    write_log(simulate(steady_run(8, cadence_spm=158, seed=77, rate_hz=104)), tired, athlete="Ana",
              started_at="2026-12-08T07:00:00.000+00:00")
    with_history = json.loads(_cli("replay", tired, "--history-baseline", "--db", db, "--json").stdout)
    alone = json.loads(_cli("replay", tired, "--json").stdout)
    assert with_history["fatigue_baseline"]["source"]["cadence"] == "history"
    assert with_history["fatigue_baseline"]["values"]["cadence"] > 164
    assert any(c["state"] == "fatigued" for c in with_history["fatigue"])
    assert alone["fatigue_baseline"]["source"]["cadence"] == "session"
    assert not any(c["state"] == "fatigued" for c in alone["fatigue"])
    # an athlete the history does not know: said, and the session's own warm-up is used
    other = _cli("replay", tired, "--history-baseline", "--db", tmp_path / "empty.sqlite", "--json")
    assert "no earlier sessions of this athlete" in other.stderr
    assert json.loads(other.stdout)["fatigue"] == alone["fatigue"]
