"""``strideclip broker-config``: the files an Eclipse Mosquitto broker needs to carry a team's
clips from the gateways to the coach (issue #24, docs/team.md).

One folder holds all of it: ``mosquitto.conf`` (a listener, no anonymous clients, the password
and ACL files, persistence in ``persistence/`` so QoS 1 sessions outlive a restart, optional
TLS), ``passwords`` (one user per gateway and one for the coach, hashed as mosquitto_passwd
does), ``acl`` (who may read and write which topics of ``broker_topics``), ``credentials.json``
(every user's password, mode 0600: what the gateways' and the dashboard's
``--broker-credentials`` read) and ``credentials/<user>.json`` (the same for one user: the file to
copy onto that gateway, which then holds no one else's password).

The passwords are hashed here (mosquitto's ``$7$`` PBKDF2-SHA512 lines, checked against
mosquitto_passwd by tests/test_broker.py) so the folder can be made on a machine without
mosquitto and copied to the one that runs it.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass, replace
from pathlib import Path

from strideclip.errors import OutputError
from strideclip.link import broker_topics as T
from strideclip.stream.outputs import OutputFile, check_folder, writing

COACH_USER = "coach"
PORT = 1883  # MQTT's own
TLS_PORT = 8883  # MQTT over TLS
HASH_ITERATIONS = 101  # mosquitto_passwd's own; the passwords are random (192 bits): more rounds would add nothing
SALT_BYTES = 12  # as mosquitto_passwd
PASSWORD_BYTES = 24  # secrets.token_urlsafe: 32 characters
AUTOSAVE_S = 10  # a broker that crashes loses at most this much of what it queued: well inside a clip's 60 s ring
MAX_QUEUED_MESSAGES = 200_000  # per client: ~12 min of 24 clips (~11 packets/s each) for a coach away
SESSION_EXPIRY = "7d"  # a client not seen for this long loses its session and what was queued for it
MOSQUITTO_USER = "mosquitto"  # who mosquitto becomes when root starts it (Debian's service)


@dataclass(frozen=True)
class Tls:
    """The broker's certificate and key (PEM); ``ca``: clients must also show a certificate it signed."""
    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True)
