"""One air for many processes (issue #24): simulated clips and one controller per gateway on a
single link (tests/rig/air.py ``AirLink``), each gateway's controller served to its own process
over HCI on a TCP socket; that process runs the host's ordinary bleak code over bumble
(``--ble-backend blesim.remoteworld:world`` with ``BLESIM_AIR=127.0.0.1:PORT``).

    python -m blesim.airserver --gateways 3 --clips 4 --minutes 2 --speed 10   (tests/ on PYTHONPATH)

prints one JSON line when ready: ``{"control": PORT, "gateways": {NAME: PORT}, "clips": {NAME:
ADDRESS}}``. The air decides who hears whom (docs/team.md, "How the team setup is tested"):

- a clip is in range of the gateways named for it (at the start ``--reach``, default clip i with
  gateway i mod N); only they see its advertising, only they can connect (a connection attempt
  out of range stays pending, as a real controller's does, until the clip comes into range);
- a clip moved out of a gateway's range (control ``move``) loses that link as over the air: data
  stops at once, whatever packet is on its way; the clip hears a supervision timeout (0x08), the
  gateway ``lag_s`` later, so for that moment both gateways may hold the clip;
- a gateway process that dies (its HCI socket closes) is a gateway that lost power: its
  controller leaves the air, its clips time out (0x08); a new process on the same port is the
  gateway back on, with a fresh controller.

Each clip (blesim/clip.py ``SimClip``) takes one central at a time, as the firmware does, and
starts its run when first heard (``--start now``: at once; ``command``: on the control's "start",
for a squad that gathers in every gateway's range before the run). The truth for a test's assertions is
what each clip sampled and what the air carried to each gateway: every SAMPLES and BACKFILL
notification as it reaches the gateway's controller (``truth``).

Control: a TCP socket of JSON lines, one answer per request (``AirClient`` in blesim/airclient.py):
``{"op": "move", "clip": NAME, "to": [GATEWAY...], "supervision_timeout_s": 0.72, "lag_s": 0}``,
``{"op": "status"}``, ``{"op": "truth", "clip": NAME}``, ``{"op": "start"}``, ``{"op": "quit"}``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

from bumble import hci
from bumble.transport.common import StreamPacketSource

from blesim.clip import SimClip
from blesim.radio import Radio
from clipcore import protocol as P
from rig.air import AirLink, LaptopController
from strideclip.sim import simulate, steady_run
from strideclip.stream.packets import decode_packet

ATT_CID, ATT_NOTIFICATION = 0x0004, 0x1B
SUPERVISION_TIMEOUT_S = 0.72  # what hosts ask for (docs/host-link.md)


class GatewayController(LaptopController):
    """A gateway's controller in the air: notes every clip notification the air delivers to it."""

    def __init__(self, name: str, air: "AirServer", **kwargs):
        super().__init__(name, **kwargs)
        self.air = air

    def on_link_acl_data(self, sender_address, transport, data):
        if len(data) > 7 and int.from_bytes(data[2:4], "little") == ATT_CID and data[4] == ATT_NOTIFICATION:
            clip = self.air.clip_at(sender_address)
            if clip is not None and int.from_bytes(data[5:7], "little") == clip.samples_char.handle:
                clip.carried(self.name, bytes(data[7:]))
        super().on_link_acl_data(sender_address, transport, data)

    def on_le_disconnected(self, connection, reason):
        clip = self.air.clip_at(connection.peer_address)
        if clip is not None:
            clip.gateway_lost(self.name, reason)
        super().on_le_disconnected(connection, reason)


class GatewayLine(StreamPacketSource):
    """One gateway process's HCI over TCP: a fresh controller for each process that connects."""

    def __init__(self, air: "AirServer", name: str, index: int):
        super().__init__()
        self.air, self.name, self.index = air, name, index
        self.transport = None
        self.controller: GatewayController | None = None

    def connection_made(self, transport) -> None:
        if self.air.gateways.get(self.name) is not None:  # one process per gateway at a time
            transport.close()
            return
        self.transport = transport
        self.controller = GatewayController(self.name, self.air, host_source=self, host_sink=self,
                                            link=self.air.link, public_address=f"D0:00:00:00:00:{self.index:02X}")
        self.air.gateways[self.name] = self.controller

    def on_packet(self, packet: bytes) -> None:  # (the controller's sink: HCI to the process)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)

    def connection_lost(self, exc) -> None:
        if self.controller is not None:
            self.air.power_off(self.name, self.controller)
        self.transport = None


