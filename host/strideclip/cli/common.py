"""What several command groups share: the options, and the command line's side of the history
(said on the terminal) and of BLE (the backend a test names, Ctrl-C)."""
from __future__ import annotations

import click

CLIPS_OPTION = click.option("--clip", "clip_names", multiple=True, help="A clip's BLE name or address; repeat for several.")
SERIAL_PORTS_OPTION = click.option("--serial", "ports", multiple=True, help="A clip on a USB serial port; repeat for several.")
CUES_OPTION = click.option("--cues", "cues_path", type=click.Path(dir_okay=False), default=None,
                           help="Cue settings (TOML, [cues] table; docs/cues.md). Live: also sent to each clip.")
HISTORY_OPTION = click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                              help="History database (default: $STRIDECLIP_HISTORY, else in the user's data folder).")
NO_HISTORY_OPTION = click.option("--no-history", is_flag=True,
                                 help="Do not add the recorded logs to the session history.")

# The bleak backend for scan/live/record: bleak's platform one unless a test names another.
BLE_BACKEND_OPTION = click.option("--ble-backend", default=None, hidden=True,
                                  help="module:function giving bleak scanner_backend/client_backend (tests).")


def add_to_history(paths, db_path) -> None:
    """Add freshly recorded logs to the session history (strideclip.store.history.catalogue); a
    failure there is said and never costs the recording."""
    from pathlib import Path

    from strideclip.errors import HistoryError
    from strideclip.store.history import catalogue

    try:
        done = catalogue(paths, db_path)
    except (HistoryError, OSError) as e:
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


def history_prior(db_path, before: str | None = None):
    """prior_for(athlete): their usual form from the history (strideclip.store.history.athlete_priors),
    a history that cannot be read said on stderr."""
    from strideclip.store.history import athlete_priors

    return athlete_priors(db_path, before=before, warn=lambda m: click.echo(m, err=True))


async def resolve_ble_backend(spec: str | None):
    """``module:function`` returning (awaitably) an object with bleak ``scanner_backend`` and
    ``client_backend`` classes; None: bleak's platform backend."""
    if not spec:
        return None
    import importlib
    import inspect

    module, _, attr = spec.partition(":")
    made = getattr(importlib.import_module(module), attr)()
    return await made if inspect.isawaitable(made) else made


def run_ble(coro):
    import asyncio

    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return []
