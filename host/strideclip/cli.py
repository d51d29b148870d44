"""The ``strideclip`` command line: one subcommand per job the product does."""
from __future__ import annotations

import sys

import click

from strideclip import __version__
from strideclip.errors import StrideClipError

# Subcommands the product will have but that are not built yet, with the issue that builds them.
NOT_BUILT = {
    "simulate": ("write a simulated run to a session log", 3),
    "replay": ("stream a session log through the host pipeline", 3),
    "evaluate": ("score the step detector against reference footfalls", 4),
    "scan": ("list clips advertising nearby", 8),
    "live": ("live terminal view of one or more clips", 8),
    "record": ("record clips to session logs", 8),
    "dashboard": ("the coach's live web dashboard", 9),
    "report": ("an HTML report of one session", 10),
    "export": ("export a session as CSV, Parquet or FIT", 10),
    "history": ("list sessions and weekly trends", 10),
    "flash": ("copy the firmware onto a clip running MicroPython", 7),
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strideclip")
def cli() -> None:
    """StrideClip: a running-form coach worn at the sacrum."""


@cli.command()
def demo() -> None:
    """Run the main job on an embedded default (see README)."""
    from strideclip.demo import run_demo

    run_demo()


def _not_built_command(name: str, summary: str, issue: int) -> click.Command:
    @click.command(name=name, help=f"{summary[0].upper()}{summary[1:]} (not built yet).",
                   context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def command() -> None:
        click.echo(f"strideclip {name}: not built yet (issue #{issue}: {summary}).", err=True)
        sys.exit(2)

    return command


for _name, (_summary, _issue) in NOT_BUILT.items():
    cli.add_command(_not_built_command(_name, _summary, _issue))


def main() -> None:
    try:
        cli(standalone_mode=True)
    except StrideClipError as e:
        click.echo(f"strideclip: {e}", err=True)
        sys.exit(1)
