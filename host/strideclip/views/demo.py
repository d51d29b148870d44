"""``strideclip demo``: the product's main job on an embedded default.

A simulated 30-minute run (warm-up walk, a turn, a hill, a traffic light, fatigue from ~60 %)
streams through the whole host pipeline at accelerated pace, exactly as a live clip would:
packets -> decoder -> step detector (the clip's own code) -> metrics, recorded to a session log
as they arrive, with a live terminal view. The log, the simulator's ground truth, a summary and
the session's HTML report land in a folder named at the end.
"""
from __future__ import annotations

import datetime as _dt
import json
import sys
import time
from pathlib import Path

import click

from strideclip.errors import needs_extra
from strideclip.session.pipeline import Session
from strideclip.session.recorder import finish_recording, record_packet
from strideclip.sim import demo_run, simulate, truth_path
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.views.terminal import TerminalView

DEMO_MINUTES = 30.0
DEMO_SPEED = 60.0  # times real time: 30 simulated minutes in 30 s


def run_demo(out_dir: str | None = None, *, minutes: float = DEMO_MINUTES, speed: float = DEMO_SPEED,
             live: bool | None = None) -> Path:
    needs_extra("bokeh", "reports")  # the demo ends in its report: said before the run, not after
    scenario = demo_run(minutes=minutes)
    run = simulate(scenario)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(out_dir or f"strideclip-demo-{stamp}")
    folder.mkdir(parents=True, exist_ok=False)
    log_path = folder / "session.sclog"
    truth_path(log_path).write_text(json.dumps(run.truth()))
    session = Session(gap_wait_s=0)  # the demo's link asks for no backfill: nothing fills a gap
    view = _DemoView(run, session, live=sys.stdout.isatty() if live is None else live)
    header = {"athlete": "demo runner", "source": "simulator", "scenario": scenario.name, "seed": scenario.seed,
              "rate_hz": run.rate_hz, "truth": truth_path(log_path).name}
    started = time.monotonic()
    with SessionLogWriter(log_path, header=header) as log, view:
        for t_ms, pkt in run.stream():
            wait_s = started + t_ms / 1000 / speed - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)
            record_packet(log, session, pkt, t_ms)
            view.update(t_ms)
        finish_recording(log, session, t_ms)
        view.update(t_ms, final=True)
    summary = {"folder": str(folder), "log": log_path.name, **session.summary(),
               "truth_steps": int(len(run.steps)), "truth_fatigue_onset_s": scenario.fatigue.onset_s,
               "wall_s": round(time.monotonic() - started, 1)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    from strideclip.views.report import write_report

    write_report(log_path, folder / "report.html", history_db=False)  # read back from the log, as after any run
    _print_summary(summary, folder)
    return folder


class _DemoView:
    """The terminal view (views.terminal) of the simulated clip, with the run's time, route,
    further metrics and cues above its row; off a terminal, once per simulated minute."""

    def __init__(self, run, session: Session, *, live: bool):
        self.session = session
        self.total_ms = run.link.packets[-1][0] if run.link.packets else 1
        self.segments = run.segments()
        self.view = TerminalView(title="StrideClip demo: a simulated clip through the live pipeline", live=live)
        self._next_minute = 1

    def __enter__(self) -> _DemoView:
        self.view.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.view.__exit__(*exc)

    def update(self, t_ms: int, *, final: bool = False) -> None:
        if not (final or self.view.live or t_ms >= self._next_minute * 60000):
            return
        self._next_minute = int(t_ms // 60000) + 1
        v = self.session.live_values()
        v.update(name="demo clip", connected=True)
        seg = next((g["label"] for g in self.segments if g["start_s"] <= t_ms / 1000 < g["end_s"]), "")
        cues = ", ".join(f"{c['t_s'] / 60:.1f} min {c['played']} ({c['reason']}, {c['source']})" for c in v["cues"])
        heading = [f"{t_ms / 60000:5.1f} / {self.total_ms / 60000:.0f} min  route: {seg}  steps {v['steps']}",
                   f"contact {_fmt(v['contact_ms'], '{:.0f} ms')}, vGRF {_fmt(v['vgrf_bw'], '{:.2f} BW')}, "
                   f"pelvic drop {_fmt(v['drop_deg'], '{:.1f} deg')}; cues decided: {cues or 'none'}"]
        self.view.update([v], heading=heading, progress=(t_ms, self.total_ms), print_now=True, final=final)


def _fmt(x, pattern: str) -> str:
    return "-" if x is None else pattern.format(x)


def _print_summary(s: dict, folder: Path) -> None:
    click.echo(f"\nStrideClip demo: {s['duration_s'] / 60:.1f} min simulated, streamed in {s['wall_s']:.0f} s")
    click.echo(f"  steps {s['steps']} (simulator's truth: {s['truth_steps']}), "
               f"cadence median {s.get('cadence_spm_median', 0):.0f} steps/min, "
               f"peak vertical {s.get('peak_vertical_g_median', 0):.2f} g, "
               f"peak vGRF {s.get('peak_vgrf_bw_median', 0):.2f} BW, "
               f"pelvic rotation median {s.get('pelvic_rotation_deg_median', 0):.1f} deg")
    click.echo(f"  link: {s['lost_packets']} packets lost ({s['loss_pct']:.2f} %), {len(s['gaps'])} gap(s) reported, "
               f"detector resynchronised {s['detector_resyncs']} time(s)")
    sent = sum(1 for c in s["cues"] if c["sent"])
    click.echo(f"  cues decided: {len(s['cues'])} (played on a clip: {sent}; a simulated clip plays none)")
    for c in s["cues"]:
        click.echo(f"    {c['t_s'] / 60:5.1f} min  metronome at {c['tempo_spm']} steps/min for {c['duration_s']} s "
                   f"({c['reason']}, decided by the {c['source']})")
    click.echo("  fatigue state (strideclip.analysis.fatigue) after the warm-up:" + ("" if s["fatigue"][1:] else " no change"))
    for f in s["fatigue"][1:]:
        click.echo(f"    {f['t_s'] / 60:5.1f} min  {f['state']} (index {f['index']})")
    if s.get("truth_fatigue_onset_s"):
        click.echo(f"  the simulator's truth: fatigue began at {s['truth_fatigue_onset_s'] / 60:.1f} min")
    click.echo(f"  wrote {folder}/: session.sclog, session.truth.json, summary.json, report.html (open it in a browser)")
    click.echo(f"  replay it: strideclip replay {folder}/session.sclog")
    click.echo("  the coach's view: strideclip dashboard --simulate 3 (then open http://127.0.0.1:8050/)")
