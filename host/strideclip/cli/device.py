"""Commands for the clip as a device: flash (the firmware onto it), scan (clips nearby)."""
from __future__ import annotations

import click

from strideclip.cli.common import BLE_BACKEND_OPTION, example, resolve_ble_backend, run_ble


@click.command(epilog=example("strideclip flash --port /dev/ttyUSB0 --dry-run"))
@click.option("--port", required=True, help="The clip's USB serial port, e.g. /dev/ttyUSB0.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="A JSON file of config overrides to put on the clip (checked first).")
@click.option("--dry-run", is_flag=True, help="Compile and check, print the copy commands, touch no device.")
@click.option("--no-reset", is_flag=True, help="Leave the clip at its REPL instead of restarting it.")
def flash(port: str, config_path: str | None, dry_run: bool, no_reset: bool) -> None:
    """Copy the firmware onto a clip already running MicroPython (firmware/README.md)."""
    from strideclip.device.flash import flash as run_flash

    run_flash(port, config_path=config_path, dry_run=dry_run, reset=not no_reset, echo=click.echo)
    if not dry_run:
        click.echo(f"copied to the clip on {port}" + ("" if no_reset else "; it restarts with the new firmware"))


@click.command(epilog=example("strideclip scan --seconds 5"))
@click.option("--seconds", type=click.FloatRange(0.2, 60), default=3.0, show_default=True,
              help="How long to listen, seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
@BLE_BACKEND_OPTION
def scan(seconds: float, as_json: bool, ble_backend: str | None) -> None:
    """List clips advertising nearby: name, address, signal, battery."""
    import json

    from strideclip.link.ble import scan as ble_scan

    async def main():
        backend = await resolve_ble_backend(ble_backend)
        return await ble_scan(seconds, backend=backend and backend.scanner_backend)

    clips = run_ble(main())
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in clips]))
        return
    if not clips:
        click.echo("no clips found (are they on and not connected to another host?)")
    for c in clips:
        battery = f"{c.battery_pct} %" if c.battery_pct is not None else "?"
        click.echo(f"{c.name:<22} {c.address}  {c.rssi_dbm if c.rssi_dbm is not None else '?':>4} dBm  battery {battery}")
