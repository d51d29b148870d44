"""The one MQTT connection a gateway and the coach each keep up (issue #24, docs/team.md), and
what both sides share: the broker's address, the credentials file, a clip's name on the topics.

``MqttConnection`` is an aiomqtt client kept connected: QoS 1, its subscriptions renewed at every
connect, reconnecting with backoff (0.25 s doubling to 5 s) when the broker goes away. Its
session is persistent (a fixed client id, clean session off: QoS 1 messages that come while it is
away are kept for it and delivered when it is back, across a broker restart with persistence);
at the start it first clears what an earlier run left (one clean-session connect, at once closed). A broker that cannot
be reached, or refuses the credentials, when a command starts is ``BrokerUnavailable``. aiomqtt
is imported when a connection is made.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strideclip.errors import BrokerUnavailable, TransportError

CONNECT_TIMEOUT_S = 5.0  # a broker that does not answer a connect in this long is unreachable
KEEPALIVE_S = 5  # a silent connection is found dead in 1.5x this (the broker then sends a gateway's will)
PUBLISH_TIMEOUT_S = 10.0  # a QoS 1 publish not acknowledged in this long has failed
PIPELINED = 256  # publishes awaiting their acknowledgement at once, at most (aiomqtt warns beyond)
BACKOFF_S = (0.25, 5.0)  # reconnecting: first wait, longest wait
REFUSED_CODES = {4, 5, 134, 135}  # CONNACK: bad user name or password, not authorised (MQTT 3.1.1 and 5)
URL_RE = re.compile(r"(mqtts?)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?/?")


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class TlsFileError(ValueError):
    """A TLS file that cannot be used; ``option`` names the command-line option that gave it."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


class _Encrypted(Exception):
    pass


def _no_passphrase() -> str:
    raise _Encrypted  # (else OpenSSL asks for it on the terminal, which a gateway's service has not)


@dataclass(frozen=True)
class ClientTls:
    """A TLS broker (mqtts://), the client's side: the CA that signed the broker's certificate
    (default: the system's trusted CAs), and this client's certificate and key (the key may be in
    the certificate's file) for a broker that asks for one (``broker-config --tls-ca``)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        """The SSL context, built once per command; TlsFileError naming the file that cannot be used."""
        try:
            context = ssl.create_default_context(cafile=self.ca)
        except (OSError, ssl.SSLError) as e:
            raise TlsFileError("--broker-ca", f"{self.ca}: not a CA certificate in PEM ({e})") from None
        if self.cert:
            try:
                context.load_cert_chain(self.cert, self.key, password=_no_passphrase)
            except _Encrypted:
                raise TlsFileError("--broker-key", f"{self.key or self.cert}: the private key is encrypted: give it "
                                   "without a passphrase (openssl pkey -in KEY -out PLAIN.key)") from None
            except (OSError, ssl.SSLError) as e:
                raise TlsFileError("--broker-cert", f"{self.cert} with key {self.key or '(in the same file)'}: not a "
                                   f"certificate and its private key in PEM ({e})") from None
        return context


class _LastError(logging.Handler):
    """The MQTT client's newest error, for the line that says why a connect failed (a TLS alert
    comes only in paho's log: the connect itself just times out). Also keeps it off stderr."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.said: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.said = record.getMessage()


def parse_url(url: str) -> BrokerUrl:
    """mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (TLS, 8883); ValueError saying what is wrong."""
    m = URL_RE.fullmatch(url.strip())
    if not m:
        raise ValueError(f"{url!r} is not a broker address: give mqtt://HOST:PORT (or mqtts://HOST:PORT for TLS)")
    port = int(m.group(3)) if m.group(3) else (8883 if m.group(1) == "mqtts" else 1883)
    if not 0 < port < 65536:
        raise ValueError(f"{url!r}: port {port} is not 1-65535")
    return BrokerUrl(m.group(2).strip("[]"), port, m.group(1) == "mqtts")


