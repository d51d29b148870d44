"""A team over an MQTT broker (docs/team.md): ``strideclip gateway``, and the ``--broker`` options
``live`` and ``dashboard`` take to follow clips that gateways carry."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from strideclip.cli.common import (BLE_BACKEND_OPTION, CLIPS_OPTION, OUT_FOLDER, SERIAL_PORTS_OPTION, CtrlC, example,
                                   resolve_ble_backend, run_ble)

if TYPE_CHECKING:  # (the links load only when a command runs)
    from strideclip.link.broker import BrokerLink
    import ssl

    from strideclip.link.mqtt import BrokerUrl
    from strideclip.link.sources import ClipSource
    from strideclip.session.gateway import Gateway

RESCAN_S = 5.0  # a gateway following BLE clips looks for those not yet found this often
SIM_MINUTES_MIN = 5.0  # a simulated athlete's run (strideclip.sim.scenario.demo_run) lasts at least this
CREDENTIALS_HELP = 'JSON {"users": {USER: PASSWORD}} (strideclip broker-config writes it; docs/team.md).'


@dataclass
class BrokerSpec:
    """Where the broker is and who we are on it, checked before any work."""

    url: BrokerUrl
    user: str | None
    password: str | None
    tls_context: ssl.SSLContext | None = None  # mqtts://: the CA and client certificate given (built once)


def broker_spec(url: str, credentials: str | None, user: str, tls: tuple = (None, None, None)) -> BrokerSpec:
    """The --broker options, checked: a bad URL, credentials file or TLS file is a usage error.
    ``tls``: (--broker-ca, --broker-cert, --broker-key)."""
    from strideclip.link.mqtt import ClientTls, TlsFileError, parse_url, read_password

    try:
        parsed = parse_url(url)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--broker") from None
    tls_context = None
    if any(tls):
        ca, cert, key = tls
        if not parsed.tls:
            raise click.UsageError("--broker-ca, --broker-cert and --broker-key are for a TLS broker: "
                                   "give --broker mqtts://HOST:PORT")
        if key and not cert:
            raise click.UsageError("--broker-key goes with --broker-cert: the client's certificate")
        try:
            tls_context = ClientTls(ca, cert, key).context()
        except TlsFileError as e:
            raise click.BadParameter(str(e), param_hint=e.option) from None
    if not credentials:  # a broker that lets anyone in (a test's, a closed network's)
        return BrokerSpec(parsed, None, None, tls_context)
    try:
        return BrokerSpec(parsed, user, read_password(credentials, user), tls_context)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--broker-credentials") from None


def broker_tls_options(f: Callable) -> Callable:
    """--broker-ca, --broker-cert, --broker-key, handed to the command as one ``broker_tls``
    (ca, cert, key) for ``broker_spec``."""
    @functools.wraps(f)
    def command(*args: Any, broker_ca: str | None, broker_cert: str | None, broker_key: str | None,
                **kwargs: Any) -> Any:
        return f(*args, broker_tls=(broker_ca, broker_cert, broker_key), **kwargs)

    pem = click.Path(exists=True, dir_okay=False)
    command = click.option("--broker-key", type=pem, default=None, metavar="FILE",
                           help="mqtts://: this client's private key (PEM, no passphrase), with --broker-cert "
                                "(not needed if the certificate's file holds it).")(command)
    command = click.option("--broker-cert", type=pem, default=None, metavar="FILE",
                           help="mqtts://: this client's certificate (PEM), for a broker that asks for one "
                                "(broker-config --tls-ca).")(command)
    return click.option("--broker-ca", type=pem, default=None, metavar="FILE",
                        help="mqtts://: the CA certificate (PEM) that signed the broker's "
                             "(default: the system's trusted CAs).")(command)


def broker_options(f: Callable) -> Callable:
    """--broker, --broker-credentials, --broker-user and the TLS files (``broker_tls_options``):
    follow the --clip names through a broker."""
    f = broker_tls_options(f)
    f = click.option("--broker-user", default="coach", show_default=True, metavar="USER",
                     help="The coach's user on the broker (with --broker-credentials).")(f)
    f = click.option("--broker-credentials", type=click.Path(exists=True, dir_okay=False), default=None,
                     metavar="FILE", help=f"The coach's broker password: {CREDENTIALS_HELP}")(f)
    return click.option("--broker", "broker_url", default=None, metavar="URL",
                        help="Follow each --clip NAME through this MQTT broker, carried by gateways "
                             "(mqtt://HOST:PORT, or mqtts:// for TLS; no BLE scan here; docs/team.md).")(f)


def broker_spec_of(broker_url: str | None, credentials: str | None, user: str, clip_names: tuple[str, ...],
                   tls: tuple = (None, None, None)) -> BrokerSpec | None:
    """The coach's broker from the options (None without --broker), or a usage error."""
    if broker_url is None:
        if credentials or any(tls):
            raise click.UsageError("--broker-credentials, --broker-ca, --broker-cert and --broker-key need --broker URL")
        return None
    if not clip_names:
        raise click.UsageError("with --broker, name each athlete's clip to follow: --clip NAME (repeatable)")
    from strideclip.link.broker_topics import topic_name

    given: dict[str, str] = {}
    for name in clip_names:  # (two clips on one topic: one athlete would get the other's packets, one none)
        if (other := given.setdefault(topic_name(name), name)) != name:
            raise click.UsageError(f"--clip {other!r} and --clip {name!r} are one name in the broker's topics "
                                   f"({topic_name(name)!r}): name each clip apart")
    return broker_spec(broker_url, credentials, user, tls)


