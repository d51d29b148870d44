"""Ctrl-C (SIGINT) ends `strideclip live` and `strideclip dashboard` as their time running out
would: every link ended and every log closed, the summary and the logs written on stdout, a
report beside each log, exit code 0. A second Ctrl-C stops at once (exit code 130): every log is
still whole, and nothing half-made is left. Real subprocesses of the command, real signals."""
import json
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mpy import find_tool
from strideclip.session.replay import analyse

INTERRUPTED_EXIT = 130  # docs/cli.md: a run cut short by a second Ctrl-C


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([find_tool("strideclip"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen, prefix: str) -> str:
    line = proc.stdout.readline()
    assert line.startswith(prefix), line + proc.stderr.read()
    return line


def _stop(proc: subprocess.Popen, presses: int = 1) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    if presses > 1:  # the second once the first has been taken (signals of one kind do not queue)
        deadline = time.monotonic() + 30
        err = ""
        while "stopping" not in err:
            assert time.monotonic() < deadline, "the first Ctrl-C was not acknowledged"
            err += proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
    try:
        out, rest = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, rest = proc.communicate()
        pytest.fail(f"still running 120 s after Ctrl-C: {rest}")
    return out, (err if presses > 1 else "") + rest


def _logs_said(out: str) -> list[Path]:
    line = next(ln for ln in out.splitlines() if ln.startswith("logs written: "))
    return [Path(p) for p in line.removeprefix("logs written: ").split(", ")]


def _check_whole_log(log: Path, out: str) -> dict:
    """The log ends as a closed one does (its link's figures last), reads clean, and holds every
    sample the summary on stdout counted."""
    summary, _ = analyse(log)
    assert summary["log_damage"]["clean"], summary["log_damage"]["summary"]
    assert summary["host_events"][-1]["event"] == "link_stats", "the log was not closed by its clip's run"
    said = re.search(rf"^\S+: {re.escape(str(log))}: (\d+) samples .*?, (\d+) steps", out, re.M)
    assert said, f"no summary line for {log} in:\n{out}"
    assert int(said[1]) == summary["samples"] and summary["steps"] > 0
    return summary


def _check_report(log: Path, summary: dict) -> None:
    report = log.with_suffix(".html")
    assert report.is_file(), f"no report beside {log}"
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                                report.read_text(encoding="utf-8"), re.S)[1])
    assert data["log"] == log.name and data["steps"] == summary["steps"]


def test_ctrl_c_ends_live_with_its_summary_logs_and_reports(tmp_path):
    out_dir = tmp_path / "runs"
    proc = _start("live", "--sim", 3, "--speed", 10, "--out", out_dir, "--no-history")
    _wait_for_line(proc, "recording ")
    time.sleep(4)  # 40 s of simulated running
    out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopping" in err
    logs = _logs_said(out)
    assert sorted(logs) == sorted(out_dir.glob("*.sclog")) and len(logs) == 3
    for log in logs:
        _check_report(log, _check_whole_log(log, out))
    assert f"reports written: {', '.join(str(p.with_suffix('.html')) for p in logs)}" in out


def test_ctrl_c_ends_the_dashboard_with_its_summary_logs_and_reports(tmp_path):
    out_dir = tmp_path / "runs"
    proc = _start("dashboard", "--simulate", 3, "--speed", 10, "--minutes", 8, "--port", 0, "--out", out_dir,
                  "--no-history")
    url = _wait_for_line(proc, "dashboard: http://").split()[1]
    deadline = time.monotonic() + 60
    while True:  # until every athlete has steps on the page
        with urllib.request.urlopen(url + "api/state", timeout=10) as r:
            athletes = json.loads(r.read())["athletes"]
        if athletes and all(a["steps"] for a in athletes):
            break
        assert time.monotonic() < deadline, athletes
        time.sleep(0.5)
    out, err = _stop(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    logs = _logs_said(out)
    assert sorted(logs) == sorted(out_dir.glob("*.sclog")) and len(logs) == 3
    for log in logs:
        _check_report(log, _check_whole_log(log, out))


def test_a_second_ctrl_c_stops_at_once_and_leaves_every_log_whole(tmp_path):
    out_dir = tmp_path / "runs"
    proc = _start("live", "--sim", 2, "--speed", 10, "--out", out_dir, "--no-history")
    _wait_for_line(proc, "recording ")
    time.sleep(3)
    out, err = _stop(proc, presses=2)
    assert proc.returncode == INTERRUPTED_EXIT, err
    assert "Traceback" not in err and "strideclip: " in err  # what was left undone is said
    logs = _logs_said(out)
    assert sorted(logs) == sorted(out_dir.glob("*.sclog")) and len(logs) == 2
    for log in logs:
        _check_whole_log(log, out)
    # a report is there whole or not at all: nothing half-written under any name
    left = sorted(p.name for p in out_dir.iterdir() if p.suffix != ".sclog")
    assert all(name.endswith(".html") and not name.startswith(".") for name in left), left
    for report in out_dir.glob("*.html"):
        assert report.read_text(encoding="utf-8").rstrip().endswith("</html>")


def test_ctrl_c_in_a_command_with_no_run_of_its_own_says_so_and_leaves_nothing(tmp_path):
    """Ctrl-C while a command works before it writes anything (here: simulating two hours): one
    line, exit 130, no file, never click's bare "Aborted!"."""
    proc = _start("simulate", "--minutes", "120", "-o", tmp_path / "long.sclog")
    time.sleep(3.0)  # under way (two hours take far longer to simulate)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == INTERRUPTED_EXIT, err
    assert "strideclip: interrupted (Ctrl-C)" in err and "Aborted" not in err and "Traceback" not in err, err
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