def read_password(path: str | Path, user: str) -> str:
    """``user``'s password in a credentials file (JSON ``{"users": {user: password}}``, docs/team.md);
    ValueError saying what is wrong."""
    try:
        users = json.loads(Path(path).read_text()).get("users")
    except (OSError, ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not a credentials file ({e})") from None
    if not isinstance(users, dict) or not isinstance(users.get(user), str):
        raise ValueError(f"{path}: no password for user {user!r} (users: {', '.join(map(str, users or {})) or 'none'})")
    return users[user]


def utc_ms() -> int:
    return int(time.time() * 1000)


class MqttConnection:
    """One MQTT connection kept up (see the module's docstring). ``on_message(topic, payload)``
    gets every message (exceptions are counted, never end the connection); ``on_connect()`` runs
    after each connect, before any message; ``on_lost()`` after each loss."""

    def __init__(self, url: BrokerUrl, *, client_id: str, on_message: Callable[[str, bytes], None],
                 user: str | None = None, password: str | None = None, subscriptions: Iterable[str] = (),
                 on_connect: Callable[[], Awaitable[None]] | None = None, on_lost: Callable[[], None] | None = None,
                 will: tuple[str, bytes] | None = None, tls_context: ssl.SSLContext | None = None):
        self.url, self.client_id, self.user, self.password = url, client_id, user, password
        self.tls_context = (tls_context or ssl.create_default_context()) if url.tls else None
        self._last_error = _LastError()
        self._logger = logging.Logger(f"{__name__}.{client_id}", logging.ERROR)  # its own, not in the registry
        self._logger.addHandler(self._last_error)
        self.subscriptions = tuple(subscriptions)
        self.on_message, self.on_connect, self.on_lost, self.will = on_message, on_connect, on_lost, will
        self.connects = 0
        self.losses = 0
        self.failed_messages = 0  # on_message raised: counted, the first kept
        self.first_failure: str | None = None
        self._client: Any = None
        self._publishing: set[asyncio.Future] = set()  # publishes waiting for their acknowledgement
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Connect once (BrokerUnavailable if the broker is unreachable or refuses us), then keep
        the connection up in the background."""
        try:
            await self._connect(wipe=True)  # what an earlier run left queued is not this run's
            await self._connect()
        except Exception as e:  # noqa: BLE001 - aiomqtt's errors, OSError, a timeout: one line, whatever it was
            raise BrokerUnavailable(self._why(e), port=str(self.url)) from None
        self._task = asyncio.ensure_future(self._serve())

    def _why(self, e: Exception) -> str:
        said = str(e) if not self._last_error.said else f"{e}: {self._last_error.said}"
        rc = getattr(e, "rc", None)
        if getattr(rc, "value", rc) in REFUSED_CODES:
            if self.user is None:
                return (f"the broker at {self.url} refused a connection without credentials ({e}): "
                        "give --broker-credentials")
            return f"the broker at {self.url} refused user {self.user} ({e}): check the credentials file"
        if "CERTIFICATE_REQUIRED" in said:
            return (f"the broker at {self.url} asks for a client certificate ({said}): "
                    "give --broker-cert and --broker-key")
        if "CERTIFICATE_VERIFY_FAILED" in said:
            if "mismatch" in said:  # (OpenSSL: "Hostname mismatch", "IP address mismatch")
                return (f"the broker's certificate is not made out to {self.url.host} ({said}): connect by a name or "
                        "address in its subjectAltName")
            if "expired" in said or "not yet valid" in said:
                return f"the broker's certificate at {self.url} is out of its dates ({said}): renew it"
            return (f"the broker at {self.url} shows a certificate not trusted here ({said}): "
                    "give the CA that signed it with --broker-ca")
        if "ALERT" in said:  # a TLS alert from the broker about our certificate (unknown CA, expired, ...)
            return f"the broker at {self.url} does not accept this client certificate ({said})"
        return f"cannot reach the broker at {self.url}: {said or type(e).__name__}"

    async def _connect(self, *, wipe: bool = False) -> None:
        """Connect and subscribe (a persistent session: what comes while we are away is kept for
        us); with ``wipe``, connect with a clean session and leave at once: the broker forgets it."""
        import aiomqtt

        will = aiomqtt.Will(self.will[0], self.will[1], qos=1, retain=True) if self.will and not wipe else None
        self._last_error.said = None
        client = aiomqtt.Client(self.url.host, self.url.port, username=self.user, password=self.password,
                                identifier=self.client_id, clean_session=wipe, will=will,
                                keepalive=KEEPALIVE_S, timeout=CONNECT_TIMEOUT_S,
                                tls_context=self.tls_context, logger=self._logger)
        client.pending_calls_threshold = PIPELINED  # (a gateway pipelines its publishes on purpose)
        await asyncio.wait_for(client.__aenter__(), CONNECT_TIMEOUT_S * 2)
        if wipe:
            await client.__aexit__(None, None, None)
            return
        try:
            for topic in self.subscriptions:
                await client.subscribe(topic, qos=1)
            self._client = client
            if self.on_connect:
                await self.on_connect()
        except BaseException:
            self._client = None
            await _quietly(client.__aexit__(None, None, None))
            raise
        self.connects += 1

    async def _serve(self) -> None:
        delay = BACKOFF_S[0]
        while not self._closing:
            client = self._client
            if client is None:
                try:
                    await self._connect()
                    delay = BACKOFF_S[0]
                except Exception:  # noqa: BLE001 - not up yet: again, a little later
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, BACKOFF_S[1])
                continue
            try:
                async for msg in client.messages:
                    self._deliver(str(msg.topic), msg.payload)
            except Exception:  # noqa: BLE001 - aiomqtt's "disconnected": reconnect
                pass
            self._client = None
            self.losses += 1
            for pending in list(self._publishing):  # their acknowledgements will never come: fail them now
                pending.cancel()
            await _quietly(client.__aexit__(None, None, None))
            if self.on_lost and not self._closing:
                self.on_lost()

    def _deliver(self, topic: str, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else (b"" if payload is None else str(payload).encode())
        try:
            self.on_message(topic, data)
        except Exception as e:  # noqa: BLE001 - one message must not end the connection
            self.failed_messages += 1
            self.first_failure = self.first_failure or f"{topic}: {e!r}"

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement; TransportError if not
        connected or not acknowledged."""
        client = self._client
        if client is None:
            raise TransportError(f"not connected to the broker at {self.url}", port=str(self.url))
        # (a task of its own: a lost connection cancels it, where aiomqtt would wait out its timeout)
        pending = asyncio.ensure_future(client.publish(topic, payload, qos=1, retain=retain,
                                                       timeout=PUBLISH_TIMEOUT_S))
        self._publishing.add(pending)
        pending.add_done_callback(self._publishing.discard)
        try:
            await pending
        except asyncio.CancelledError:
            if not pending.cancelled() or asyncio.current_task().cancelling():
                raise  # we are cancelled ourselves
            raise TransportError(f"the connection to the broker at {self.url} was lost before it acknowledged",
                                 port=str(self.url)) from None
        except Exception as e:  # noqa: BLE001 - aiomqtt's errors: the message was not acknowledged
            _still_cancelled()
            raise TransportError(f"publishing to the broker at {self.url} failed: {e}", port=str(self.url)) from e
        _still_cancelled()

    async def close(self, farewell: tuple[str, bytes] | None = None) -> None:
        """Disconnect, after publishing ``farewell`` (topic, payload; retained) if connected."""
        self._closing = True
        if farewell and self._client is not None:
            try:
                await asyncio.wait_for(self.publish(*farewell, retain=True), 2.0)
            except (TransportError, asyncio.TimeoutError):
                pass
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await _quietly(client.__aexit__(None, None, None))


def _still_cancelled() -> None:
    """Raise CancelledError if the current task was cancelled while it waited on a publish that
    ended otherwise: aiomqtt waits for the broker with Python 3.11's asyncio.wait_for, which
    drops a cancel that comes as the acknowledgement does. (A gateway's sender lost its cancel
    so, and the gateway never exited: 1 of 3 full-size squad runs.)"""
    if asyncio.current_task().cancelling():
        raise asyncio.CancelledError


async def _quietly(coro: Awaitable[Any]) -> None:
    try:
        await coro
    except Exception:  # noqa: BLE001 - tearing down a connection that may already be gone
        pass
