"""The progress bar (strideclip.cli.progress): drawn on stderr when it is a terminal (a real
pseudo-terminal here) and the work takes more than a moment; never with --json, never when
piped, and never on stdout."""
import json
import os
import pty
import subprocess
import threading

import pytest

from mpy import find_tool


def _run(*args, terminal: bool) -> tuple[int, str, str]:
    """The command with its stdout piped and its stderr a terminal (or piped)."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    argv = [find_tool("strideclip"), *map(str, args)]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = []

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the command has ended: the terminal is gone
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = proc.stdout.read().decode()
    proc.wait(timeout=300)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(seen).decode(errors="replace")


# Long enough that replaying it takes more than the bar's 1 s wait (#26: 20 minutes replay in ~0.5 s)
LONG_MIN = 90


@pytest.fixture(scope="module")
def long_log(tmp_path_factory):
    log = tmp_path_factory.mktemp("progress") / "long.sclog"
    rc, out, err = _run("simulate", "--minutes", LONG_MIN, "-o", log, terminal=True)
    assert rc == 0, err
    assert f"simulating {LONG_MIN} min" in err and "%" in err, "no progress bar while simulating on a terminal"
    assert "simulating" not in out and out.startswith(f"wrote {log}")
    return log


def test_replay_shows_a_bar_on_a_terminal_only(long_log):
    rc, out, err = _run("replay", long_log, terminal=True)
    assert rc == 0 and f"reading {long_log.name}" in err and "%" in err
    assert "reading" not in out and out.startswith(f"{long_log}:")
    rc, out, err = _run("replay", long_log, "--json", terminal=True)  # --json: silent
    assert rc == 0 and "reading" not in err and json.loads(out)["samples"] > 0
    rc, out, err = _run("replay", long_log, terminal=False)  # piped: silent
    assert rc == 0 and "reading" not in err and out.startswith(f"{long_log}:")


def test_report_and_export_show_the_same_bar(long_log, tmp_path):
    rc, _, err = _run("report", long_log, "-o", tmp_path / "r.html", "--no-history", terminal=True)
    assert rc == 0 and f"reading {long_log.name}" in err and "%" in err
    rc, _, err = _run("export", long_log, "--format", "csv", "-o", tmp_path / "s.csv", terminal=False)
    assert rc == 0 and "reading" not in err


def test_evaluate_cues_shows_a_bar_instead_of_a_guess(tmp_path):
    rc, out, err = _run("evaluate-cues", "--seeds", 1, terminal=True)
    assert rc == 0 and "simulating 1 fatigue runs and 1 steady runs" in err and "%" in err
    assert "on a laptop" not in err  # no guessed duration: the bar's time left comes from the runs done
    rc, out, err = _run("evaluate-cues", "--seeds", 1, "--json", terminal=True)
    assert rc == 0 and "simulating" not in err and json.loads(out)["seeds"] == 1
