"""The team's broker (issue #24, docs/team.md): `strideclip broker-config`'s files run by a real
Eclipse Mosquitto (tests/broker.py), driven by aiomqtt as the gateways and the coach use it.
Who may connect, what each user may write and read (the ACL), QoS 1 sessions kept for a gateway
that is away, and across a broker restart; and the command as a user meets it."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import ssl
import stat
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest

from broker import MISSING, start_broker
from mpy import find_tool
from rig import run_async  # (a page test's Playwright loop may hold the main thread)
from strideclip.link import broker_config
from strideclip.link import broker_topics as T


WAIT_S = 5.0  # for a message that must come
REFUSALS = ("Not authorized", "Bad user name or password")


def _client(broker, user: str | None, password: str | None = None, **kw) -> aiomqtt.Client:
    """A client of ``broker`` as ``user`` (with its own password unless one is given)."""
    if user is not None and password is None:
        password = broker.users[user]
    return aiomqtt.Client("127.0.0.1", broker.port, username=user, password=password, timeout=WAIT_S, **kw)


async def _until(client: aiomqtt.Client, topic: str, seconds: float = WAIT_S) -> list[tuple[str, bytes]]:
    """Every message ``client`` gets up to and including the first on ``topic`` (which must come).
    Messages from one client to another keep their order (MQTT 4.6), so a message published
    before that one and not here was not delivered."""
    got = []

    async def read() -> None:
        async for m in client.messages:
            got.append((str(m.topic), bytes(m.payload)))
            if str(m.topic) == topic:
                return

    try:
        await asyncio.wait_for(read(), seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"no message on {topic} in {seconds} s; got {got}") from None
    return got


def run(coro):
    return run_async(coro)


# --- who may connect ------------------------------------------------------------------------------

def test_the_coach_and_each_gateway_connect_with_their_own_passwords(mosquitto_broker):
    broker = mosquitto_broker
    assert set(broker.users) == {"coach", "gw-a", "gw-b", "gw-c"}

    async def main():
        for user in broker.users:
            async with _client(broker, user):
                pass

    run(main())
    for user, password in broker.users.items():  # each gateway's own file holds its password, no one else's
        assert json.loads(broker.user_credentials_path(user).read_text()) == {"users": {user: password}}


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
@pytest.mark.parametrize("who", ["no credentials", "a wrong password", "another gateway's name", "the coach's name",
                                 "an unknown user"])
def test_a_client_without_its_own_password_is_refused(mosquitto_broker, who, protocol):
    broker = mosquitto_broker
    user, password = {"no credentials": (None, None), "a wrong password": ("gw-a", "not-the-password"),
                      "another gateway's name": ("gw-b", broker.users["gw-a"]),  # gw-a's password, gw-b's name
                      "the coach's name": ("coach", broker.users["gw-a"]),
                      "an unknown user": ("gw-z", broker.users["gw-a"])}[who]
    version = aiomqtt.ProtocolVersion.V5 if protocol == "5" else aiomqtt.ProtocolVersion.V311

    async def main():
        async with _client(broker, user, password, protocol=version):
            pass

    with pytest.raises(aiomqtt.MqttCodeError) as refused:
        run(main())
    assert any(r in str(refused.value) for r in REFUSALS), str(refused.value)  # the CONNACK's refusal


# --- what each may write and read (the ACL) -------------------------------------------------------

def test_a_gateways_packets_reach_the_coach(mosquitto_broker):
    broker = mosquitto_broker
    sent = T.pack_packet(1_700_000_000_123, bytes(range(40)), waited_ms=12_345)

    async def main():
        async with _client(broker, "coach") as coach, _client(broker, "gw-a") as gw:
            for topic in T.COACH_SUBSCRIPTIONS:
                await coach.subscribe(topic, qos=1)
            await gw.publish(T.state_topic("gw-a"), b'{"online": true}', qos=1, retain=True)
            await gw.publish(T.link_topic("gw-a", "clip-1"), b'{"connected": true}', qos=1, retain=True)
            await gw.publish(T.packet_topic("gw-a", "clip-1"), sent, qos=1)
            return await _until(coach, T.packet_topic("gw-a", "clip-1"))

    got = dict(run(main()))
    assert set(got) == {T.state_topic("gw-a"), T.link_topic("gw-a", "clip-1"), T.packet_topic("gw-a", "clip-1")}
    assert T.unpack_packet(got[T.packet_topic("gw-a", "clip-1")]) == (1_700_000_000_123, 12_345, bytes(range(40)))


def test_a_gateway_cannot_publish_under_another_gateway_nor_the_coach_as_a_gateway(mosquitto_broker):
    """mosquitto drops a denied publish without a word (and acknowledges it): what shows is that
    it never reaches the coach, while the control message published after it does."""
    broker = mosquitto_broker
    control = T.packet_topic("gw-a", "clip-1")
    forged = [T.packet_topic("gw-b", "clip-1"), T.state_topic("gw-b"), T.link_topic("gw-b", "clip-1"),
              T.packet_topic("coach", "clip-1")]

    async def main():
        async with _client(broker, "coach") as coach, _client(broker, "gw-a") as gw:
            for topic in T.COACH_SUBSCRIPTIONS:
                await coach.subscribe(topic, qos=1)
            for topic in forged:
                await gw.publish(topic, T.pack_packet(1, b"forged"), qos=1)
            await coach.publish(T.packet_topic("gw-c", "clip-1"), T.pack_packet(1, b"forged"), qos=1)
            await gw.publish(control, T.pack_packet(2, b"real"), qos=1)
            return await _until(coach, control)

    assert run(main()) == [(control, T.pack_packet(2, b"real"))]


def test_a_gateway_reads_only_its_own_commands_and_no_other_gateways_packets(mosquitto_broker):
    broker = mosquitto_broker

    async def main():
        async with _client(broker, "coach") as coach, _client(broker, "gw-a") as gw_a, \
                _client(broker, "gw-b") as gw_b:
            for topic in ("strideclip/gw/gw-b/cmd/#", "strideclip/gw/+/clip/#", "#", T.gateway_subscription("gw-a")):
                await gw_a.subscribe(topic, qos=1)  # mosquitto grants these: it filters what it delivers
            await gw_b.subscribe(T.gateway_subscription("gw-b"), qos=1)
            await gw_b.publish(T.packet_topic("gw-b", "clip-2"), T.pack_packet(1, b"pkt"), qos=1)
            await coach.publish(T.command_topic("gw-b", "clip-2"), b"for gw-b", qos=1)
            await coach.publish(T.command_topic("gw-a", "clip-1"), b"for gw-a", qos=1)
            return await _until(gw_a, T.command_topic("gw-a", "clip-1")), await _until(gw_b, T.command_topic("gw-b", "clip-2"))

    got_a, got_b = run(main())
    assert got_a == [(T.command_topic("gw-a", "clip-1"), b"for gw-a")]
    assert got_b == [(T.command_topic("gw-b", "clip-2"), b"for gw-b")]


def test_a_gateway_cannot_take_another_gateways_or_the_coachs_connection_by_its_client_id(mosquitto_broker):
    """A client id is the client's to choose; the broker takes each user's name instead (one
    connection per user), so gw-a asking for gw-b's or the coach's id neither knocks them off
    nor reaches their sessions' messages."""
    broker = mosquitto_broker

    async def main():
        async with _client(broker, "coach", identifier="strideclip-coach-coach") as coach, \
                _client(broker, "gw-b", identifier="gw-b") as gw_b:
            await gw_b.subscribe(T.gateway_subscription("gw-b"), qos=1)
            await coach.subscribe(T.COACH_SUBSCRIPTIONS[1], qos=1)
            for taken in ("gw-b", "strideclip-coach-coach", "coach"):
                async with _client(broker, "gw-a", identifier=taken) as impostor:
                    await impostor.publish(T.packet_topic("gw-a", "clip-1"), T.pack_packet(1, taken.encode()), qos=1)
            await coach.publish(T.command_topic("gw-b", "clip-2"), b"still there", qos=1)
            await gw_b.publish(T.packet_topic("gw-b", "clip-2"), T.pack_packet(2, b"still there"), qos=1)
            return (await _until(gw_b, T.command_topic("gw-b", "clip-2")),
                    await _until(coach, T.packet_topic("gw-b", "clip-2")))

    got_b, got_coach = run(main())
    assert got_b == [(T.command_topic("gw-b", "clip-2"), b"still there")]
    assert got_coach[-1] == (T.packet_topic("gw-b", "clip-2"), T.pack_packet(2, b"still there"))
    assert len(got_coach) == 4  # gw-a's three packets, then gw-b's: the coach was never knocked off


