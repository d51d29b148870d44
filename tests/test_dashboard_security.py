"""The dashboard against hostile input, in Debian's chromium: a page from another localhost
port, a name made to resolve to this machine (DNS rebinding), foreign Host headers, and
/files/ asked for what the session did not write (docs/security.md)."""
import http.client
import http.server
import json
import re
import threading
import time

import pytest
from playwright.sync_api import expect

from strideclip.stream.sclog import load_log
from test_dashboard import DashboardProcess

HOSTILE_JS = """
window.results = {};
(async () => {
  const D = %(dash)s, P = %(prefix)s, T = %(bokeh_token)s;
  const R = window.results;
  // the reported attack: the dashboard's autoload.js as a script of this page
  R.autoload = await new Promise(done => {
    const s = document.createElement("script");
    s.src = D + P + "/autoload.js";
    s.onload = () => done("loaded"); s.onerror = () => done("refused");
    document.head.appendChild(s);
  });
  R.bokeh = typeof window.Bokeh;
  for (const mode of ["cors", "no-cors"]) {
    try {
      const r = await fetch(D + P + "/api/state", {mode: mode, credentials: "include"});
      R["state_" + mode] = r.type === "opaque" ? "opaque" : await r.text();
    } catch (e) { R["state_" + mode] = "refused"; }
  }
  // the websocket, even with a session token that leaked: a buzz is one message on it
  R.ws = await new Promise(done => {
    const ws = new WebSocket(D.replace("http:", "ws:") + P + "/ws", ["bokeh", T]);
    ws.onopen = () => done("open"); ws.onerror = () => done("refused");
  });
  R.cookie = document.cookie;
  R.done = true;
})();
"""


class HostilePage:
    """A page on another localhost port; it records what the browser sent it."""

    def __init__(self):
        self.body = b""
        self.requests = []
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                page.requests.append(dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, **values) -> None:
        js = HOSTILE_JS % {k: json.dumps(v) for k, v in values.items()}
        self.body = f"<html><body><script>{js}</script></body></html>".encode()

    def close(self) -> None:
        self.server.shutdown()


def _bokeh_token(page_html: str) -> str:
    return re.search(r'"token":"([^"]+)"', page_html).group(1)


def _coach_cues(tmp_path) -> list:
    return [e for log in tmp_path.glob("*.sclog") for _t, e in load_log(log).host_events
            if e.get("event") in ("cue_sent", "cue_failed")]


@pytest.mark.parametrize("lan", [False, True], ids=["local", "lan"])
def test_a_page_on_another_localhost_port_can_neither_read_the_token_nor_open_the_websocket_nor_cue(
        tmp_path, browser, lan):
    from bokeh.util.token import get_token_payload

    dash = DashboardProcess(tmp_path, "--simulate", 1, "--speed", 5, "--minutes", 6, "--seconds", 90,
                            *(["--lan"] if lan else []))
    hostile = HostilePage()
    try:
        context = browser.new_context()
        coach = context.new_page()  # the coach has the dashboard open in the same browser
        coach.goto(dash.url)
        expect(coach.locator(".tile")).to_have_count(1, timeout=30000)
        token = dash.prefix.strip("/")
        bokeh_token = _bokeh_token(urllib_get(dash.url))
        if lan:  # the session token Bokeh hands the page carries nothing of the access token
            assert token not in json.dumps(get_token_payload(bokeh_token))
        # the attacker knows neither the token nor a session; then, worse, both (as if leaked)
        for prefix, session in (("", "forged"), (dash.prefix, bokeh_token)):
            hostile.serve(dash=dash.origin, prefix=prefix, bokeh_token=session)
            page = context.new_page()
            page.goto(hostile.url)
            page.wait_for_function("window.results && window.results.done", timeout=20000)
            r = page.evaluate("window.results")
            page.close()
            assert r["autoload"] == "refused" and r["bokeh"] == "undefined", r
            assert r["state_cors"] == "refused" and r["state_no-cors"] == "opaque", r
            assert r["ws"] == "refused", r
            assert r["cookie"] == "", r
        # the browser sent the other port nothing of the dashboard's (cookies go to every port)
        assert hostile.requests and all(token not in json.dumps(h) for h in hostile.requests if token)
        expect(coach.locator('.tile[data-athlete="athlete-1"]')).to_have_count(1)  # the coach's page works on
        context.close()
    finally:
        hostile.close()
        err = dash.stop()
    assert "Traceback" not in err, err
    assert _coach_cues(tmp_path) == [], "a hostile page cued the athlete"
    refused = [line for line in err.splitlines() if line.startswith("403 ")]
    assert any("/ws" in line for line in refused) and any("autoload.js" in line for line in refused), err
    if lan:
        assert dash.prefix.strip("/") not in err, "the token is in the server's log"


