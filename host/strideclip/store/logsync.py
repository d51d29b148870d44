"""Fetch the session logs a clip wrote to its flash while no host listened, over the link it is
on (BLE; any transport that takes commands), and remove them from the clip once they are safe.

The clip's side is firmware/clipfw/logsync.py; the commands are in docs/protocol.md ("Session
logs on the clip"). A log is asked for in windows of LOG_CHUNK_BYTES-aligned pieces; the LOG_DATA
packets are put in place as they come, and a piece that did not come is asked for again, so a
busy or dropped link costs time, never bytes. Each log is read back with the session-log reader
before it is kept; a delete names the size fetched and is sent only for logs that read cleanly,
highest number first so the numbers of the others hold.

    fetcher = LogFetcher()
    transport = BleTransport(address, on_packet=fetcher.on_packet)
    ... (run the transport) ...
    paths = await fetcher.fetch_all(transport, out_dir, delete=True)
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from clipcore import protocol as P
from strideclip.errors import CommandError, LogSyncError, TransportError

if TYPE_CHECKING:  # (the link is imported when a clip is synced)
    from bleak.backends.client import BaseBleakClient

    from strideclip.link.transport import Transport

WINDOW_CHUNKS = 64  # pieces per read request (~14 kB)
IDLE_S = 1.5  # no piece for this long: ask again for what is missing
TRIES = 5


class LogFetcher:
    def __init__(self, *, idle_s: float = IDLE_S):
        self.idle_s = idle_s
        self.log_no = -1
        self.data = bytearray()
        self.got: set[int] = set()  # pieces (offset // LOG_CHUNK_BYTES) in place
        self._progress = asyncio.Event()

    def on_packet(self, pkt: bytes, t_s: float = 0.0) -> None:
        """Hand every packet from the clip here; LOG_DATA for the log being fetched is kept."""
        if not pkt or pkt[0] & 0x0F != P.T_LOG_DATA:
            return
        try:
            msg = P.decode(pkt)
        except P.ProtocolError:
            return  # a damaged piece is asked for again
        end = msg.offset + len(msg.data)
        if msg.log_no != self.log_no or msg.offset % P.LOG_CHUNK_BYTES or end > len(self.data):
            return  # from an earlier request, or not a piece we asked for
        self.data[msg.offset:end] = msg.data
        self.got.add(msg.offset // P.LOG_CHUNK_BYTES)
        self._progress.set()

    async def fetch(self, transport: Transport, log_no: int) -> bytes:
        """The whole of log log_no, as it is on the clip's flash now."""
        size = await transport.command(P.OP_LOG_READ, (log_no, 0, 0))
        self.log_no, self.data, self.got = log_no, bytearray(size), set()
        n_pieces = -(-size // P.LOG_CHUNK_BYTES)
        for window in range(0, n_pieces, WINDOW_CHUNKS):
            wanted = range(window, min(window + WINDOW_CHUNKS, n_pieces))
            for _ in range(TRIES):
                missing = [k for k in wanted if k not in self.got]
                if not missing:
                    break
                first, last = missing[0], missing[-1]
                await transport.command(P.OP_LOG_READ, (log_no, first * P.LOG_CHUNK_BYTES,
                                                        (last + 1 - first) * P.LOG_CHUNK_BYTES))
                await self._wait_for(wanted, last)
            else:
                missing = [k for k in wanted if k not in self.got]
                raise LogSyncError(f"log {log_no}: bytes {missing[0] * P.LOG_CHUNK_BYTES}.. never arrived "
                                   f"after {TRIES} requests")
        self.log_no = -1
        return bytes(self.data)

    async def _wait_for(self, wanted: range, last: int) -> None:
        """Until every piece wanted is here, or the request's last piece came (the clip sends in
        order: the ones still missing were lost), or the clip goes quiet."""
        while last not in self.got and any(k not in self.got for k in wanted):
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), self.idle_s)
            except asyncio.TimeoutError:
                return  # quiet: the caller asks again for what is missing

    async def fetch_all(self, transport: Transport, out_dir: str | Path, *, delete: bool = False,
                        echo: Callable[[str], None] = print) -> list[Path]:
        """Fetch every log on the clip into out_dir; with delete, remove from the clip those whose
        copy reads cleanly. Returns the paths written (or found already there, identical)."""
        from strideclip.stream.sclog import load_log

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        n_logs = await transport.command(P.OP_LOG_LIST, ())
        if n_logs == 0:
            echo("no logs on the clip")
        kept: list[tuple[int, int, Path]] = []  # (log_no, size, path) safe to delete
        paths = []
        for log_no in range(n_logs):
            data = await self.fetch(transport, log_no)
            partial = out_dir / f".log-{log_no}.partial"
            partial.write_bytes(data)
            log = load_log(partial)
            dest = out_dir / _name(log, log_no)
            if dest.exists() and dest.read_bytes() != data:
                if data.startswith(dest.read_bytes()):  # the log this boot writes, grown since
                    partial.replace(dest)
                else:
                    partial.unlink()
                    raise LogSyncError(f"{dest} exists with other contents; a session log is never overwritten")
            else:
                partial.replace(dest)
            echo(f"{dest.name}: {len(data)} bytes, {len(log.counts)} samples, {log.duration_s:.0f} s, "
                 f"{log.report.summary()}")
            paths.append(dest)
            if log.report.clean:
                kept.append((log_no, len(data), dest))
        if delete:
            for log_no, size, dest in reversed(kept):
                try:
                    await transport.command(P.OP_LOG_DELETE, (log_no, size))
                    echo(f"{dest.name}: removed from the clip")
                except CommandError as e:
                    if e.code == P.RESULT_BUSY:
                        echo(f"{dest.name}: kept on the clip (it is the log of the running session)")
                    else:
                        echo(f"{dest.name}: kept on the clip ({e})")
        return paths


def _name(log, log_no: int) -> str:
    """The clip's own name for the log, from its header (clip id, session)."""
    h = log.header or {}
    if isinstance(h.get("clip_id"), int) and isinstance(h.get("session_id"), int):
        return "clip-%08x-%05d.sclog" % (h["clip_id"], h["session_id"])
    return f"clip-unknown-log{log_no}.sclog"


async def sync_ble(address: str, out_dir: str | Path, *, delete: bool = False,
                   backend: type[BaseBleakClient] | None = None,
                   echo: Callable[[str], None] = print) -> list[Path]:
    """Connect to the clip at address over BLE, fetch (and with delete remove) its flash logs."""
    from strideclip.link.ble import BleTransport

    fetcher = LogFetcher()
    transport = BleTransport(address, on_packet=fetcher.on_packet, backend=backend)
    stop = asyncio.Event()
    runner = asyncio.ensure_future(transport.run(stop))
    try:
        for _ in range(200):  # connected (and greeted) within ~10 s, or the transport says why
            if transport.connected or runner.done():
                break
            await asyncio.sleep(0.05)
        if not transport.connected:
            raise TransportError(f"cannot connect to {address}", port=address)
        return await fetcher.fetch_all(transport, out_dir, delete=delete, echo=echo)
    finally:
        stop.set()
        await runner
