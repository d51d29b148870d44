"""The `strideclip` console script: every product subcommand is listed."""
import ast
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mpy import find_tool
from strideclip.cli import cli

PRODUCT_COMMANDS = ["demo", "simulate", "replay", "evaluate", "scan", "live", "record", "dashboard",
                    "report", "export", "history", "flash", "import"]


def test_help_lists_every_product_subcommand():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in PRODUCT_COMMANDS:
        assert f"  {name} " in out


def test_console_script_runs_demo(tmp_path):
    exe = find_tool("strideclip")
    assert exe, "the strideclip console script is not installed"
    out = tmp_path / "demo"
    done = subprocess.run([exe, "demo", "--minutes", "6", "--speed", "2000", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "steps" in done.stdout and str(out) in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    truth = json.loads((out / "session.truth.json").read_text())
    assert abs(summary["steps"] - len(truth["steps"]["ic_t_s"])) <= 0.05 * len(truth["steps"]["ic_t_s"])
    assert summary["gaps"] or not truth["dropped"]  # losses on the link show up as gaps
    # the recorded log replays to the same picture
    replayed = json.loads(subprocess.run([exe, "replay", str(out / "session.sclog"), "--json"],
                                         capture_output=True, text=True, timeout=300).stdout)
    assert replayed["steps"] == summary["steps"] and replayed["samples"] == summary["samples"]
    # and its report holds the same session
    page = (out / "report.html").read_text()
    data = json.loads(page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0])
    assert data["steps"] == summary["steps"] and data["medians"]["cadence_spm"] == summary["cadence_spm_median"]


def test_every_command_is_found_under_its_own_name():
    """The group imports a command's module when the command is first asked for (#26): each name
    it lists gives the command of that name."""
    assert {"replay", "import", "gateway", "broker-config"} <= set(cli.commands)
    for name, command in cli.commands.items():
        assert command.name == name


def test_replay_imports_only_what_it_uses(tmp_path):
    """`strideclip replay` imports no other command group, nor what only they or an option it was
    not given use: each of them costs every run start-up time (#26)."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print(sorted(sys.modules), file=sys.stderr))\n"
             "from strideclip.cli import main\n"
             "sys.argv = ['strideclip', 'replay', sys.argv[1], '--json']\n"
             "main()\n")
    log = Path(__file__).parent / "data" / "steady_208hz.sclog"
    done = subprocess.run([sys.executable, "-c", probe, str(log)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout)["steps"] > 0, done.stderr
    modules = set(ast.literal_eval(done.stderr.strip().splitlines()[-1]))
    assert "strideclip.cli.run" in modules and "strideclip.session.replay" in modules
    others = {f"strideclip.cli.{m}" for m in ("archive", "broker", "dashboard", "device", "evaluate", "store",
                                              "importing")}
    unused = {"importlib.metadata", "tomllib", "strideclip.stream.outputs", "scipy", "numba"}
    assert not modules & (others | unused), sorted(modules & (others | unused))