def urllib_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def _status(dash, path: str, host: str | None = None, headers=None) -> int:
    c = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=10)
    c.request("GET", path, headers={"Host": host or f"127.0.0.1:{dash.port}", **(headers or {})})
    status = c.getresponse().status
    c.close()
    return status


@pytest.mark.parametrize("lan", [False, True], ids=["local", "lan"])
def test_foreign_host_names_get_403_on_every_route_and_files_serves_only_the_sessions_outputs(tmp_path, lan):
    (tmp_path / ".secret").write_text("key")
    (tmp_path / "notes.txt").write_text("not the session's")
    dash = DashboardProcess(tmp_path, "--simulate", 1, "--speed", 120, "--minutes", 6, "--seconds", 60,
                            *(["--lan"] if lan else []))
    try:
        deadline = time.monotonic() + 60
        while not dash.state()["session"][0]["report"]:  # the run ended and its report was written
            assert time.monotonic() < deadline, "no report after 60 s"
            time.sleep(0.5)
        log = next(tmp_path.glob("athlete-1*.sclog")).name
        report = dash.state()["session"][0]["report"]
        p = dash.prefix
        routes = ["/", "/static/js/bokeh.min.js", "/ws", "/api/state", f"/files/{log}", f"/files/{report}", "/metadata",
                  "/favicon.ico"]
        ours = {r: _status(dash, p + r) for r in routes}
        assert ours["/"] == ours["/api/state"] == ours[f"/files/{log}"] == ours["/static/js/bokeh.min.js"] == 200, ours
        for route in routes:  # DNS rebinding: a page whose name now resolves here
            for host in (f"rebind.example:{dash.port}", "rebind.example", f"127.0.0.1.evil.example:{dash.port}"):
                assert _status(dash, p + route, host) == 403, (route, host)
        # /files/ is the session's log and report, nothing else of the folder
        assert _status(dash, f"{p}/files/{report}") == 200
        for name in (".secret", "notes.txt", "..%2F.secret", "%2E%2E/%2E%2E/etc/passwd", "", "."):
            assert _status(dash, f"{p}/files/{name}") in (403, 404), name
        import urllib.request

        with urllib.request.urlopen(dash.url + "files/" + log, timeout=10) as r:
            assert r.read() == (tmp_path / log).read_bytes()
        if lan:
            for wrong in ("", "/" + "x" * 24, "/%C3%A9%C3%A9"):
                assert _status(dash, wrong + "/api/state") == 403, wrong
            assert _status(dash, "/api/state?token=" + p.strip("/")) == 403  # the token goes in the path only
    finally:
        err = dash.stop()
    assert "Traceback" not in err and " 500 " not in err, err
    if lan:
        assert p.strip("/") not in err


def test_a_cue_to_an_athlete_whose_run_has_ended_says_so(tmp_path, browser):
    dash = DashboardProcess(tmp_path, "--simulate", 1, "--speed", 120, "--minutes", 6, "--seconds", 60)
    try:
        page = browser.new_page()
        page.goto(dash.url)
        expect(page.locator("table.session a")).to_have_count(1, timeout=60000)  # the run ended
        page.locator('.bk-tab:text("Live")').click()
        page.click('.bk-btn:text("Buzz")')
        expect(page.get_by_text("athlete-1: buzz not delivered (athlete-1's run has ended)")).to_have_count(1, timeout=10000)
        page.close()
    finally:
        err = dash.stop()
    assert "Traceback" not in err, err