# --- a gateway away, the broker restarted ---------------------------------------------------------

async def _subscribe_and_leave(broker, gateway: str) -> None:
    """The gateway's persistent session (fixed client id, clean_session False), then it goes."""
    async with _client(broker, gateway, identifier=gateway, clean_session=False) as gw:
        await gw.subscribe(T.gateway_subscription(gateway), qos=1)


async def _command(broker, gateway: str, clip: str, payload: bytes) -> None:
    async with _client(broker, "coach") as coach:
        await coach.publish(T.command_topic(gateway, clip), payload, qos=1)


async def _back(broker, gateway: str, clip: str) -> list[tuple[str, bytes]]:
    async with _client(broker, gateway, identifier=gateway, clean_session=False) as gw:
        return await _until(gw, T.command_topic(gateway, clip))


@pytest.mark.parametrize("restart", ["none", "stopped", "killed after an autosave"])
def test_a_command_for_a_gateway_away_waits_for_it(mosquitto_broker, restart):
    """QoS 1 to a persistent session is queued while the gateway is away, and delivered once when
    it comes back: after a broker stopped and started again too (saved on the way down), and after
    a crash (SIGKILL) once the autosave has run. The retained state survives the same way."""
    broker = mosquitto_broker

    async def away():
        await _subscribe_and_leave(broker, "gw-a")
        await _command(broker, "gw-a", "clip-1", b"start the metronome")
        async with _client(broker, "gw-b") as gw_b:
            await gw_b.publish(T.state_topic("gw-b"), b'{"online": false}', qos=1, retain=True)

    run(away())
    if restart == "stopped":
        broker.stop()
        broker.start()
    elif restart == "killed after an autosave":
        time.sleep(broker_config.AUTOSAVE_S + 1.5)
        broker.kill()
        broker.start()

    async def back():
        got = await _back(broker, "gw-a", "clip-1")
        async with _client(broker, "coach") as coach:
            await coach.subscribe(T.COACH_SUBSCRIPTIONS[0], qos=1)  # every gateway's state
            state = await _until(coach, T.state_topic("gw-b"))
        again = await _back_or_nothing(broker, "gw-a")
        return got, state, again

    got, state, again = run(back())
    assert got == [(T.command_topic("gw-a", "clip-1"), b"start the metronome")]
    assert state == [(T.state_topic("gw-b"), b'{"online": false}')]
    assert again == []  # delivered once: acknowledged, so not again on the next connect


