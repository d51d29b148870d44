"""The live terminal view's cost (issue #26 item 4): several simulated clips recorded through
the live path (session.live.run_clips) with no view, with the view before #26 (rich redrawing
the whole table four times a second) and with today's (at most once a second, only when a value
shown changed), drawn into a terminal that is not shown (rich, forced terminal, to memory).
Prints the process CPU per hour of clip data for each and the view's share.
Run: .venv/bin/python bench/bench_terminal_view.py [--clips 8] [--minutes 2] [--speed 10]
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rich

from strideclip.session.live import open_clips, run_clips
from strideclip.link.sources import sim_source
from strideclip.sim import simulate, steady_run
from strideclip.views.terminal import TerminalView

BEFORE = "4023ac6"  # the commit before the one terminal view (#22, #26)


def _old_view():
    """The view as it was at BEFORE (LiveTable), loaded from git without touching the tree."""
    src = subprocess.run(["git", "show", f"{BEFORE}:host/strideclip/views/terminal.py"], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / "old_terminal.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_terminal", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.LiveTable(live=True)


def run_once(runs, speed: float, view) -> float:
    async def main():
        with tempfile.TemporaryDirectory() as out:
            clips = open_clips([sim_source(f"athlete-{k + 1}", r, speed) for k, r in enumerate(runs)], Path(out))
            if view is None:
                await run_clips(clips)
            else:
                with view:
                    await run_clips(clips, on_update=view.update if hasattr(view, "_render") else view.show_clips)

    cpu0 = time.process_time()
    asyncio.run(main())
    return time.process_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--speed", type=float, default=10.0)
    a = ap.parse_args()
    rich.reconfigure(file=io.StringIO(), force_terminal=True, width=120)  # a terminal nobody sees
    runs = [simulate(steady_run(a.minutes, seed=40 + k)) for k in range(a.clips)]
    hours = a.clips * a.minutes / 60
    views = {"no view": lambda: None, f"view before ({BEFORE})": _old_view,
             "view now": lambda: TerminalView(title="StrideClip live", live=True)}
    cpu = {name: run_once(runs, a.speed, make()) for name, make in views.items()}
    print(f"{a.clips} simulated clips, {a.minutes:g} min each at {a.speed:g}x real time, rich drawing to memory")
    for name, s in cpu.items():
        extra = "" if name == "no view" else f"; the view's share {100 * (s - cpu['no view']) / s:.0f} %"
        print(f"  {name:<24} CPU {s:6.2f} s = {s / hours:6.1f} s per clip-hour{extra}")


if __name__ == "__main__":
    sys.exit(main())
