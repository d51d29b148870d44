"""Every command as a user meets it when told to write where it cannot (issue #23, docs/cli.md):
a missing folder, a read-only folder, a file that exists (with and without --force), a port in
use. Each ends in one line naming the path and what to do, the documented exit code, no
traceback, and nothing left behind; an interrupted write leaves nothing half-made.

Read-only folders are real: a 0555 folder, and when the tests run as root (who may write there)
the command runs without the capabilities that let root ignore permissions (CAP_DAC_OVERRIDE,
CAP_DAC_READ_SEARCH dropped from the bounding set before exec), so the kernel refuses it the
folder as it would any user."""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mpy import find_tool
from strideclip.cli import EXIT_FAILED, EXIT_REFUSED, cli

DATA = Path(__file__).parent / "data"
LOG = DATA / "lossy_104hz.sclog"  # one simulated minute at 104 Hz: quick to analyse
IMPORT_CSV = DATA / "import" / "csv" / "phone_waist_100hz.csv"  # the generic CSV example (tests/test_import.py)
IMPORT_COLUMNS = "t=time_ms:ms,ax=accX:mps2,ay=accY:mps2,az=accZ:mps2"

# Every file a command is told to write: name -> (its option, the command line for a path p;
# ``ok``: a writable folder for the command's other outputs).
FILE_OUTPUTS = {
    "simulate": ("-o", lambda p, ok=None: ["simulate", "--minutes", "1", "-o", p]),
    "replay --steps-csv": ("--steps-csv", lambda p, ok=None: ["replay", LOG, "--steps-csv", p]),
    "report -o": ("-o", lambda p, ok=None: ["report", LOG, "--no-history", "-o", p]),
    "report --png": ("--png", lambda p, ok: ["report", LOG, "--no-history", "-o", ok / "r-ok.html", "--png", p]),
    "export csv": ("-o", lambda p, ok=None: ["export", LOG, "--format", "csv", "-o", p]),
    "export parquet": ("-o", lambda p, ok=None: ["export", LOG, "--format", "parquet", "-o", p]),
    "export fit": ("-o", lambda p, ok=None: ["export", LOG, "--format", "fit", "-o", p]),
    "evaluate --events-out": ("--events-out", lambda p, ok=None: ["evaluate", "csv", "--samples", LOG, "--reference",
                                                                  LOG, "--rate-hz", "100", "--events-out", p]),
    "import": ("-o", lambda p, ok=None: ["import", IMPORT_CSV, "--format", "csv", "--columns", IMPORT_COLUMNS, "-o", p]),
    "record": ("-o", lambda p, ok=None: ["record", "--serial", "/dev/null", "--no-history", "-o", p]),
    "history --db": ("--db", lambda p, ok=None: ["history", "--db", p]),
}
FORCEABLE = [name for name in FILE_OUTPUTS if name not in ("record", "history --db")]
FOLDER_OUTPUTS = {
    "live": lambda p, ok=None: ["live", "--sim", "1", "--seconds", "1", "--no-history", "--out", p],
    "demo": lambda p, ok=None: ["demo", "--minutes", "6", "--speed", "10000", "--out", p],
    "dashboard": lambda p, ok=None: ["dashboard", "--simulate", "1", "--port", "0", "--no-history", "--out", p],
    "sync": lambda p, ok=None: ["sync", "--clip", "nobody", "--no-history", "--out", p],
}


def _invoke(*args) -> tuple[int, str, str]:
    """A strideclip command in this process (in a thread: a browser test on this worker leaves an
    event loop in the main thread): exit code, stdout, stderr."""
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, cli, [str(a) for a in args]).result()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