async def _back_or_nothing(broker, gateway: str, seconds: float = 0.5) -> list:
    got = []
    async with _client(broker, gateway, identifier=gateway, clean_session=False) as gw:
        try:
            async with asyncio.timeout(seconds):
                async for m in gw.messages:
                    got.append((str(m.topic), bytes(m.payload)))
        except TimeoutError:
            pass
    return got


def test_the_broker_keeps_its_port_and_users_across_restarts(mosquitto_broker):
    broker = mosquitto_broker
    port, users = broker.port, dict(broker.users)
    broker.kill()
    assert not broker.running
    broker.start()
    assert broker.running and (broker.port, broker.users) == (port, users)

    async def main():
        async with _client(broker, "gw-c"):
            pass

    run(main())


# --- TLS ------------------------------------------------------------------------------------------

def _signed(openssl: str, folder, name: str, ca=None, *, ip: str | None = None):
    """(certificate, key) files for ``name``: signed by ``ca`` (its certificate, key), else self-signed."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-subj", f"/CN={name}"]
    alt = ["-addext", f"subjectAltName=IP:{ip}"] if ip else []
    if ca is None:
        subprocess.run([openssl, "req", "-x509", *ec, "-out", cert, "-days", "1", *alt], check=True, capture_output=True)
        return cert, key
    csr = folder / f"{name}.csr"
    subprocess.run([openssl, "req", *ec, "-out", csr, *alt], check=True, capture_output=True)
    subprocess.run([openssl, "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
                    "-days", "1", "-copy_extensions", "copy"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed: it makes the tests' certificates (make test installs it with apt)")
    return path


def _tls_folder(broker) -> Path:
    tls = broker.folder / "tls"
    tls.mkdir(mode=0o711)  # (mosquitto's own user reads in it)
    return tls


def test_with_tls_the_broker_speaks_only_tls(tmp_path, openssl):
    with start_broker(tmp_path, gateways=["gw-a"], start=False) as broker:
        cert, key = _signed(openssl, _tls_folder(broker), "127.0.0.1", ip="127.0.0.1")
        if broker.mosquitto_uid is not None:  # as the note of broker-config says: mosquitto's user reads the key
            os.chown(key, broker.mosquitto_uid, -1)
        broker.configure("--tls-cert", str(cert), "--tls-key", str(key))
        conf = broker.conf_path.read_text()
        assert f"certfile {cert}" in conf and f"keyfile {key}" in conf
        broker.start()
        context = ssl.create_default_context(cafile=str(cert))

        async def main():
            async with _client(broker, "gw-a", tls_context=context):
                pass
            with pytest.raises(aiomqtt.MqttError):
                async with _client(broker, "gw-a"):  # in the clear
                    pass

        run(main())


def test_with_a_ca_the_broker_asks_each_client_for_a_certificate_it_signed(tmp_path, openssl):
    """broker-config --tls-ca: the gateway and the coach show their certificates (--broker-cert,
    --broker-key) and trust the broker's through --broker-ca; one without, or with one another CA
    signed, is refused in one line."""
    with start_broker(tmp_path, gateways=["gw-a"], start=False) as broker:
        tls = _tls_folder(broker)
        ca = _signed(openssl, tls, "team-ca")
        server = _signed(openssl, tls, "broker", ca, ip="127.0.0.1")
        gw_a, coach = _signed(openssl, tls, "gw-a", ca), _signed(openssl, tls, "coach", ca)
        rogue = _signed(openssl, tls, "rogue")  # self-signed: not the team's CA
        if broker.mosquitto_uid is not None:
            os.chown(server[1], broker.mosquitto_uid, -1)
        broker.configure("--tls-cert", str(server[0]), "--tls-key", str(server[1]), "--tls-ca", str(ca[0]))
        broker.start()
        url = f"mqtts://127.0.0.1:{broker.port}"

        def gateway(*tls_args):  # (a later --broker wins: click keeps an option's last value)
            return subprocess.run([find_tool("strideclip"), "gateway", "--broker", url, "--name", "gw-a",
                                   "--broker-credentials", str(broker.user_credentials_path("gw-a")),
                                   "--out", str(tmp_path / "gw"), "--simulate", "1", "--minutes", "5", "--seconds", "1",
                                   *map(str, tls_args)], capture_output=True, text=True, timeout=120,
                                  stdin=subprocess.DEVNULL)

        shown = gateway("--broker-ca", ca[0], "--broker-cert", gw_a[0], "--broker-key", gw_a[1])
        assert shown.returncode == 0 and f"gateway gw-a on the broker at {url}" in shown.stdout, shown.stderr
        coach_run = subprocess.run([find_tool("strideclip"), "live", "--broker", url, "--clip", "athlete-1",
                                    "--broker-credentials", str(broker.user_credentials_path("coach")),
                                    "--broker-ca", str(ca[0]), "--broker-cert", str(coach[0]), "--broker-key",
                                    str(coach[1]), "--seconds", "1", "--out", str(tmp_path / "coach"), "--no-history"],
                                   capture_output=True, text=True, timeout=120)
        assert f"following athlete-1 through the broker at {url}" in coach_run.stdout, coach_run.stderr
        assert "Traceback" not in coach_run.stderr
        locked = tls / "locked.key"  # gw-a's key under a passphrase: said, never asked for (a service has no terminal)
        subprocess.run([openssl, "pkey", "-in", gw_a[1], "-out", locked, "-aes256", "-passout", "pass:secret"],
                       check=True, capture_output=True)
        for tls_args, said in ((("--broker-ca", ca[0]), "asks for a client certificate"),
                               (("--broker-ca", ca[0], "--broker-cert", rogue[0], "--broker-key", rogue[1]),
                                "does not accept this client certificate"),
                               (("--broker-cert", gw_a[0], "--broker-key", gw_a[1]), "give the CA that signed it"),
                               (("--broker-ca", ca[0], "--broker-cert", gw_a[0], "--broker-key", locked),
                                "the private key is encrypted"),
                               (("--broker", f"mqtts://localhost:{broker.port}", "--broker-ca", ca[0],
                                 "--broker-cert", gw_a[0], "--broker-key", gw_a[1]), "not made out to localhost")):
            _one_line_refusal(gateway(*tls_args), said)


# --- the command ----------------------------------------------------------------------------------

def _config(*args) -> subprocess.CompletedProcess:
    return subprocess.run([find_tool("strideclip"), "broker-config", *map(str, args)], capture_output=True,
                          text=True, timeout=60)


def _one_line_refusal(done: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, one line on stderr naming the problem (click's usage errors put theirs after the
    usage lines: ``Error: ...``), no traceback."""
    lines = [line for line in done.stderr.strip().splitlines()
             if line.startswith(("strideclip: ", "Error: "))]
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1 and all(w in lines[0] for w in words), done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["gw/north", "gw+", "#", "", "x" * 65, "gw north"])
def test_a_gateway_name_that_cannot_be_a_topic_level_is_refused(name, tmp_path):
    done = _config(tmp_path / "b", "--gateway", "gw-ok", "--gateway", name)
    _one_line_refusal(done, f"gateway {name!r}", "topic level")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("args", [["--gateway", "coach"], ["--coach-user", "boss", "--gateway", "gw-a", "--gateway", "boss"]])