async def open_broker(spec: BrokerSpec, names: list[str]) -> tuple[BrokerLink, list[ClipSource]]:
    """Connect to the broker (BrokerUnavailable: one line, exit 2) and a source per clip name."""
    from strideclip.link.broker import BrokerLink
    from strideclip.link.sources import broker_source

    link = BrokerLink(spec.url, user=spec.user, password=spec.password, tls_context=spec.tls_context)
    await link.start()
    click.echo(f"following {', '.join(names)} through the broker at {spec.url}")
    return link, [broker_source(n, link) for n in names]


async def close_broker(link: BrokerLink) -> None:
    """Disconnect; say what was skipped (a gateway of another version, a malformed message)."""
    await link.close()
    bad = link.stats()["bad_messages"]
    if bad:
        click.echo(f"strideclip: {bad} broker message(s) were not ours and were skipped; first: "
                   f"{link.first_bad or link.conn.first_failure}", err=True)


@click.command(epilog=example("strideclip gateway --broker mqtt://192.168.1.20:1883 --name north "
                              "--broker-credentials north.json",
                              "strideclip gateway --broker mqtt://127.0.0.1:1883 --name test --simulate 2 --speed 10"))
@click.option("--broker", "broker_url", required=True, metavar="URL",
              help="The MQTT broker: mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS.")
@click.option("--name", required=True, help="This gateway's name on the broker (and its MQTT user): "
                                            "1-64 of A-Z a-z 0-9 . _ -")
@click.option("--broker-credentials", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
              help=f"The gateway's password, under its --name: {CREDENTIALS_HELP}")
@broker_tls_options
@CLIPS_OPTION
@SERIAL_PORTS_OPTION
@click.option("--simulate", "n_sim", type=click.IntRange(0, 16), default=0,
              help="Carry this many simulated clips that answer commands (athlete-1, ...), as the dashboard's.")
@click.option("--speed", type=click.FloatRange(0.1, 1000), default=1.0, show_default=True,
              help="Simulated clips: pace, times real time.")
@click.option("--minutes", type=click.FloatRange(SIM_MINUTES_MIN, 180), default=30.0, show_default=True,
              help="Simulated clips: length of the run, minutes.")
@click.option("--out", "out_dir", type=OUT_FOLDER, metavar="FOLDER", default="strideclip-gateway", show_default=True,
              help="Folder for the gateway's own session logs, one per clip (made if missing).")
@click.option("--seconds", type=click.FloatRange(0.1, 24 * 3600), default=None,
              help="Stop after this many seconds (default: Ctrl-C).")