def _files(folder: Path) -> set[str]:
    """Every file and folder under ``folder``, hidden ones (a temporary .part) included."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _refused(code: int, out: str, err: str, path, todo: str) -> None:
    """One line on stderr naming the path and what to do, exit 2, no traceback."""
    lines = err.strip().splitlines()
    assert code == EXIT_REFUSED, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("strideclip: "), err
    assert str(path) in lines[0] and todo in lines[0], (lines[0], path, todo)
    assert "Traceback" not in out + err


# --- a missing folder, a file that exists ------------------------------------------------------

@pytest.mark.parametrize("name", list(FILE_OUTPUTS))  # (only the default history makes its own folder)
def test_a_file_in_a_missing_folder_is_refused_before_any_work(name, tmp_path):
    option, args = FILE_OUTPUTS[name]
    target = tmp_path / "no" / "such" / "out.x"
    before = _files(tmp_path)
    _refused(*_invoke(*args(target, tmp_path)), target, f"create it or choose another {option}")
    assert _files(tmp_path) == before


@pytest.mark.parametrize("name", FILE_OUTPUTS)
def test_a_file_under_a_file_is_refused(name, tmp_path):
    option, args = FILE_OUTPUTS[name]
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    target = tmp_path / "notes.txt" / "out.x"
    _refused(*_invoke(*args(target, tmp_path)), target, f"choose another {option}")
    assert _files(tmp_path) == {"notes.txt"}


@pytest.mark.parametrize("name", [n for n in FILE_OUTPUTS if n != "history --db"])  # a history is opened, not made
def test_an_existing_file_is_refused_without_force_and_kept(name, tmp_path):
    option, args = FILE_OUTPUTS[name]
    target = tmp_path / "out.x"
    target.write_bytes(b"keep me")
    before = _files(tmp_path)
    _refused(*_invoke(*args(target, tmp_path)), target,
             f"add --force to replace it, or choose another {option}" if name in FORCEABLE
             else f"choose another {option}")
    assert target.read_bytes() == b"keep me" and _files(tmp_path) == before


@pytest.mark.parametrize("name", [n for n in FORCEABLE if n != "evaluate --events-out"])  # (needs a data set to run)
def test_force_replaces_an_existing_file_and_leaves_nothing_else(name, tmp_path):
    _, args = FILE_OUTPUTS[name]
    target = tmp_path / ("out.sclog" if name == "simulate" else "out.x")
    target.write_bytes(b"old")
    code, out, err = _invoke(*args(target, tmp_path), "--force")
    assert code == 0, err
    assert target.read_bytes() != b"old" and target.stat().st_size > 100
    assert not [f for f in _files(tmp_path) if ".part" in f], _files(tmp_path)


@pytest.mark.parametrize("name", [n for n in FILE_OUTPUTS if n != "history --db"])
def test_a_folder_given_for_a_file_is_refused(name, tmp_path):
    option, args = FILE_OUTPUTS[name]
    (tmp_path / "runs").mkdir()
    _refused(*_invoke(*args(tmp_path / "runs", tmp_path)), tmp_path / "runs", f"is a folder: give {option} a file name")
    assert _files(tmp_path) == {"runs"}


def test_the_log_being_read_is_never_the_output_even_with_force(tmp_path):
    log = tmp_path / "run.sclog"
    shutil.copy(LOG, log)
    for args in (["export", log, "--format", "csv", "-o", log, "--force"],
                 ["report", log, "-o", log, "--force", "--no-history"],
                 ["replay", log, "--steps-csv", log, "--force"]):
        _refused(*_invoke(*args), log, "a file this command reads: choose another")
    assert log.read_bytes() == LOG.read_bytes()


@pytest.mark.parametrize("name", FOLDER_OUTPUTS)
def test_an_out_folder_in_a_missing_folder_is_refused_before_anything_opens(name, tmp_path):
    target = tmp_path / "no" / "such" / "out"
    _refused(*_invoke(*FOLDER_OUTPUTS[name](target)), target, "create it or choose another --out")
    assert _files(tmp_path) == set()


@pytest.mark.parametrize("name", FOLDER_OUTPUTS)
def test_an_out_folder_that_is_a_file_is_refused(name, tmp_path):
    target = tmp_path / "runs"
    target.write_text("a file")
    _refused(*_invoke(*FOLDER_OUTPUTS[name](target)), target, "is a file, not a folder: choose another --out")
    assert target.read_text() == "a file" and _files(tmp_path) == {"runs"}


def test_the_demo_wants_a_new_folder(tmp_path):
    (tmp_path / "demo").mkdir()
    _refused(*_invoke(*FOLDER_OUTPUTS["demo"](tmp_path / "demo")), tmp_path / "demo", "choose a new folder for --out")
    assert _files(tmp_path) == {"demo"}


# --- a read-only folder: a real one, for root too ---------------------------------------------

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def _as_a_user() -> None:
    """(In the child, before exec.) Root keeps its uid but loses what lets it write anywhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run(args, *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real console script, as a user without root's override when the tests run as root."""
    return subprocess.run([find_tool("strideclip"), *[str(a) for a in args]], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, preexec_fn=_as_a_user if os.geteuid() == 0 else None)


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder the command cannot write in (checked with a child run as the command is)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "kept.txt").write_text("here before")
    folder.chmod(0o555)
    probe = subprocess.run([sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"], capture_output=True,
                           preexec_fn=_as_a_user if os.geteuid() == 0 else None)
    if probe.returncode == 0:
        folder.chmod(0o755)
        pytest.skip("this system lets the tests write into a 0555 folder (root without capability control?)")
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("name", [*FILE_OUTPUTS, *FOLDER_OUTPUTS])
def test_a_read_only_folder_is_refused_by_every_command(name, read_only, tmp_path):
    if name in FILE_OUTPUTS:
        option, args = FILE_OUTPUTS[name]
        targets = [read_only / "out.x"]
    else:
        option, args = "--out", FOLDER_OUTPUTS[name]
        targets = [read_only / "new"] + ([read_only] if name != "demo" else [])  # into it, and one made in it
    for target in targets:
        before = _files(tmp_path)
        done = _run(args(target, tmp_path), cwd=tmp_path)
        _refused(done.returncode, done.stdout, done.stderr, target,
                 f"is not writable (Permission denied): make it writable or choose another {option}")
        assert _files(tmp_path) == before
    if name == "history --db":
        assert "not a StrideClip history database" not in done.stderr


# --- the dashboard's port ---------------------------------------------------------------------

def test_the_dashboard_on_a_port_in_use_says_so_and_opens_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run(["dashboard", "--simulate", "1", "--port", port, "--no-history", "--out", tmp_path / "sessions"],
                    cwd=tmp_path)
    _refused(done.returncode, done.stdout, done.stderr, f"port {port} on 127.0.0.1 is in use",
             "choose another --port")
    assert _files(tmp_path) == set()  # no athlete-1-*.sclog, no folder


# --- interrupted: nothing half-made -----------------------------------------------------------

def test_a_report_interrupted_while_writing_leaves_nothing_and_reruns_without_force(tmp_path):
    log = tmp_path / "run.sclog"
    shutil.copy(LOG, log)
    made = _files(tmp_path)
    out = tmp_path / "run.html"
    proc = subprocess.Popen([find_tool("strideclip"), "report", log, "-o", out, "--png", tmp_path / "run.png",
                             "--no-history"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(".part" in f for f in _files(tmp_path)):  # caught in the act of writing
        assert proc.poll() is None and time.monotonic() < deadline, "the report ended before it was seen writing"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert _files(tmp_path) == made  # no report, no image, no temporary file
    code, _, err = _invoke("report", log, "-o", out, "--png", tmp_path / "run.png", "--no-history")
    assert code == 0 and out.exists() and (tmp_path / "run.png").exists(), err


def test_a_failed_write_removes_every_file_of_the_command(tmp_path, monkeypatch):
    """The PNG fails after the HTML was written: neither appears (they are one report)."""
    from strideclip.views import report

    def failing_png(data, path):
        Path(path).write_bytes(b"half a png")
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_png", failing_png)
    with pytest.raises(KeyboardInterrupt):
        report.write_report(LOG, tmp_path / "r.html", png=tmp_path / "r.png", history_db=False)
    assert _files(tmp_path) == set()


# --- what the messages say --------------------------------------------------------------------

def test_written_tables_say_their_rows_and_agree_with_the_summary(tmp_path):
    code, out, err = _invoke("replay", LOG, "--json", "--steps-csv", tmp_path / "steps.csv")
    steps = json.loads(out)["steps"]
    rows = len((tmp_path / "steps.csv").read_text().splitlines()) - 1
    assert code == 0 and f"wrote {tmp_path / 'steps.csv'}: {rows} rows, one per step" in err and rows == steps
    code, out, _ = _invoke("export", LOG, "--format", "csv", "-o", tmp_path / "e.csv")
    assert code == 0 and f"wrote {tmp_path / 'e.csv'} (csv): {steps} rows, one per step" in out
    code, out, _ = _invoke("export", LOG, "--format", "fit", "-o", tmp_path / "e.fit")
    assert code == 0 and "records, one per second" in out and f"({steps} steps)" in out


def test_a_header_only_log_gets_one_clear_failure_from_replay_report_and_export(tmp_path):
    from strideclip.stream.logwriter import SessionLogWriter

    log = tmp_path / "empty.sclog"
    SessionLogWriter(log, header={"athlete": "Ana", "source": "ble"}).close()
    for args in (["replay", log], ["report", log, "-o", tmp_path / "r.html"],
                 ["export", log, "--format", "csv", "-o", tmp_path / "s.csv"]):
        code, out, err = _invoke(*args)
        assert code == EXIT_FAILED and len(err.strip().splitlines()) == 1 and "no samples" in err, (args, err)
    assert _files(tmp_path) == {"empty.sclog"}


# --- the help: examples, units, ranges as enforced --------------------------------------------

def _commands(group: click.Group = cli, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


@pytest.mark.parametrize("name,command", list(_commands()), ids=[n for n, _ in _commands()])
def test_every_command_has_an_example_and_every_option_a_description(name, command):
    assert command.epilog and f"strideclip {name.split()[0]}" in command.epilog, name
    help_text = _invoke(*name.split(), "--help")[1]
    assert "Example:" in help_text
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{name} {param.opts[0]} has no description"
            if param.type in (click.INT, click.FLOAT):
                raise AssertionError(f"{name} {param.opts[0]}: a number with no range")


@pytest.mark.parametrize("name,command", list(_commands()), ids=[n for n, _ in _commands()])
def test_cues_help_says_sent_to_the_clip_only_where_it_is(name, command):
    cues = next((p for p in command.params if p.name == "cues_path"), None)
    if cues is None:
        return
    sends = name in ("live", "record", "dashboard")
    assert ("sent to each clip" in cues.help) == sends, (name, cues.help)


def test_dashboard_minutes_advertise_what_the_simulated_run_accepts():
    from strideclip.errors import ConfigError
    from strideclip.sim.scenario import demo_run

    minutes = next(p for p in cli.commands["dashboard"].params if p.name == "minutes").type
    demo_run(minutes=minutes.min)  # the least it advertises is made
    with pytest.raises(ConfigError):
        demo_run(minutes=minutes.min - 0.5)
    code, _, err = _invoke("dashboard", "--simulate", "1", "--minutes", minutes.min - 0.5)
    assert code == 2 and "--minutes" in err


@pytest.mark.parametrize("mount", [("0", "0", "400"), ("0", "95", "0"), ("-181", "0", "0")])
def test_simulate_refuses_mount_angles_out_of_range(mount, tmp_path):
    code, _, err = _invoke("simulate", "--minutes", "1", "--mount", *mount, "-o", tmp_path / "x.sclog")
    assert code == 2 and "--mount" in err and _files(tmp_path) == set()


def test_evaluate_metrics_prints_lines_not_dicts():
    code, out, _ = _invoke("evaluate-metrics", "sim")
    assert code == 0 and "{" not in out and "'" not in out
    cadence = next(line for line in out.splitlines() if line.startswith("cadence_spm "))
    assert "mean |error|" in cadence and "rms error" in cadence


def test_a_fatigue_onset_outside_the_run_and_a_plan_with_no_history_are_refused_in_one_line(tmp_path):
    from mpy import find_tool

    def run(*args):
        return subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=120)

    onset = run("simulate", "--minutes", "3", "--fatigue-onset-min", "30", "-o", tmp_path / "x.sclog")
    assert onset.returncode == 2 and "--fatigue-onset-min" in onset.stderr and "3-minute run" in onset.stderr
    plan = run("plan", "--athlete", "Nobody", "--db", tmp_path / "h.sqlite")
    assert plan.returncode == 1 and plan.stderr.startswith("strideclip: ") and "Usage" not in plan.stderr, plan.stderr
    assert "no running session of Nobody" in plan.stderr and list(tmp_path.glob("*.sclog")) == []