def test_a_gateway_with_the_coachs_user_name_is_refused(args, tmp_path):
    _one_line_refusal(_config(tmp_path / "b", *args), "coach's user name")
    assert not (tmp_path / "b").exists()


def test_other_bad_options_are_refused(tmp_path):
    _one_line_refusal(_config(tmp_path / "b", "--gateway", "gw-a", "--gateway", "gw-a"), "'gw-a' is named twice")
    _one_line_refusal(_config(tmp_path / "b", "--gateway", "gw-a", "--listen-address", "everywhere"),
                      "'everywhere' is not an IP address")
    _one_line_refusal(_config(tmp_path / "b"), "--gateway")
    (tmp_path / "cert.pem").write_text("x")
    _one_line_refusal(_config(tmp_path / "b", "--gateway", "gw-a", "--tls-cert", tmp_path / "cert.pem"),
                      "--tls-cert and --tls-key go together")
    _one_line_refusal(_config(tmp_path / "no" / "b", "--gateway", "gw-a"), str(tmp_path / "no"), "does not exist")
    assert sorted(os.listdir(tmp_path)) == ["cert.pem"]


def test_existing_files_are_refused_without_force_and_replaced_with_it(tmp_path):
    out = tmp_path / "b"
    first = _config(out, "--gateway", "gw-a")
    assert first.returncode == 0 and f"mosquitto -c {out / 'mosquitto.conf'}" in first.stdout, first.stderr
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _one_line_refusal(_config(out, "--gateway", "gw-a", "--gateway", "gw-b"), "mosquitto.conf exists", "--force")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.rglob(".*part*"))  # nothing half-made left
    again = _config(out, "--gateway", "gw-a", "--gateway", "gw-b", "--force")
    assert again.returncode == 0, again.stderr
    users = json.loads((out / "credentials.json").read_text())["users"]
    old = json.loads(before[out / "credentials.json"])["users"]
    assert set(users) == {"coach", "gw-a", "gw-b"} and users["gw-a"] != old["gw-a"]  # new passwords