class AirClip(SimClip):
    """A SimClip that keeps the truth: who it was connected to, every loss and its reason, and
    what the air carried to which gateway (``carried``, called by the gateway's controller)."""

    def __init__(self, air: "AirServer", *args, **kwargs):
        super().__init__(air, *args, **kwargs)
        self.air = air
        self.stream_started_utc: float | None = None
        mine = bytes(hci.Address(self.address))
        self.controller = next(c for c in air.link.controllers if bytes(c.public_address) == mine)
        air.by_address[bytes(self.controller.public_address)] = self
        self.links: list[dict] = []  # {"gateway", "connected_s", "lost_s", "reason", "gateway_lost_s"}, time.monotonic()
        self.delivered: dict[str, list[tuple[int, int, int]]] = {}  # gateway -> (ptype, first_idx, count)

    def _on_connection(self, connection) -> None:
        super()._on_connection(connection)
        link = {"gateway": self.air.gateway_at(connection.peer_address), "connected_s": self._now(),
                "lost_s": None, "reason": None, "gateway_lost_s": None}
        self.links.append(link)

        def lost(reason: int) -> None:
            link["lost_s"], link["reason"] = self._now(), int(reason)

        connection.on("disconnection", lost)

    def gateway_lost(self, gateway: str, reason: int) -> None:
        """When the gateway's side of its link ended (it may learn later than the clip)."""
        for link in reversed(self.links):
            if link["gateway"] == gateway and link["gateway_lost_s"] is None:
                link["gateway_lost_s"] = self._now()
                return

    @staticmethod
    def _now() -> float:
        return round(time.monotonic(), 3)  # (one clock for every process on the machine)

    async def stream(self) -> None:
        self.stream_started_utc = time.time()  # sample i is made (i + 1) / (rate x speed) s after this
        await super().stream()

    def carried(self, gateway: str, value: bytes) -> None:
        try:
            msg = decode_packet(value)
        except Exception:  # noqa: BLE001  (a log-sync packet, not samples)
            return
        if isinstance(msg, P.Samples):
            self.delivered.setdefault(gateway, []).append((msg.ptype, msg.first_idx, msg.count))

    def status(self) -> dict:
        conn = self.connection
        return {"address": self.address, "samples": len(self.counts), "sampled": self._next_idx,
                "done": self.done.is_set(), "sent_packets": self.sent_packets, "unsent_packets": self.unsent_packets,
                "in_range": sorted(self.air.link.reach.get(self.name, ())),
                "connected_to": self.air.gateway_at(conn.peer_address) if conn else None,
                "listening": self.host_listening, "links": self.links}

    def truth(self) -> dict:
        """What the air carried to each gateway, as runs [ptype, first_idx, end_idx) of consecutive samples."""
        out = {}
        for gateway, packets in self.delivered.items():
            runs: list[list[int]] = []
            for ptype, first, count in packets:
                if runs and runs[-1][0] == ptype and runs[-1][2] == first:
                    runs[-1][2] = first + count
                else:
                    runs.append([ptype, first, first + count])
            out[gateway] = runs
        return {"links": self.links, "carried": out, "sampled": self._next_idx, "rate_hz": self.rate_hz,
                "speed": self.speed, "stream_started_utc": self.stream_started_utc}


