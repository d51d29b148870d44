"""A gateway's radio in another process's air (``--ble-backend blesim.remoteworld:world``): a bumble
host whose controller is one of the air server's (blesim/airserver.py), reached over HCI on TCP
at ``BLESIM_AIR=HOST:PORT``. The host's ordinary bleak code runs on it through the bumble bleak
backend (blesim/bleak_bumble.py), as it does over BlueZ on a real gateway."""
from __future__ import annotations

import asyncio
import os
import signal
import sys

from bumble.device import Device
from bumble.host import Host
from bumble.transport import open_transport

from blesim.bleak_bumble import backends


class RemoteRadio:
    """What the bleak backend needs: a powered central, one connection attempt at a time."""

    def __init__(self, central: Device, transport) -> None:
        self.central = central
        self.transport = transport  # (held: closing it is the gateway powering off)
        self.connect_lock = asyncio.Lock()
        self.connect_when_seen = True  # as BlueZ on a gateway: many clips may wait to come into range
        self.scanner_backend, self.client_backend = backends(self)


async def world() -> RemoteRadio:
    where = os.environ.get("BLESIM_AIR", "")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"blesim.remoteworld: BLESIM_AIR must be HOST:PORT of an air server's gateway, not {where!r}")
    try:
        transport = await open_transport(f"tcp-client:{host}:{port}")
    except OSError as e:
        raise SystemExit(f"blesim.remoteworld: no air server at {where}: {e}") from e
    # (no address given: bumble makes a static random one, unique to this gateway)
    central = Device(name=os.environ.get("BLESIM_NAME", "gateway"), host=Host(transport.source, transport.sink))
    await central.power_on()
    _dump_tasks_on(signal.SIGUSR1)
    return RemoteRadio(central, transport)


def _dump_tasks_on(signum: int) -> None:
    """``kill -USR1`` a gateway process: where each of its tasks waits, on stderr (a stuck link)."""
    loop = asyncio.get_running_loop()

    def dump() -> None:
        for task in asyncio.all_tasks(loop):
            coro, where = task.get_coro(), []
            while coro is not None and hasattr(coro, "cr_frame"):  # down the chain of awaits
                if coro.cr_frame is not None:
                    where.append(f"{coro.cr_frame.f_code.co_filename}:{coro.cr_frame.f_lineno} {coro.__qualname__}")
                coro = coro.cr_await
            print(f"task {task.get_name()}:\n  " + "\n  ".join(where), file=sys.stderr)

    try:
        loop.add_signal_handler(signum, dump)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        pass