def test_the_credentials_are_private_and_the_passwords_file_holds_their_hashes(tmp_path):
    out = tmp_path / "b"
    assert _config(out, "--gateway", "gw-a", "--gateway", "gw-b", "--coach-user", "boss").returncode == 0
    users = json.loads((out / "credentials.json").read_text())["users"]
    assert set(users) == {"boss", "gw-a", "gw-b"} and len(set(users.values())) == 3
    private = [out / "credentials.json", out / "passwords"] + [out / "credentials" / f"{u}.json" for u in users]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((out / "credentials").stat().st_mode) == 0o700
    hashed = dict(line.split(":", 1) for line in (out / "passwords").read_text().splitlines())
    assert set(hashed) == set(users)
    for user, line in hashed.items():
        _, scheme, rounds, salt, _ = line.split("$")
        assert scheme == "7" and line == broker_config.hash_password(users[user], salt=base64.b64decode(salt),
                                                                     iterations=int(rounds))
        assert broker_config.hash_password("not " + users[user], salt=base64.b64decode(salt)) != line


def test_the_hash_is_mosquitto_passwds_own(tmp_path):
    tool = "/usr/bin/mosquitto_passwd"
    if not os.access(tool, os.X_OK):
        pytest.skip(MISSING)
    path = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", path, "gw-a", "s3cret pass"], check=True, capture_output=True)
    line = path.read_text().strip().split(":", 1)[1]
    _, _, rounds, salt, _ = line.split("$")
    assert broker_config.hash_password("s3cret pass", salt=base64.b64decode(salt), iterations=int(rounds)) == line
    assert int(rounds) == broker_config.HASH_ITERATIONS


def test_the_config_says_what_the_broker_does(tmp_path):
    """The listener, the files and persistence as the options say (the broker tests run them)."""
    out = tmp_path / "b"
    assert _config(out, "--gateway", "gw-a", "--listen-address", "0.0.0.0", "--port", "1999").returncode == 0
    conf = (out / "mosquitto.conf").read_text().splitlines()
    for line in ("listener 1999 0.0.0.0", "allow_anonymous false", "use_username_as_clientid true", f"password_file {out / 'passwords'}",
                 f"acl_file {out / 'acl'}", "persistence true", f"persistence_location {out / 'persistence'}/"):
        assert line in conf
    # a listener's setting before the first listener line would open a default listener on 1883, everywhere
    assert conf.index("use_username_as_clientid true") > conf.index("listener 1999 0.0.0.0")
    assert (out / "persistence").is_dir()