class AirServer:
    """The link, the clips and the gateways' controllers (what ``SimClip`` takes as its radio)."""

    address_for = staticmethod(Radio.address_for)

    def __init__(self):
        self.link = AirLink()
        self.clips: list[AirClip] = []
        self.by_address: dict[bytes, AirClip] = {}
        self.gateways: dict[str, GatewayController | None] = {}
        self.ports: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self.quit = asyncio.Event()
        self.go = asyncio.Event()  # ``--start command``: the clips' runs start on the control's "start"

    def later(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def clip(self, name: str) -> AirClip:
        for c in self.clips:
            if c.name == name:
                return c
        raise KeyError(f"no clip {name!r}; clips: {', '.join(c.name for c in self.clips)}")

    def clip_at(self, address: hci.Address) -> AirClip | None:
        return self.by_address.get(bytes(address))

    def gateway_at(self, address: hci.Address) -> str | None:
        for name, controller in self.gateways.items():
            if controller is not None and bytes(address) in (bytes(controller.random_address),
                                                            bytes(controller.public_address)):
                return name
        return None

    async def open_gateway(self, name: str, index: int, host: str) -> None:
        self.gateways[name] = None  # off until a process connects
        server = await asyncio.get_running_loop().create_server(lambda: GatewayLine(self, name, index), host, 0)
        self.ports[name] = server.sockets[0].getsockname()[1]

    def power_off(self, name: str, controller: GatewayController) -> None:
        """The gateway's process is gone: its radio is silent, its clips time out."""
        self.gateways[name] = None
        controller.pending_le_connection = None
        controller.le_scan_enable = False
        self.link.remove_controller(controller)
        for clip in self.clips:
            self.later(self.link.cut(controller, clip.controller, SUPERVISION_TIMEOUT_S))

    def move(self, clip_name: str, to: list[str], supervision_timeout_s: float = SUPERVISION_TIMEOUT_S,
             lag_s: float = 0.0) -> None:
        clip = self.clip(clip_name)
        unknown = [g for g in to if g not in self.gateways]
        if unknown:
            raise KeyError(f"no gateway {unknown[0]!r}; gateways: {', '.join(self.gateways)}")
        self.link.reach[clip.name] = set(to)
        for name, controller in self.gateways.items():
            if controller is not None and name not in to:
                self.later(self.link.cut(controller, clip.controller, supervision_timeout_s, lag_s))

    def answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "move":
            self.move(request["clip"], list(request["to"]), float(request.get("supervision_timeout_s", SUPERVISION_TIMEOUT_S)),
                      float(request.get("lag_s", 0.0)))
            return {"ok": True}
        if op == "status":
            return {"ok": True, "clips": {c.name: c.status() for c in self.clips},
                    "gateways": {g: c is not None for g, c in self.gateways.items()}}
        if op == "truth":
            return {"ok": True, **self.clip(request["clip"]).truth()}
        if op == "start":
            self.go.set()
            return {"ok": True}
        if op == "quit":
            self.quit.set()
            return {"ok": True}
        raise KeyError(f"unknown op {op!r}")

    async def serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = self.answer(json.loads(line))
                except (KeyError, ValueError, TypeError) as e:
                    reply = {"ok": False, "error": str(e).strip("'\"")}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # the server is ending, or the test went away
        writer.close()


async def _stream_when_heard(clip: AirClip) -> None:
    while not clip.host_listening:
        await asyncio.sleep(0.02)
    await clip.stream()


async def _stream_when_told(air: AirServer, clip: AirClip) -> None:
    await air.go.wait()
    await clip.stream()


def _reach(spec: str | None, clips: int, gateways: list[str]) -> dict[str, set[str]]:
    """``clip-1=gw-1+gw-2,clip-2=`` (an empty list: out of everyone's range); unnamed clips: clip i with gateway i mod N."""
    reach = {f"clip-{i + 1}": {gateways[i % len(gateways)]} for i in range(clips)}
    for item in filter(None, (spec or "").split(",")):
        clip, _, names = item.partition("=")
        reach[clip] = set(filter(None, names.split("+")))
    return reach


async def main(args: argparse.Namespace) -> None:
    air = AirServer()
    names = [f"gw-{i + 1}" for i in range(args.gateways)]
    for i, name in enumerate(names):
        await air.open_gateway(name, i + 1, args.host)
    air.link.reach.update(_reach(args.reach, args.clips, names))
    for i in range(args.clips):
        run = simulate(steady_run(args.minutes, seed=args.seed + i))
        clip = AirClip(air, i + 1, f"clip-{i + 1}", run.counts, run.hello, speed=args.speed, store_s=args.store_s)
        await clip.start()
        air.later(clip.stream() if args.start == "now" else _stream_when_told(air, clip) if args.start == "command"
                  else _stream_when_heard(clip))
    control = await asyncio.start_server(air.serve_control, args.host, 0)
    print(json.dumps({"control": control.sockets[0].getsockname()[1], "gateways": air.ports,
                      "clips": {c.name: c.address for c in air.clips}}), flush=True)
    await air.quit.wait()
    await asyncio.sleep(0.05)  # (the quit's answer goes out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m blesim.airserver", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=1.0, help="each clip's simulated run")
    ap.add_argument("--speed", type=float, default=10.0, help="times real time")
    ap.add_argument("--store-s", type=float, default=120.0, help="the clip's backfill ring, in run seconds")
    ap.add_argument("--seed", type=int, default=60)
    ap.add_argument("--reach", default=None, help="clip-1=gw-1+gw-2,... (default: clip i with gateway i mod N)")
    ap.add_argument("--start", choices=["heard", "now", "command"], default="heard",
                    help="when the clips' runs start: once a gateway subscribes, at once, or on the control's start")
    ap.add_argument("--host", default="127.0.0.1")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
