"""`strideclip reanalyse` (issue #26): an archive of session logs through the one analysis into a
Parquet dataset partitioned by athlete and month, with a row per log in `_sessions.parquet`.
Real subprocesses of the command throughout; the Dask run uses a real `dask scheduler` and
`dask worker` on free localhost ports."""
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mpy import find_tool
from strideclip.errors import NothingToAnalyse
from strideclip.session.replay import analyse
from strideclip.sim import simulate, steady_run, write_log
from strideclip.store.archive import read_steps
from strideclip.stream.logwriter import SessionLogWriter

INTERRUPTED_EXIT = 130
# (folder, athlete, start as the header gives it, seed); Ben's second run starts on 31 January in
# his time zone, 1 February in UTC: the month is the UTC one
LOGS = [("ana", "Ana", "2026-01-10T07:00:00+00:00", 1), ("ana", "Ana", "2026-02-03T07:00:00+00:00", 2),
        ("ben/jan", "Ben", "2026-01-20T18:00:00+01:00", 3), ("ben", "Ben", "2026-01-31T23:30:00-01:00", 4)]


def strideclip(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def make_archive(folder: Path, minutes: float = 1.0, logs=LOGS) -> Path:
    for k, (sub, athlete, start, seed) in enumerate(logs):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        write_log(simulate(steady_run(minutes, seed=seed)), folder / sub / f"run{k}.sclog", athlete=athlete,
                  started_at=start)
    with SessionLogWriter(folder / "ben" / "header_only.sclog", header={"athlete": "Ben", "source": "ble"}):
        pass  # a recording that ended before its clip said anything
    return folder


def steps_of(out: Path):
    return read_steps(out).sort_by([("session", "ascending"), ("ic_idx", "ascending")])


def of_session(steps, session: str):
    return steps.filter(pc.equal(steps["session"], session))


def sessions_of(out: Path) -> list[dict]:
    return pq.read_table(out / "_sessions.parquet").to_pylist()


def ledger(out: Path) -> list[Path]:
    """The logs done so far (not the hidden temporary files being written)."""
    return [p for p in (out / "_sessions").glob("*.json") if not p.name.startswith(".")]


def files_in(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return make_archive(tmp_path_factory.mktemp("archive") / "runs")


@pytest.fixture(scope="module")
def pooled(archive, tmp_path_factory) -> Path:
    """The archive on the local process pool (2 workers)."""
    out = tmp_path_factory.mktemp("pooled") / "season.parquet"
    done = strideclip("reanalyse", archive, "-o", out, "--workers", 2)
    assert done.returncode == 0, done.stderr
    assert "5 log(s), 4 analysed now, 0 done before, 1 cannot be analysed" in done.stdout, done.stdout
    return out


def test_a_row_per_step_as_replay_counts_them(archive, pooled):
    sessions = {r["file"]: r for r in sessions_of(pooled)}
    steps = read_steps(pooled)
    for log in sorted(archive.rglob("run*.sclog")):
        summary = json.loads(strideclip("replay", log, "--json").stdout)
        row = sessions[log.relative_to(archive).as_posix()]
        assert row["status"] == "analysed" and row["steps"] == summary["steps"] > 0
        rows = of_session(steps, row["session"]).sort_by("ic_idx")
        assert rows.num_rows == summary["steps"], log
        _, table = analyse(log)  # the rows are the analysis's, NaN (not supported by the data) as null
        for name in ("ic_idx", "side", "running", "cadence_spm", "peak_vgrf_bw", "pelvic_rotation_deg"):
            assert rows[name].to_pylist() == [None if v != v else v for v in table[name].tolist()], name
        assert row["cadence_spm_median"] == summary["cadence_spm_median"]
        assert row["cues"] == len(summary["cues"]) and row["duration_s"] == summary["duration_s"]


def test_a_log_that_cannot_be_analysed_is_listed_with_its_reason(archive, pooled):
    with pytest.raises(NothingToAnalyse) as e:
        analyse(archive / "ben" / "header_only.sclog")
    (row,) = [r for r in sessions_of(pooled) if r["file"] == "ben/header_only.sclog"]
    assert row["status"] == "unreadable" and row["reason"] in str(e.value) and "no samples" in row["reason"]
    assert row["steps"] is None and row["athlete"] is None
    assert not any(row["session"] in f for f in files_in(pooled) if f.startswith("athlete="))


def test_steps_are_partitioned_by_the_headers_athlete_and_utc_month(archive, pooled):
    expected = set()
    for k, (sub, athlete, start, _) in enumerate(LOGS):
        month = dt.datetime.fromisoformat(start).astimezone(dt.timezone.utc).strftime("%Y-%m")
        (row,) = [r for r in sessions_of(pooled) if r["file"] == f"{sub}/run{k}.sclog"]
        assert (row["athlete"], row["month"]) == (athlete, month)
        expected.add(f"athlete={quote(athlete)}/month={month}/{row['session']}.parquet")
    assert {f for f in files_in(pooled) if f.startswith("athlete=")} == expected
    assert {"athlete=Ben/month=2026-02", "athlete=Ana/month=2026-02", "athlete=Ana/month=2026-01"} <= {
        str(Path(f).parent) for f in expected}
    steps = read_steps(pooled)
    for row in sessions_of(pooled):
        if row["status"] == "analysed":
            mine = of_session(steps, row["session"])
            assert set(mine["athlete"].to_pylist()) == {row["athlete"]} and set(mine["month"].to_pylist()) == {row["month"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real Dask scheduler and one worker (one thread), as subprocesses on free localhost ports."""
    dask = find_tool("dask")
    assert dask, "the dask command is missing: pip install -e '.[test]' installs dask[distributed]"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = {"cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              **common)]
    procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                   "--host", "127.0.0.1", "--worker-port", str(_free_port())], **common))
    try:
        yield address  # the command itself waits for the scheduler and its worker
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_the_pool_one_worker_here_and_dask_give_the_same_dataset(archive, pooled, dask_cluster, tmp_path):
    here, on_dask = tmp_path / "here.parquet", tmp_path / "dask.parquet"
    assert strideclip("reanalyse", archive, "-o", here, "--workers", 1).returncode == 0
    done = strideclip("reanalyse", archive, "-o", on_dask, "--scheduler", dask_cluster)
    assert done.returncode == 0, done.stderr
    assert f"on the Dask cluster at {dask_cluster}" in done.stdout and "4 analysed now" in done.stdout
    reference = steps_of(pooled)
    assert reference.num_rows > 0
    for out in (here, on_dask):
        assert files_in(out) == files_in(pooled)
        assert steps_of(out).equals(reference), out
        assert sessions_of(out) == sessions_of(pooled), out


def test_a_rerun_skips_what_is_done_and_redoes_what_changed(tmp_path):
    runs = make_archive(tmp_path / "runs")
    out = tmp_path / "season.parquet"
    assert strideclip("reanalyse", runs, "-o", out, "--workers", 2).returncode == 0
    before = {r["file"]: r for r in sessions_of(out)}
    parts = {p: p.stat().st_mtime_ns for p in out.glob("athlete=*/month=*/*.parquet")}

    again = strideclip("reanalyse", runs, "-o", out, "--workers", 2)
    assert again.returncode == 0 and "0 analysed now, 5 done before" in again.stdout, again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("athlete=*/month=*/*.parquet")} == parts

    # one log recorded again (other bytes, same name), one gone, one new
    write_log(simulate(steady_run(1.2, seed=9)), runs / "ana" / "run0.sclog", athlete="Ana",
              started_at=LOGS[0][2], force=True)
    (runs / "ana" / "run1.sclog").unlink()
    write_log(simulate(steady_run(1, seed=10)), runs / "cara.sclog", athlete="Cara", started_at="2026-03-01T06:00:00Z")
    third = strideclip("reanalyse", runs, "-o", out, "--workers", 2)
    assert third.returncode == 0, third.stderr
    assert "2 analysed now, 3 done before, 1 cannot be analysed, 2 dropped" in third.stdout, third.stdout
    after = {r["file"]: r for r in sessions_of(out)}
    assert after["ana/run0.sclog"]["log_sha256"] != before["ana/run0.sclog"]["log_sha256"]
    assert "ana/run1.sclog" not in after and after["cara.sclog"]["athlete"] == "Cara"
    untouched = [p for p in parts if before["ben/jan/run2.sclog"]["session"] in p.name]
    assert untouched and all(p.stat().st_mtime_ns == parts[p] for p in untouched)

    fresh = tmp_path / "fresh.parquet"
    assert strideclip("reanalyse", runs, "-o", fresh, "--workers", 1).returncode == 0
    assert files_in(out) == files_in(fresh)
    assert steps_of(out).equals(steps_of(fresh)) and sessions_of(out) == sessions_of(fresh)


def _interrupt(runs: Path, out: Path, workers: int, how: signal.Signals) -> int:
    """The command stopped by ``how`` once its first log is done; its exit code."""
    proc = subprocess.Popen([find_tool("strideclip"), "reanalyse", runs, "-o", out, "--workers", str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not ledger(out) and proc.poll() is None:
        assert time.monotonic() < deadline, "no log done in 120 s"
        time.sleep(0.02)
    # SIGKILL: the whole job at once, workers too (a machine going down); SIGINT: Ctrl-C on a
    # terminal, which goes to the whole foreground group
    os.killpg(proc.pid, how)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    if how == signal.SIGINT and proc.returncode != 0:  # (0: the run had ended before Ctrl-C, which is then ignored)
        assert proc.returncode == INTERRUPTED_EXIT and "run the same command again to resume" in err, err
    return proc.returncode


@pytest.fixture(scope="module")
def big_archive(tmp_path_factory) -> tuple[Path, Path]:
    """Four times the archive (other seeds), so that a pool is still at work when a signal sent
    after the first log lands (the analysis takes ~0.1 s a log); and its dataset made in one go."""
    logs = [(sub, athlete, start, seed + 10 * r) for r in range(4) for sub, athlete, start, seed in LOGS]
    runs = make_archive(tmp_path_factory.mktemp("big") / "runs", logs=logs)
    whole = tmp_path_factory.mktemp("big-whole") / "season.parquet"
    assert strideclip("reanalyse", runs, "-o", whole, "--workers", 2).returncode == 0
    return runs, whole


@pytest.mark.parametrize("workers,how", [(2, signal.SIGINT), (1, signal.SIGKILL)], ids=["ctrl-c-pool", "kill-here"])
def test_an_interrupted_run_leaves_only_whole_files_and_resumes(workers, how, big_archive, tmp_path):
    archive, pooled = big_archive
    out = tmp_path / "season.parquet"
    assert _interrupt(archive, out, workers, how) in (INTERRUPTED_EXIT, -signal.SIGKILL)
    for p in out.rglob("*.parquet"):
        if not p.name.startswith("."):
            pq.read_table(p)  # every file a reader sees is whole
    if how == signal.SIGINT:  # (a kill may leave a hidden temporary file: no reader sees it, the rerun removes it)
        assert not [p for p in out.rglob(".*") if ".part." in p.name]
        done = sessions_of(out)
        assert 0 < len(done) < 4 * len(LOGS) + 1 and len(done) == len(ledger(out))

    rerun = strideclip("reanalyse", archive, "-o", out, "--workers", 2)
    assert rerun.returncode == 0, rerun.stderr
    assert " 0 analysed now" not in rerun.stdout and " 0 done before" not in rerun.stdout, rerun.stdout
    assert not [p for p in out.rglob(".*") if ".part." in p.name]
    assert files_in(out) == files_in(pooled)  # as a run never interrupted
    assert steps_of(out).equals(steps_of(pooled)) and sessions_of(out) == sessions_of(pooled)


def test_what_is_refused_before_any_work(archive, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for args, says in (
        (["-o", foreign, "--force"], "did not make"),
        (["-o", archive.parent, "--force"], "holds the archive"),
        (["-o", tmp_path / "missing" / "season.parquet"], "does not exist"),
    ):
        done = strideclip("reanalyse", archive, *args)
        assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert (foreign / "notes.txt").read_text() == "keep me" and (archive / "ana" / "run0.sclog").exists()
    both = strideclip("reanalyse", archive, "-o", tmp_path / "x", "--workers", 2, "--scheduler", "tcp://127.0.0.1:1")
    assert both.returncode == 2 and "--workers is for the local pool" in both.stderr
    bad = strideclip("reanalyse", archive, "-o", tmp_path / "x", "--scheduler", "10.0.0.5:8786")
    assert bad.returncode == 2 and "tcp://HOST:PORT" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_other_cue_settings_are_refused_unless_starting_over(archive, pooled, tmp_path):
    out = tmp_path / "season.parquet"
    shutil.copytree(pooled, out)
    cues = tmp_path / "cues.toml"
    cues.write_text("[cues]\nfloor_spm = 150\n")
    refused = strideclip("reanalyse", archive, "-o", out, "--cues", cues)
    assert refused.returncode == 2 and "other cue settings" in refused.stderr and "--force" in refused.stderr
    redone = strideclip("reanalyse", archive, "-o", out, "--cues", cues, "--force", "--workers", 2)
    assert redone.returncode == 0 and "4 analysed now, 0 done before" in redone.stdout, redone.stdout


def test_without_dask_scheduler_says_what_to_install(archive, tmp_path):
    hide = tmp_path / "no_dask"
    hide.mkdir()
    (hide / "distributed.py").write_text("raise ImportError('No module named distributed')\n")
    env = {**os.environ, "PYTHONPATH": str(hide)}
    done = subprocess.run([find_tool("strideclip"), "reanalyse", str(archive), "-o", str(tmp_path / "out"),
                           "--scheduler", "tcp://127.0.0.1:1"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "pip install 'strideclip[archive]'" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_rerun_after_the_analysis_code_changed_analyses_every_session_again(tmp_path):
    """What a re-analysis is for: the dataset was made by other analysis code (its fingerprint in
    _run.json differs), so nothing done before is kept."""
    from strideclip.store.archive import analysis_fingerprint

    runs = make_archive(tmp_path / "runs", logs=LOGS[:2] + LOGS[3:])  # the header-only log goes in ben/
    out = tmp_path / "season.parquet"
    assert strideclip("reanalyse", runs, "-o", out, "--workers", 1).returncode == 0
    made = json.loads((out / "_run.json").read_text())
    assert made["analysis"] == analysis_fingerprint()
    same = strideclip("reanalyse", runs, "-o", out, "--workers", 1)
    assert "4 log(s), 0 analysed now, 4 done before" in same.stdout, same.stdout
    (out / "_run.json").write_text(json.dumps(dict(made, analysis="made-by-older-code")))
    redone = strideclip("reanalyse", runs, "-o", out, "--workers", 1)
    assert redone.returncode == 0 and "the analysis code changed" in redone.stderr, redone.stderr
    assert "3 analysed now, 0 done before, 1 cannot be analysed" in redone.stdout, redone.stdout
    assert json.loads((out / "_run.json").read_text())["analysis"] == analysis_fingerprint()
