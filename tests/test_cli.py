"""The `strideclip` console script: every product subcommand is listed; unbuilt ones say so."""
import subprocess

import pytest
from click.testing import CliRunner

from mpy import find_tool
from strideclip.cli import NOT_BUILT, cli

PRODUCT_COMMANDS = ["demo", "simulate", "replay", "evaluate", "scan", "live", "record", "dashboard",
                    "report", "export", "history", "flash"]


def test_help_lists_every_product_subcommand():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in PRODUCT_COMMANDS:
        assert f"  {name} " in out


@pytest.mark.parametrize("name", sorted(NOT_BUILT))
def test_unbuilt_subcommands_say_so_and_fail(name):
    result = CliRunner().invoke(cli, [name, "--some-option"])
    assert result.exit_code != 0
    assert "not built yet" in result.output


def test_console_script_runs_demo():
    exe = find_tool("strideclip")
    assert exe, "the strideclip console script is not installed"
    done = subprocess.run([exe, "demo"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "decoded" in done.stdout
