"""``strideclip dashboard``: the coach's live dashboard, of clips in reach, simulated athletes, or
clips gateways carry through a broker (``--broker``, docs/team.md)."""
from __future__ import annotations

import sys

import click

from strideclip.cli.common import (BLE_BACKEND_OPTION, CLIPS_OPTION, HISTORY_OPTION, LIVE_CUES_OPTION,
                                   NO_HISTORY_OPTION, OUT_FOLDER, SERIAL_PORTS_OPTION, CtrlC, example, history_prior,
                                   resolve_ble_backend, run_ble)
from strideclip.cli.progress import ProgressBar
from strideclip.cli.run import DEMO_RUN_MIN_MINUTES
from strideclip.cli.session_end import end_live_run
from strideclip.cli.team import broker_options, broker_spec_of, close_broker, open_broker
from strideclip.coaching.cueconfig import load_if_given


@click.command(epilog=example("strideclip dashboard --simulate 3 --speed 10",
                              "strideclip dashboard --broker mqtt://192.168.1.20:1883 --broker-credentials coach.json "
                              "--clip anna --clip ben"))
@CLIPS_OPTION
@broker_options
@SERIAL_PORTS_OPTION
@click.option("--simulate", "n_sim", type=click.IntRange(0, 24), default=0,
              help="Follow this many simulated athletes through the whole pipeline (no clip needed).")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True,
              help="Simulated athletes: pace, times real time.")
@click.option("--minutes", type=click.FloatRange(DEMO_RUN_MIN_MINUTES, 180), default=30.0, show_default=True,
              help="Simulated athletes: length of the run, minutes.")
@click.option("--rate-hz", type=click.Choice(["104", "208", "416"]), default="208", show_default=True,
              help="Simulated athletes: the clip's sample rate, Hz.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8050, show_default=True,
              help="TCP port to serve the page on (0: any free port).")
@click.option("--lan", is_flag=True, help="Serve to the LAN: pages and cues then need the access token printed here.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Another name browsers use for this machine (its host names and addresses are known); repeatable.")
@click.option("--out", "out_dir", type=OUT_FOLDER, metavar="FOLDER", default="strideclip-sessions",
              show_default=True,
              help="Folder for the session logs (and the reports written when the run ends); the page serves "
                   "only these.")
@click.option("--seconds", type=click.FloatRange(1, 24 * 3600), default=None,
              help="Stop after this many seconds (default: Ctrl-C).")
@LIVE_CUES_OPTION
@HISTORY_OPTION
@NO_HISTORY_OPTION
@BLE_BACKEND_OPTION
def dashboard(clip_names: tuple[str, ...], broker_url: str | None, broker_credentials: str | None, broker_user: str,
              broker_tls: tuple,
              ports: tuple[str, ...], n_sim: int, speed: float, minutes: float, rate_hz: str, host: str, port: int,
              lan: bool, allow_hosts: tuple[str, ...], out_dir: str, seconds: float | None, cues_path: str | None,
              db_path: str | None, no_history: bool, ble_backend: str | None) -> None:
    """The coach's live dashboard in the browser: every athlete at a glance, offline."""
    import ipaddress
    from pathlib import Path

    from strideclip.stream.outputs import check_folder

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not lan:
        raise click.UsageError(f"--host {host} serves beyond this machine: add --lan (pages and cues then need a token)")
    if not (clip_names or ports or n_sim):
        raise click.UsageError("give --clip NAME, --serial PORT or --simulate N")
    broker = broker_spec_of(broker_url, broker_credentials, broker_user, clip_names, broker_tls)
    check_folder(out_dir, option="--out")  # both before any athlete is simulated or any log opened
    _check_port(host, port)
    from strideclip.link.sources import serial_source, sim_source
    from strideclip.sim import demo_run, simulate

    sources = [serial_source(p) for p in ports]
    if n_sim:  # the page comes up once they are simulated: say why the wait
        click.echo(f"simulating {n_sim} athlete(s), {minutes} min each…", err=True)
    with ProgressBar(f"simulating {n_sim} athlete(s)") as bar:
        runs = [simulate(demo_run(200 + i, minutes=minutes, rate_hz=int(rate_hz)), progress=bar.part(i, n_sim))
                for i in range(n_sim)]
    sources += [sim_source(f"athlete-{i + 1}", run, speed, answers=True) for i, run in enumerate(runs)]
    ctrl_c, clips = CtrlC(), []
    run_ble(_dashboard_main(sources, list(clip_names), Path(out_dir), host, port, lan, allow_hosts, seconds,
                            ble_backend, load_if_given(cues_path), None if no_history else history_prior(db_path),
                            clips, ctrl_c.stop, broker), ctrl_c=ctrl_c)
    sys.exit(end_live_run(clips, ctrl_c, history=not no_history, db_path=db_path))


def _check_port(host: str, port: int) -> None:
    """Refuse a port the dashboard cannot listen on, before anything is opened: bound (as the
    server binds it) and let go at once. Port 0 is always free."""
    import errno

    from strideclip.errors import OutputError, PortInUse, needs_extra

    bind_sockets = needs_extra("bokeh.server.util", "dashboard").bind_sockets  # the first of the page's needs

    if port == 0:
        return
    try:
        sockets, _ = bind_sockets(host, port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is in use (another dashboard?): stop it, or choose another "
                            f"--port (0: any free port)", path=f"{host}:{port}") from None
        raise OutputError(f"cannot listen on {host}:{port} ({e.strerror or e}): choose another --host or --port",
                          path=f"{host}:{port}") from None
    for sock in sockets:
        sock.close()


async def _dashboard_main(sources, names, out_dir, host, port, lan, allow_hosts, seconds, backend_spec, cue_settings,
                          prior_for, opened, stop, broker=None):
    """Open the clips (the named ones through the broker, with ``broker``, else found in a BLE
    scan) and serve the page until ``seconds`` pass or ``stop`` (Ctrl-C): then the server's
    cleanup ends every link and closes every log (strideclip.session.live.run_clips)."""
    from strideclip.link.ble import pick
    from strideclip.link.ble import scan as ble_scan

    backend = await resolve_ble_backend(backend_spec)
    sources, link = list(sources), None
    if broker:
        link, carried = await open_broker(broker, names)
        sources += carried
    elif names:
        sources += pick(await ble_scan(3.0, backend=backend and backend.scanner_backend), names)
    try:
        await _serve_clips(sources, out_dir, host, port, lan, allow_hosts, seconds, backend, cue_settings, prior_for,
                           opened, stop)
    finally:
        if link is not None:
            await close_broker(link)


async def _serve_clips(sources, out_dir, host, port, lan, allow_hosts, seconds, backend, cue_settings, prior_for,
                       opened, stop):
    import asyncio

    from strideclip.session.live import open_clips
    from strideclip.views.dashboard.server import serve

    clips = open_clips(sources, out_dir, backend=backend and backend.client_backend, cue_settings=cue_settings,
                       prior_for=prior_for)
    opened += clips
    serving = asyncio.ensure_future(serve(clips, out_dir=out_dir, host=host, port=port, lan=lan, seconds=seconds,
                                          echo=click.echo, allow_hosts=[h.lower() for h in allow_hosts]))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:  # Ctrl-C (once, or twice: this is cancelled too): the server's own cleanup still runs
        stopping.cancel()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
    if not serving.cancelled():
        serving.result()  # what went wrong in the server, if anything, is the command's error

