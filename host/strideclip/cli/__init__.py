"""The ``strideclip`` command line: one subcommand per job the product does, one module per group
of them (run, store, device, evaluate); the work itself is in the stages they call."""
from __future__ import annotations

import importlib
import sys
from typing import IO, Any

import click

from strideclip import __version__
from strideclip.cli.common import CtrlC, example
from strideclip.errors import BrokerUnavailable, MissingExtra, OutputError, StrideClipError

# The exit codes (docs/cli.md): 0 done; 1 the run failed (a log that cannot be read, a link lost,
# a history that cannot be used); 2 refused before any work: a bad option (click's own usage
# errors), an output that cannot be written or exists without --force, a port in use, a broker that
# cannot be reached or refuses the credentials (docs/team.md), a part of StrideClip not installed
# (an extra: pip install 'strideclip[...]').
EXIT_FAILED = 1
EXIT_REFUSED = 2


def exit_code(error: StrideClipError) -> int:
    """The exit code for an error that ends a command."""
    return EXIT_REFUSED if isinstance(error, (OutputError, BrokerUnavailable, MissingExtra)) else EXIT_FAILED


class StrideClipFailed(click.ClickException):
    """A StrideClipError ending a command: one line on stderr, the exit code of the rule."""

    def __init__(self, error: StrideClipError):
        super().__init__(str(error))
        self.exit_code = exit_code(error)

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"strideclip: {self.message}", err=True, file=file)


class Commands(click.Group):
    """The strideclip group: every command's StrideClipError becomes StrideClipFailed, in a
    CliRunner as from the console script."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StrideClipError as e:
            raise StrideClipFailed(e) from e
        except KeyboardInterrupt:  # Ctrl-C where a command has no run of its own to end (docs/cli.md)
            click.echo("strideclip: interrupted (Ctrl-C): nothing half-written is kept; run the command again",
                       err=True)
            ctx.exit(CtrlC.INTERRUPTED_EXIT)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=example("strideclip demo", "strideclip COMMAND --help"))
@click.version_option(__version__, prog_name="strideclip")
def cli() -> None:
    """StrideClip: a running-form coach worn at the sacrum."""


class _CommandsByModule(dict):
    """The group's commands (name -> click command), each module imported when one of its commands
    is first asked for: a command does not pay for importing the others (``replay`` of a short log
    takes a few tenths of a second; importing every command group, ~15 ms more)."""

    def __init__(self, where: dict[str, tuple[str, str]]):
        super().__init__(dict.fromkeys(where))
        self._where = where  # name -> (module in strideclip.cli, the command's attribute)

    def __getitem__(self, name: str) -> click.Command:
        command = super().__getitem__(name)
        if command is None:
            module, attribute = self._where[name]
            command = getattr(importlib.import_module(f"strideclip.cli.{module}"), attribute)
            super().__setitem__(name, command)
        return command

    def get(self, name: str, default: Any = None) -> click.Command | None:
        return self[name] if name in self else default

    def values(self) -> list[click.Command]:  # type: ignore[override]
        return [self[name] for name in self]

    def items(self) -> list[tuple[str, click.Command]]:  # type: ignore[override]
        return [(name, self[name]) for name in self]


cli.commands = _CommandsByModule({
    "demo": ("run", "demo"), "simulate": ("run", "simulate"), "replay": ("run", "replay"), "record": ("run", "record"),
    "live": ("run", "live"), "dashboard": ("dashboard", "dashboard"), "gateway": ("team", "gateway"),
    "history": ("store", "history"), "plan": ("store", "plan"), "sync": ("store", "sync"),
    "report": ("store", "report"), "export": ("store", "export"), "reanalyse": ("archive", "reanalyse"),
    "flash": ("device", "flash"), "scan": ("device", "scan"), "broker-config": ("broker", "broker_config"),
    "evaluate": ("evaluate", "evaluate"), "evaluate-cues": ("evaluate", "evaluate_cues_cmd"),
    "evaluate-metrics": ("evaluate", "evaluate_metrics"), "import": ("importing", "import_cmd"),
})


def main() -> None:
    try:
        cli(standalone_mode=True)
    except StrideClipError as e:  # raised outside a command (the group's own work)
        click.echo(f"strideclip: {e}", err=True)
        sys.exit(exit_code(e))
    finally:  # the command has ended, its outputs whole: a Ctrl-C now, as Python shuts down (joining
        import signal  # a pool's threads), would only print a traceback from threading

        signal.signal(signal.SIGINT, signal.SIG_IGN)
