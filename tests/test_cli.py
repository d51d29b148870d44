"""The `strideclip` console script: every product subcommand is listed."""
import json
import subprocess

from click.testing import CliRunner

from mpy import find_tool
from strideclip.cli import cli

PRODUCT_COMMANDS = ["demo", "simulate", "replay", "evaluate", "scan", "live", "record", "dashboard",
                    "report", "export", "history", "flash"]


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
