"""Who may reach the dashboard: one gate in front of every route (docs/security.md).

A browser on the coach's laptop also runs pages from elsewhere: another local server, an
advert, a site whose name is made to resolve to 127.0.0.1 (DNS rebinding). Each can make the
browser send requests to the dashboard. The gate refuses, before Bokeh or the dashboard's own
handlers see it, any request that
- names a Host the dashboard does not serve (rebinding: the page's name is not ours),
- comes from another origin (``Origin``), or is a sub-resource or script fetch a browser says
  another site asked for (``Sec-Fetch-Site``): only a top-level visit is allowed from elsewhere,
- asks for Bokeh's ``autoload.js`` (a script for embedding in other pages: it hands its session
  to whoever includes it),
- in LAN mode, does not start with the access token as its first path segment.

The token is in the path, not a cookie: cookies are shared by every port of a host, so a
cookie would go to any other local server the browser visits.
"""
from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tornado.routing import Router
    from tornado.web import Application, RequestHandler

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
CROSS_SITE = ("same-site", "cross-site")  # Sec-Fetch-Site values for a request another page made


def lan_names(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names a coach's browser on the LAN may use for this laptop: its host names and its
    addresses (found without sending a packet), the address it listens on, and ``extra``."""
    host = socket.gethostname()
    names = {host, f"{host}.local", socket.getfqdn(), bind_host, *LOCAL_NAMES, *extra}
    try:
        names.update(info[4][0] for info in socket.getaddrinfo(host, None))
    except OSError:  # a host name that does not resolve: its addresses come from the route below
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:  # the address this laptop routes to the LAN from (connecting a UDP socket sends nothing)
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                names.add(s.getsockname()[0])
        except OSError:
            pass
    return sorted(n.lower() for n in names if n and n not in ("0.0.0.0", "::"))


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port and IPv6 brackets."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class Gate:
    """The checks; ``refusal`` names what a request got wrong, or None to let it through."""

    def __init__(self, *, names: Iterable[str], port: int, token: str | None):
        self.names = {n.lower() for n in names}
        self.port = port
        self.token = token
        self.prefix = f"/{token}" if token else ""  # every route's path starts with it

    def origins(self) -> list[str]:
        """host:port pairs a page of ours may come from (Bokeh's websocket origin check)."""
        return [f"[{n}]:{self.port}" if ":" in n else f"{n}:{self.port}" for n in sorted(self.names)]

    def refusal(self, method: str, path: str, headers: Mapping[str, str]) -> str | None:
        if host_name(headers.get("Host", "")) not in self.names:
            return "this dashboard does not answer to that host name (start it with --allow-host NAME to add one)"
        origin = headers.get("Origin")
        if origin is not None and not self._ours(origin):
            return "request from another site's page"
        site = headers.get("Sec-Fetch-Site")
        top_level = (method == "GET" and headers.get("Sec-Fetch-Mode") == "navigate"
                     and headers.get("Sec-Fetch-Dest") == "document")
        if site in CROSS_SITE and not top_level:
            return "request from another site's page"
        if self.token and not self.token_ok(path):
            return "this dashboard needs the access token shown in the terminal (open the URL printed there)"
        if path.rstrip("/").endswith("/autoload.js"):
            return "the dashboard is not embedded in other pages"
        return None

    def token_ok(self, path: str) -> bool:
        given = path.split("/", 2)[1] if path.startswith("/") else ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def redact(self, text: str) -> str:
        """Text fit for a log: the access token taken out."""
        return text.replace(self.token, "…") if self.token else text

    def log_request(self, handler: RequestHandler) -> None:
        """tornado's access log line (its settings' ``log_function``), without the token."""
        status = handler.get_status()
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        r = handler.request
        logging.getLogger("tornado.access").log(
            level, "%d %s %s (%s) %.1fms", status, r.method, self.redact(r.uri), r.remote_ip, 1000 * r.request_time())

    def _ours(self, origin: str) -> bool:
        try:
            u = urlsplit(origin)
            port = u.port or {"http": 80, "https": 443}.get(u.scheme)
        except ValueError:  # "null" and other non-URLs
            return False
        return u.scheme == "http" and (u.hostname or "") in self.names and port == self.port


def gated(gate: Gate, app: Application) -> Router:
    """A tornado router that sends every request through ``gate`` before ``app`` sees it; a
    refused one gets a 403 naming why (and the access log never shows the token)."""
    from tornado.routing import Router
    from tornado.web import RequestHandler

    class Refused(RequestHandler):
        def initialize(self, why: str):
            self.why = why

        def prepare(self):
            self.set_status(403)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"403: {self.why}\n")

    class GateRouter(Router):
        def find_handler(self, request, **kwargs):
            why = gate.refusal(request.method, request.path, request.headers)
            if why:
                return app.get_handler_delegate(request, Refused, {"why": why})
            return app.find_handler(request, **kwargs)

    return GateRouter()
