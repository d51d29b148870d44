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

from strideclip.session.pipeline import Session
from strideclip.session.recorder import record_packet
from strideclip.sim import demo_run, simulate, truth_path
from strideclip.stream.packets import encode_packet
from strideclip.stream.sclog import SessionLogWriter

DEMO_MINUTES = 30.0
DEMO_SPEED = 60.0  # times real time: 30 simulated minutes in 30 s
VIEW_HZ = 8


def run_demo(out_dir: str | None = None, *, minutes: float = DEMO_MINUTES, speed: float = DEMO_SPEED,
             live: bool | None = None) -> Path:
    scenario = demo_run(minutes=minutes)
    run = simulate(scenario)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(out_dir or f"strideclip-demo-{stamp}")
    folder.mkdir(parents=True, exist_ok=False)
    log_path = folder / "session.sclog"
    truth_path(log_path).write_text(json.dumps(run.truth()))
    session = Session()
    view = LiveView(run, session, live=sys.stdout.isatty() if live is None else live)
    header = {"athlete": "demo runner", "source": "simulator", "scenario": scenario.name, "seed": scenario.seed,
              "rate_hz": run.rate_hz, "truth": truth_path(log_path).name}
    started = time.monotonic()
    with SessionLogWriter(log_path, header=header) as log, view:
        hello = encode_packet(run.hello)
        log.clip_packet(hello, t_ms=0)
        session.feed(hello, 0)
        for t_ms, pkt in run.link.packets:
            wait_s = started + t_ms / 1000 / speed - time.monotonic()
            if wait_s > 0:
                time.sleep(wait_s)
            record_packet(log, session, pkt, t_ms)
            view.update(t_ms)
        view.update(run.link.packets[-1][0], final=True)
    summary = {"folder": str(folder), "log": log_path.name, **session.summary(),
               "truth_steps": int(len(run.steps)), "fatigue_onset_s": scenario.fatigue.onset_s,
               "wall_s": round(time.monotonic() - started, 1)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    from strideclip.report import write_report

    write_report(log_path, folder / "report.html", history_db=False)  # read back from the log, as after any run
    _print_summary(summary, folder)
    return folder


def _print_summary(s: dict, folder: Path) -> None:
    click.echo(f"\nStrideClip demo: {s['duration_s'] / 60:.1f} min simulated, streamed in {s['wall_s']:.0f} s")
    click.echo(f"  steps {s['steps']} (simulator's truth: {s['truth_steps']}), "
               f"cadence median {s.get('cadence_spm_median', 0):.0f} steps/min, "
               f"peak vertical {s.get('peak_vertical_g_median', 0):.2f} g, "
               f"peak vGRF {s.get('peak_vgrf_bw_median', 0):.2f} BW, "
               f"pelvic rotation median {s.get('pelvic_rotation_deg_median', 0):.1f} deg")
    click.echo(f"  link: {s['lost_packets']} packets lost ({s['loss_pct']:.2f} %), {len(s['gaps'])} gap(s) reported, "
               f"detector resynchronised {s['detector_resyncs']} time(s)")
    fat = s.get("fatigue_onset_s")
    click.echo(f"  cues: {len(s['cues'])}" + (f" (fatigue set in at {fat / 60:.1f} min)" if fat else ""))
    events = [(c["t_s"], f"metronome at {c['tempo_spm']} steps/min for {c['duration_s']} s ({c['reason']})")
              for c in s["cues"]]
    events += [(f["t_s"], f"fatigue state: {f['state']} (index {f['index']})") for f in s["fatigue"][1:]]  # after the warm-up
    for t_s, what in sorted(events, key=lambda e: e[0]):
        click.echo(f"    {t_s / 60:5.1f} min  {what}")
    click.echo(f"  wrote {folder}/: session.sclog, session.truth.json, summary.json, report.html (open it in a browser)")
    click.echo(f"  replay it: strideclip replay {folder}/session.sclog")
    click.echo("  the coach's view: strideclip dashboard --simulate 3 (then open http://127.0.0.1:8050/)")


class LiveView:
    """Progress, cadence, impact, rotation, link and cues, refreshed a few times a second.
    On a terminal it redraws in place (rich); otherwise it prints a line per simulated minute."""

    def __init__(self, run, session: Session, *, live: bool):
        self.run, self.session, self.live = run, session, live
        self.total_ms = run.link.packets[-1][0] if run.link.packets else 1
        self.segments = run.segments()
        self._next_wall = 0.0
        self._next_minute = 1
        self._rich = None

    def __enter__(self) -> LiveView:
        if self.live:
            from rich.live import Live

            self._rich = Live(self._render(0), refresh_per_second=VIEW_HZ, transient=False)
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._rich:
            self._rich.__exit__(*exc)

    def _values(self, t_ms: int) -> dict:
        v = self.session.live_values()
        seg = next((g["label"] for g in self.segments if g["start_s"] <= t_ms / 1000 < g["end_s"]), "")
        return {"t_min": t_ms / 60000, "segment": seg, "steps": v["steps"], "cadence": v["cadence_spm"],
                "impact": v["impact_g"], "vgrf": v["vgrf_bw"], "rotation": v["rotation_deg"], "drop": v["drop_deg"],
                "contact": v["contact_ms"], "loss": v["loss_pct"], "gaps": v["gaps"], "cues": v["cues"],
                "fatigue": v["fatigue"] + (f" ({v['fatigue_index']:.2f})" if v["fatigue_index"] is not None else "")}

    def _render(self, t_ms: int):
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        v = self._values(t_ms)
        table = Table.grid(padding=(0, 2))
        table.add_row("time", f"{v['t_min']:5.1f} / {self.total_ms / 60000:.0f} min", "route", v["segment"])
        table.add_row("cadence", _fmt(v["cadence"], "{:.0f} steps/min"), "steps", str(v["steps"]))
        table.add_row("impact", f"{_fmt(v['impact'], '{:.2f} g')}, vGRF {_fmt(v['vgrf'], '{:.2f} BW')}",
                      "pelvic rotation / drop", f"{_fmt(v['rotation'], '{:.1f}')} / {_fmt(v['drop'], '{:.1f} deg')}")
        table.add_row("contact", _fmt(v["contact"], "{:.0f} ms"), "fatigue", v["fatigue"])
        table.add_row("link", f"{v['loss']:.2f} % lost, {v['gaps']} gap(s)", "cues",
                      ", ".join(f"{c['t_s'] / 60:.1f} min {c['played']} ({c['reason']})" for c in v["cues"]) or "none")
        table.add_row(ProgressBar(total=self.total_ms, completed=t_ms, width=40), "")
        return Panel(table, title="StrideClip demo: simulated clip, live pipeline")

    def update(self, t_ms: int, *, final: bool = False) -> None:
        if self._rich:
            now = time.monotonic()
            if final or now >= self._next_wall:
                self._rich.update(self._render(t_ms))
                self._next_wall = now + 1 / VIEW_HZ
        elif final or t_ms >= self._next_minute * 60000:
            v = self._values(t_ms)
            click.echo(f"{v['t_min']:5.1f} min  {v['segment']:<16} cadence {_fmt(v['cadence'], '{:.0f}'):>4} spm  "
                       f"impact {_fmt(v['impact'], '{:.2f}'):>5} g  rotation {_fmt(v['rotation'], '{:.1f}'):>5} deg  "
                       f"steps {v['steps']}  fatigue {v['fatigue']}  lost {v['loss']:.2f} %")
            self._next_minute = int(t_ms // 60000) + 1


def _fmt(x, pattern: str) -> str:
    return "-" if x is None else pattern.format(x)
