"""What several command groups share: the options, and the command line's side of the history
(said on the terminal) and of BLE (the backend a test names, Ctrl-C)."""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # (asyncio is imported by the commands that run a loop: 50 ms a command saves)
    import asyncio

CLIPS_OPTION = click.option("--clip", "clip_names", multiple=True, help="A clip's BLE name or address; repeat for several.")
SERIAL_PORTS_OPTION = click.option("--serial", "ports", multiple=True, help="A clip on a USB serial port; repeat for several.")
_CUES_HELP = "Cue settings (TOML, [cues] table; docs/cues.md)"
# --cues of commands that read a log: the settings the analysis uses; of live commands: also sent to each clip
CUES_OPTION = click.option("--cues", "cues_path", type=click.Path(dir_okay=False), default=None,
                           help=f"{_CUES_HELP}: the cue policy the analysis replays.")
LIVE_CUES_OPTION = click.option("--cues", "cues_path", type=click.Path(dir_okay=False), default=None,
                                help=f"{_CUES_HELP}: used by the host and sent to each clip.")
# What a command writes: any path to click, checked (folder, existing file) by
# strideclip.stream.outputs before the work starts, which says a refusal in one line
OUT_FILE = click.Path()
OUT_FOLDER = click.Path()
FORCE_OPTION = click.option("--force", is_flag=True,
                            help="Replace output files that exist (without it, an existing file is refused).")
HISTORY_OPTION = click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                              help="History database (default: $STRIDECLIP_HISTORY, else in the user's data folder).")
NO_HISTORY_OPTION = click.option("--no-history", is_flag=True,
                                 help="Do not add the recorded logs to the session history.")

# The bleak backend for scan/live/record: bleak's platform one unless a test names another.
BLE_BACKEND_OPTION = click.option("--ble-backend", default=None, hidden=True,
                                  help="module:function giving bleak scanner_backend/client_backend (tests).")


def example(*commands: str) -> str:
    """A command's ``--help`` epilog: its example command lines, kept as written."""
    return "\b\nExample:\n" + "\n".join(f"  {c}" for c in commands)


def rows_said(rows: int, steps: int) -> str:
    """What a step table written holds: its rows, and the summary's step count should they differ."""
    return f"{rows} rows, one per step" + ("" if rows == steps else f" (the summary counts {steps} steps)")


def add_to_history(paths: list, db_path: str | None) -> None:
    """Add freshly recorded logs to the session history (strideclip.store.history.catalogue); a
    failure there is said and never costs the recording."""
    from pathlib import Path

    from strideclip.errors import HistoryError
    from strideclip.store.history import catalogue

    try:
        done = catalogue(paths, db_path)
    except (HistoryError, OSError) as e:  # HistoryNotWritable is one
        click.echo(f"not added to the history: {e}", err=True)
        return
    if done is None:
        return
    res, where = done
    for _, why in res.bad:
        click.echo(f"not added to the history: {why}", err=True)
    if res.imported or res.replaced:
        click.echo(f"added to the history ({where}): "
                   + ", ".join(f"#{sid} {Path(p).name}" for p, sid in res.imported + res.replaced))


def history_prior(db_path: str | None, before: str | None = None) -> Callable:
    """prior_for(athlete): their usual form from the history (strideclip.store.history.athlete_priors),
    a history that cannot be read said on stderr."""
    from strideclip.store.history import athlete_priors

    return athlete_priors(db_path, before=before, warn=lambda m: click.echo(m, err=True))


async def resolve_ble_backend(spec: str | None) -> Any:
    """``module:function`` returning (awaitably) an object with bleak ``scanner_backend`` and
    ``client_backend`` classes; None: bleak's platform backend."""
    if not spec:
        return None
    import importlib
    import inspect

    module, _, attr = spec.partition(":")
    made = getattr(importlib.import_module(module), attr)()
    return await made if inspect.isawaitable(made) else made


class CtrlC:
    """Ctrl-C during a command's event loop (``run_ble``): the first sets ``stop``, for the command
    to end as if its time were up (each link ended, each log closed, the summary, the reports); a
    second cancels the command's coroutine (its cleanup still closes every log) and ``aborted`` says
    so. Exit codes (docs/cli.md): 0 for a stop that saved everything, 130 when cut short."""

    INTERRUPTED_EXIT = 130  # the shell's code for a command ended by SIGINT

    def __init__(self) -> None:
        import asyncio

        self.stop = asyncio.Event()  # bound to the loop that first waits on it
        self.presses = 0
        self.aborted = False

    def press(self, task: asyncio.Task) -> None:
        self.presses += 1
        if self.presses == 1:
            click.echo("stopping: ending each clip's link and closing its log (Ctrl-C again to stop at once)",
                       err=True)
            self.stop.set()
        else:
            task.cancel()


def run_ble(coro: Coroutine[Any, Any, Any], *, ctrl_c: CtrlC | None = None) -> Any:
    """Run a command's coroutine in an event loop. Ctrl-C: with ``ctrl_c`` as ``CtrlC`` says;
    without, it cancels the coroutine at once. Returns its result, or [] when it was cancelled."""
    import asyncio
    import signal

    async def main():
        if ctrl_c is None:
            return await coro
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, ctrl_c.press, asyncio.current_task())
        except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (a test's CliRunner), Windows
            return await coro
        try:
            return await coro
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        if ctrl_c:
            ctrl_c.aborted = True
        return []