@BLE_BACKEND_OPTION
def gateway(broker_url: str, name: str, broker_credentials: str | None, broker_tls: tuple, clip_names: tuple[str, ...],
            ports: tuple[str, ...], n_sim: int, speed: float, minutes: float, out_dir: str, seconds: float | None,
            ble_backend: str | None) -> None:
    """Carry the clips in reach to the coach through an MQTT broker, each logged here too. With
    no clip given, every clip a BLE scan finds (and looks again as the run goes on)."""
    from strideclip.link.broker_topics import check_name
    from strideclip.stream.outputs import check_folder

    try:
        check_name(name, "gateway name")
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--name") from None
    spec = broker_spec(broker_url, broker_credentials, name, broker_tls)
    check_folder(out_dir, option="--out")  # all before any clip is simulated or opened
    from strideclip.link.sources import serial_source, sim_source

    sources = [serial_source(p) for p in ports]
    if n_sim:
        from strideclip.sim import demo_run, simulate

        click.echo(f"simulating {n_sim} clip(s), {minutes:g} min each…", err=True)
        runs = [simulate(demo_run(200 + i, minutes=minutes)) for i in range(n_sim)]
        sources += [sim_source(f"athlete-{i + 1}", run, speed, answers=True) for i, run in enumerate(runs)]
    scan = bool(clip_names) or not sources
    from pathlib import Path

    ctrl_c, opened = CtrlC(), []
    run_ble(_gateway_main(spec, name, sources, list(clip_names) if scan else None, Path(out_dir), seconds,
                          ble_backend, ctrl_c.stop, opened), ctrl_c=ctrl_c)
    code = _gateway_summary(opened[0]) if opened else 0
    sys.exit(CtrlC.INTERRUPTED_EXIT if ctrl_c.aborted else code)


async def _gateway_main(spec: BrokerSpec, name: str, sources: list, names: list[str] | None, out_dir: Any,
                        seconds: float | None, backend_spec: str | None, stop: Any, opened: list) -> None:
    """Connect to the broker, open every clip, carry them until the time is up, they end, or
    ``stop``; with ``names`` (empty: all) look for BLE clips now and then."""
    import asyncio

    from strideclip.session.gateway import Gateway

    backend = await resolve_ble_backend(backend_spec)
    gw = Gateway(name, spec.url, out_dir, user=spec.user, password=spec.password, tls_context=spec.tls_context)
    await gw.start()
    opened.append(gw)  # the caller sums it up, however the run ends
    click.echo(f"gateway {name} on the broker at {spec.url}")
    scanning = None
    try:
        for c in gw.follow(sources):
            click.echo(f"carrying {c.name} ({c.source.address}), logged to {c.log_path}")
        sys.stdout.flush()
        if names is not None:
            scanning = asyncio.ensure_future(_scan_now_and_then(gw, names, backend))
        await gw.run(seconds=seconds, stop=stop, keep_open=lambda: scanning is not None)
    finally:
        if scanning is not None:
            scanning.cancel()
            await asyncio.gather(scanning, return_exceptions=True)
        await gw.close()


async def _scan_now_and_then(gw: Gateway, names: list[str], backend: Any) -> None:
    """BLE clips come and go (a track's far side is another gateway's): the named ones (all, if
    none is named) not yet followed are looked for every RESCAN_S and followed once found."""
    import asyncio

    from strideclip.errors import TransportError
    from strideclip.link.ble import scan
    from strideclip.link.broker_topics import topic_name
    from strideclip.link.sources import ble_source

    said = False
    while True:
        try:
            found = await scan(3.0, backend=backend and backend.scanner_backend)
        except TransportError as e:
            if not said:
                click.echo(f"strideclip: {e}; looking again every {RESCAN_S:g} s", err=True)
                said = True
            found = []
        new = [a for a in found if (not names or a.name in names or a.address in names)
               and topic_name(a.name) not in gw.clips]
        new = list({topic_name(a.name): a for a in new}.values())  # the strongest of one name
        for c in gw.follow([ble_source(a, backend and backend.client_backend) for a in new]):
            click.echo(f"carrying {c.name} ({c.source.address}), logged to {c.log_path}")
        await asyncio.sleep(RESCAN_S)


def _gateway_summary(gw: Gateway) -> int:
    """Per clip: its log, what was carried; the broker's figures. 1 if every clip failed."""
    for c in gw.clips.values():
        stats = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.transport.stats().items())
        click.echo(f"{c.name}: {c.log_path}: {c.packets} packets carried, {c.commands} commands written to the "
                   f"clip, {c.outbox.dropped} dropped from the outbox; link: {stats}")
        if c.error:
            click.echo(f"strideclip: {c.name}: {c.error}", err=True)
    s = gw.stats()
    click.echo(f"broker: {s['broker_connects']} connection(s), {s['broker_losses']} lost, "
               f"{s['outbox_waiting']} packet(s) never acknowledged (in the logs)")
    if s["bad_commands"]:
        click.echo(f"strideclip: {s['bad_commands']} message(s) that were not a command for a clip here were "
                   f"skipped; first: {gw.first_bad or gw.conn.first_failure}", err=True)
    return 1 if gw.clips and all(c.error for c in gw.clips.values()) else 0