class BrokerConfig:
    """What ``write_broker_config`` wrote: the folder, the listener, every user's password."""
    folder: Path
    port: int
    listen_address: str
    coach: str
    gateways: tuple[str, ...]
    users: dict[str, str]  # user -> password (the coach and each gateway)
    tls: Tls | None = None
    notes: tuple[str, ...] = ()  # what the person running it must do besides starting mosquitto

    @property
    def conf_path(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def passwords_path(self) -> Path:
        return self.folder / "passwords"

    @property
    def acl_path(self) -> Path:
        return self.folder / "acl"

    @property
    def credentials_path(self) -> Path:
        return self.folder / "credentials.json"

    @property
    def persistence_path(self) -> Path:
        return self.folder / "persistence"

    def user_credentials_path(self, user: str) -> Path:
        return self.folder / "credentials" / f"{user}.json"


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """``password`` as mosquitto's password file keeps it (2.0's ``$7$``: PBKDF2-HMAC-SHA512)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_users(gateways: list[str] | tuple[str, ...], coach: str = COACH_USER) -> tuple[str, ...]:
    """The gateways' names, each a topic level (``broker_topics.check_name``), none twice and none
    the coach's (that gateway would log in as the coach); ValueError naming the problem."""
    T.check_name(coach, "the coach's user")
    if not gateways:
        raise ValueError("name at least one gateway")
    for name in gateways:
        T.check_name(name, "gateway")
        if name == coach:
            raise ValueError(f"gateway {name!r} has the coach's user name: name the gateway otherwise "
                             f"(or the coach, with --coach-user)")
    if len(set(gateways)) < len(gateways):
        twice = sorted({g for g in gateways if gateways.count(g) > 1})
        raise ValueError(f"gateway {twice[0]!r} is named twice")
    return tuple(gateways)


def acl_text(coach: str = COACH_USER) -> str:
    """The ACL file. A gateway is its MQTT user (``%u``): it writes only under its own name and
    reads only its own commands; the coach reads every gateway's state and clips and writes any
    gateway's commands. Anything else is denied (mosquitto drops a denied publish silently and
    delivers nothing a user may not read)."""
    root = T.ROOT
    return (f"# Written by `strideclip broker-config` (docs/team.md): who may read and write what.\n"
            f"# Every gateway (the MQTT user is the gateway's name): its own topics only.\n"
            f"pattern write {root}/%u/#\n"
            f"pattern read {root}/%u/cmd/#\n"
            f"\n"
            f"# The coach's dashboard: every gateway's state and clips; commands to any gateway.\n"
            f"user {coach}\n"
            f"topic read {root}/+/state\n"
            f"topic read {root}/+/clip/#\n"
            f"topic write {root}/+/cmd/#\n")


def conf_text(config: BrokerConfig) -> str:
    """mosquitto.conf for ``config`` (absolute paths: mosquitto may be started from anywhere)."""
    c = config
    lines = ["# Eclipse Mosquitto for a StrideClip team, written by `strideclip broker-config` (docs/team.md).",
             f"# Start it with: mosquitto -c {c.conf_path}",
             f"# Users: {c.coach} (the coach's dashboard); {', '.join(c.gateways)} (one per gateway).",
             "",
             "per_listener_settings false",
             "allow_anonymous false",
             f"password_file {c.passwords_path}",
             f"acl_file {c.acl_path}",
             "",
             "# QoS 1 sessions (the gateways' commands, the coach's packets) are kept across a restart.",
             "persistence true",
             f"persistence_location {c.persistence_path}/",
             f"autosave_interval {AUTOSAVE_S}",
             f"persistent_client_expiration {SESSION_EXPIRY}",
             f"max_queued_messages {MAX_QUEUED_MESSAGES}",
             "",
             f"listener {c.port} {c.listen_address}",
             "# A client's id is its user's name, whatever it asks for: no one takes another's connection or session.",
             "# (A listener's setting: before the first listener line it would open a default listener on 1883.)",
             "use_username_as_clientid true"]
    if c.tls:
        lines += [f"certfile {c.tls.cert}", f"keyfile {c.tls.key}"]
        if c.tls.ca:
            lines += [f"cafile {c.tls.ca}", "require_certificate true"]
    return "\n".join(lines) + "\n"


def credentials_text(users: dict[str, str]) -> str:
    """The credentials file the gateways and the dashboard read: ``{"users": {user: password}}``."""
    return json.dumps({"users": users}, indent=2) + "\n"


def _check_path(path: Path, what: str) -> Path:
    """An absolute path mosquitto's config can name (its parser splits a line at spaces)."""
    path = path.resolve()
    if any(ch.isspace() for ch in str(path)):
        raise OutputError(f"{path}: mosquitto's config cannot name a path with a space: choose another {what}",
                          path=str(path))
    return path


def _mosquitto_ids() -> tuple[int, int] | None:
    """(uid, gid) mosquitto runs as when root starts it, if this is root and that user exists."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def closed_folder(folder: Path, uid: int, gid: int) -> Path | None:
    """The first folder on the way to ``folder`` that user ``uid`` (group ``gid``) may not pass
    through, or None."""
    for path in (*reversed(folder.parents), folder):
        st = path.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
        if not st.st_mode & bit:
            return path
    return None


def _notes(config: BrokerConfig, owner: tuple[int, int] | None) -> tuple[str, ...]:
    """What root must still do for mosquitto to read the folder once it has become MOSQUITTO_USER."""
    if os.geteuid() != 0:
        return ()
    if owner is None:
        return (f"no user {MOSQUITTO_USER!r} here: if root starts mosquitto, give {config.passwords_path.name}, "
                f"{config.acl_path.name} and {config.persistence_path.name}/ to the user it runs as",)
    notes = []
    if closed := closed_folder(config.folder, *owner):
        notes.append(f"mosquitto started by root runs as user {MOSQUITTO_USER}, who cannot enter {closed}: "
                     f"make the config there elsewhere (e.g. under /etc/mosquitto/) or open {closed} to it")
    if config.tls:
        notes.append(f"the key {config.tls.key} must be readable by user {MOSQUITTO_USER}")
    return tuple(notes)


def write_broker_config(folder: str | os.PathLike, gateways: list[str] | tuple[str, ...], *, coach: str = COACH_USER,
                        port: int | None = None, listen_address: str = "127.0.0.1", tls: Tls | None = None,
                        force: bool = False) -> BrokerConfig:
    """Write the broker's folder (module docstring) with a new random password per user; every
    file is checked first and appears only when all are whole (strideclip.stream.outputs):
    ``force`` replaces them. ValueError for a bad name or address; OutputError for the folder.
    Run as root, the files mosquitto reads (and its persistence) are given to the user it runs
    as (``MOSQUITTO_USER``), which cannot otherwise read them; what else root must see to is in
    the result's ``notes``."""
    gateways = check_users(gateways, coach)
    try:
        listen_address = str(ipaddress.ip_address(listen_address))
    except ValueError:
        raise ValueError(f"{listen_address!r} is not an IP address to listen on (127.0.0.1: this machine only; "
                         f"0.0.0.0: every network it is on)") from None
    folder = _check_path(check_folder(folder, option="OUT_DIR"), "OUT_DIR")
    if tls:
        tls = Tls(*(_check_path(Path(p), "certificate file") if p else None for p in (tls.cert, tls.key, tls.ca)))
    users = {u: secrets.token_urlsafe(PASSWORD_BYTES) for u in (coach, *gateways)}
    config = BrokerConfig(folder, port or (TLS_PORT if tls else PORT), listen_address, coach, gateways, users, tls)
    # path: (text, mode, read by mosquitto)
    files = {config.conf_path: (conf_text(config), 0o644, False), config.acl_path: (acl_text(coach), 0o644, True),
             config.passwords_path: ("".join(f"{u}:{hash_password(p)}\n" for u, p in users.items()), 0o600, True),
             config.credentials_path: (credentials_text(users), 0o600, False)}
    files |= {config.user_credentials_path(u): (credentials_text({u: p}), 0o600, False) for u, p in users.items()}
    folder.mkdir(exist_ok=True)
    outputs = [OutputFile(p, option="OUT_DIR", force=force) for p in files if p.parent == folder]
    config.user_credentials_path(coach).parent.mkdir(mode=0o700, exist_ok=True)  # (once nothing is refused)
    outputs += [OutputFile(p, option="OUT_DIR", force=force) for p in files if p.parent != folder]
    owner = _mosquitto_ids()
    with writing(*outputs) as parts:
        for out, part in zip(outputs, parts):
            text, mode, for_mosquitto = files[out.path]
            with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w") as f:
                f.write(text)
            if owner and for_mosquitto:
                os.chown(part, *owner)
    config.persistence_path.mkdir(mode=0o700, exist_ok=True)
    if owner:
        os.chown(config.persistence_path, *owner)
    return replace(config, notes=_notes(config, owner))
