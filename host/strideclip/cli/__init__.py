"""The ``strideclip`` command line: one subcommand per job the product does, one module per group
of them (run, store, device, evaluate); the work itself is in the stages they call."""
from __future__ import annotations

import sys

import click

from strideclip import __version__
from strideclip.cli import device, evaluate, run, store
from strideclip.errors import StrideClipError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="strideclip")
def cli() -> None:
    """StrideClip: a running-form coach worn at the sacrum."""


for _command in (run.demo, run.simulate, run.replay, run.record, run.live, run.dashboard,
                 store.history, store.plan, store.sync, store.report, store.export,
                 device.flash, device.scan,
                 evaluate.evaluate, evaluate.evaluate_cues_cmd, evaluate.evaluate_metrics):
    cli.add_command(_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except StrideClipError as e:
        click.echo(f"strideclip: {e}", err=True)
        sys.exit(1)
