"""The dashboard's server: the Bokeh app (strideclip.views.dashboard.page) behind the gate
(strideclip.views.dashboard.gate) with two routes of its own, /api/state and /files/, in the same
event loop as the live clips (strideclip.session.live); a report per athlete when the run ends."""
from __future__ import annotations

import asyncio
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from strideclip.session.live import LiveClip
from strideclip.views.dashboard.page import make_app
from strideclip.views.dashboard.state import RECORD_S, Dashboard


def extra_handlers(dash: Dashboard) -> list[tuple[str, type]]:
    """/api/state (JSON of every tile and the session view) and /files/NAME (the session's logs
    and reports); the gate in front has checked who asks."""
    from tornado.web import HTTPError, RequestHandler

    class State(RequestHandler):
        def get(self):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(dash.state(), default=_json_default))

    class Files(RequestHandler):
        def get(self, name: str):
            path = dash.files().get(name)
            if path is None:
                raise HTTPError(404)
            self.set_header("Content-Type", "text/html; charset=utf-8" if path.suffix == ".html"
                            else "application/octet-stream")
            self.set_header("X-Content-Type-Options", "nosniff")
            if path.suffix != ".html":
                self.set_header("Content-Disposition", f'attachment; filename="{path.name}"')
            with open(path, "rb") as f:
                while chunk := f.read(1 << 16):
                    self.write(chunk)
            self.finish()

    return [(r"/api/state", State), (r"/files/([^/]+)", Files)]


def _json_default(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(type(v))


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def serve(clips: list[LiveClip], *, out_dir: Path, host: str, port: int, lan: bool, seconds: float | None,
                echo: Callable[[str], None] = print, reports: bool = True, allow_hosts: Iterable[str] = ()) -> Dashboard:
    """Run the clips and the page until ``seconds`` pass (or Ctrl-C); the page stays up with the
    session view after every link has ended, until the time is up. ``allow_hosts``: names the
    browsers use for this machine beyond those it knows (strideclip.views.dashboard.gate)."""
    from bokeh.server.server import BaseServer
    from bokeh.server.tornado import BokehTornado
    from bokeh.server.util import bind_sockets
    from tornado.httpserver import HTTPServer
    from tornado.ioloop import IOLoop

    from strideclip.session.live import run_clips
    from strideclip.views.dashboard.gate import LOCAL_NAMES, Gate, gated, lan_names

    dash = Dashboard(clips, out_dir=out_dir)
    sockets, actual_port = bind_sockets(host, port)
    names = lan_names(host, allow_hosts) if lan else [*LOCAL_NAMES, host, *allow_hosts]
    gate = Gate(names=names, port=actual_port, token=new_token() if lan else None)
    # Bokeh's session token carries the request's headers, cookies and arguments to the page:
    # none of them (the page needs none); sessions signed, so no one forges a websocket's.
    app = BokehTornado({"/": make_app(dash)}, prefix=gate.prefix, extra_websocket_origins=gate.origins(),
                       extra_patterns=extra_handlers(dash), secret_key=secrets.token_bytes(32), sign_sessions=True,
                       include_headers=[], include_cookies=[], log_function=gate.log_request,
                       check_unused_sessions_milliseconds=5000, unused_session_lifetime_milliseconds=15000)
    http = HTTPServer(gated(gate, app))
    http.add_sockets(sockets)
    server = BaseServer(IOLoop.current(), app, http)
    server.start()
    shown = host if host not in ("0.0.0.0", "::", "") else next(
        (n for n in names if n not in LOCAL_NAMES and n[0].isdigit()), socket.gethostname())
    echo(f"dashboard: http://{f'[{shown}]' if ':' in shown else shown}:{actual_port}{gate.prefix}/")
    if lan:
        echo("serving to the LAN: anyone with this URL can watch and send cues; keep it to your team "
             f"(it answers to {', '.join(n for n in names if n not in LOCAL_NAMES)})")
    import sys

    sys.stdout.flush()
    stop = asyncio.Event()
    # the charts' history is the server's: recorded whether a page is open or not
    runner = asyncio.ensure_future(run_clips(clips, seconds=seconds, stop=stop, on_update=lambda _clips: dash.record(),
                                             update_s=RECORD_S))
    try:
        await runner
        dash.ended = True
        if reports:
            _write_reports(dash, echo)
        if seconds is None:
            await asyncio.Event().wait()  # the session view stays up until Ctrl-C
        else:
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - dash.started_s)))
    finally:
        stop.set()
        server.stop()
    return dash


def _write_reports(dash: Dashboard, echo) -> None:
    """A report per athlete, linked from the session view (beside its log, in the output folder)."""
    from strideclip.views.report import write_session_reports

    write_session_reports([c.log_path for c in dash.clips if c.log_path.exists() and c.session.step_count], warn=echo)
