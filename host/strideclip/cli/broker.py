"""``strideclip broker-config``: the Mosquitto broker's folder for a team (docs/team.md); the
work is in strideclip.link.broker_config."""
from __future__ import annotations

import click

from strideclip.cli.common import FORCE_OPTION, OUT_FOLDER, example


@click.command("broker-config", epilog=example(
    "strideclip broker-config team-broker --gateway gw-north --gateway gw-south --listen-address 0.0.0.0",
    "mosquitto -c team-broker/mosquitto.conf"))
@click.argument("out_dir", type=OUT_FOLDER)
@click.option("--gateway", "gateways", multiple=True, required=True, metavar="NAME",
              help="A gateway's name, its MQTT user (1-64 of A-Z a-z 0-9 . _ -); repeat for each gateway.")
@click.option("--coach-user", default="coach", show_default=True, metavar="NAME",
              help="The coach's dashboard's MQTT user.")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="The port to listen on, 1-65535 [default: 1883; 8883 with --tls-cert].")
@click.option("--listen-address", default="127.0.0.1", show_default=True, metavar="IP",
              help="The address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 for gateways on the network.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
              help="The broker's TLS certificate (PEM): the listener then speaks TLS only (mqtts://).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
              help="The private key of --tls-cert (PEM).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE",
              help="Also require every client to show a certificate signed by this CA (PEM), besides its password.")
@FORCE_OPTION
def broker_config(out_dir: str, gateways: tuple[str, ...], coach_user: str, port: int | None, listen_address: str,
                  tls_cert: str | None, tls_key: str | None, tls_ca: str | None, force: bool) -> None:
    """Write a Mosquitto broker's config for a team into OUT_DIR: one user and password per
    gateway and one for the coach, the topic rules (ACL) that hold each to its own, persistence,
    optional TLS. OUT_DIR is made if missing (in an existing folder)."""
    from pathlib import Path

    from strideclip.link.broker_config import Tls, write_broker_config

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_ca and not tls_cert:
        raise click.UsageError("--tls-ca needs --tls-cert and --tls-key")
    tls = Tls(Path(tls_cert), Path(tls_key), Path(tls_ca) if tls_ca else None) if tls_cert else None
    try:
        config = write_broker_config(out_dir, gateways, coach=coach_user, port=port, listen_address=listen_address,
                                     tls=tls, force=force)
    except ValueError as e:  # a name or address: the message names which
        raise click.UsageError(str(e)) from None
    scheme = "mqtts" if config.tls else "mqtt"
    click.echo(f"wrote {config.conf_path}, {config.passwords_path.name}, {config.acl_path.name}, "
               f"{config.credentials_path.name} (mode 0600) and credentials/<user>.json for "
               f"{len(config.users)} users: {config.coach} (the coach), {', '.join(config.gateways)}")
    click.echo(f"start the broker: mosquitto -c {config.conf_path}")
    click.echo(f"it listens on {scheme}://{config.listen_address}:{config.port}; give each gateway "
               f"--broker-credentials {config.user_credentials_path('NAME')} (its own file), "
               f"the dashboard {config.user_credentials_path(config.coach)}")
    for note in config.notes:
        click.echo(f"note: {note}", err=True)
