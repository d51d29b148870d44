"""chromium watching the coach's dashboard (bench_dashboard.py, bench_team.py): on every animation
frame a script in the page notes each tile whose newest packet changed, with the tile's
``data-received`` (wall time the coach received that packet), ``data-newest-idx`` (one past its
newest live sample) and the frame's wall time. Needs Debian's chromium (make test installs it)."""
from __future__ import annotations

import os
import threading

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

# Find the tiles' box once (walking every shadow root: Bokeh draws each view in one), again only
# if it is replaced, and note on every frame each tile whose newest packet changed.
WATCH = """
() => {
  const find = () => { let box = null; const walk = (root) => { root.querySelectorAll('*').forEach(el => {
      if (!box && el.classList && el.classList.contains('tiles')) box = el;
      if (el.shadowRoot) walk(el.shadowRoot); }); }; walk(document); return box; };
  window.bench = {changes: [], frames: 0, last: {}};
  let box = find();
  const frame = () => {
    window.bench.frames += 1;
    const now = Date.now() / 1000;
    if (!box || !box.isConnected) box = find();
    for (const t of (box ? box.children : [])) {
      const r = parseFloat(t.dataset.received);
      const who = t.dataset.athlete;
      if (r && window.bench.last[who] !== r) {
        window.bench.last[who] = r;
        window.bench.changes.push([who, r, parseInt(t.dataset.newestIdx || '-1'), now]);
      }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}
"""


def have_chromium() -> bool:
    return os.access(CHROMIUM, os.X_OK)


class ScreenWatch(threading.Thread):
    """The page in its own thread (Playwright's sync API lives in the thread that started it):
    ``watch(url)`` opens it and starts noting; ``finish()`` stops and returns
    {"changes": [[athlete, received_s, newest_idx, on_screen_s], ...], "frames": n, "seconds": s}."""

    def __init__(self, *, settle_ms: int = 0, viewport: tuple[int, int] = (1400, 1200)):
        super().__init__(daemon=True)
        self.settle_ms, self.viewport = settle_ms, viewport
        self._url: str | None = None
        self._url_given, self._finish_asked, self._ended = threading.Event(), threading.Event(), threading.Event()
        self.result: dict | None = None
        self.error: BaseException | None = None
        self.start()

    def watch(self, url: str) -> None:
        self._url = url
        self._url_given.set()

    def finish(self, timeout_s: float = 60.0) -> dict:
        self._finish_asked.set()
        self._url_given.set()
        self._ended.wait(timeout_s)
        if self.error:
            raise self.error
        return self.result or {"changes": [], "frames": 0, "seconds": 0.0}

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            self._url_given.wait()
            if self._url is None:
                return
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": self.viewport[0], "height": self.viewport[1]})
                page.goto(self._url)
                page.wait_for_selector(".tile", state="attached", timeout=60000)
                if self.settle_ms:
                    page.wait_for_timeout(self.settle_ms)
                page.evaluate(WATCH)
                t0 = page.evaluate("Date.now() / 1000")
                while not self._finish_asked.is_set():
                    page.wait_for_timeout(250)
                self.result = page.evaluate("window.bench")
                self.result["seconds"] = page.evaluate("Date.now() / 1000") - t0
                del self.result["last"]
                browser.close()
        except BaseException as e:  # (raised again in finish(), in the caller's thread)
            self.error = e
        finally:
            self._ended.set()
