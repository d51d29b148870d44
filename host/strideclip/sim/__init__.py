"""The simulated runner: raw clip counts with exact ground truth for every step.

    run = simulate(steady_run(10, seed=3))
    run.counts        # (n, 6) int16, as the clip would send them
    run.steps         # one record per step: contact sample, side, contact time, impact, angles
    write_log(run, "run.sclog")   # session log + run.truth.json beside it

Deterministic: the same scenario (which includes its seed) gives the same bytes.
Models, parameters and sources: docs/simulator.md.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from strideclip.sim import body as _body
from strideclip.sim import gait as _gait
from strideclip.sim import link as _link
from strideclip.sim import sensor as _sensor
from strideclip.sim.scenario import Fatigue, Link, Runner, Scenario, Segment, Sensor, demo_run, steady_run
from strideclip.stream.clip import with_hellos
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.outputs import OutputFile, as_output, writing

__all__ = ["simulate", "write_log", "SimulatedRun", "Scenario", "Segment", "Runner", "Sensor", "Link", "Fatigue",
           "steady_run", "demo_run", "truth_path"]


SIMULATED_START = "2026-01-01T07:00:00.000+00:00"


@dataclass
class SimulatedRun:
    scenario: Scenario
    counts: np.ndarray
    steps: np.ndarray  # gait.STEP_DTYPE
    body: _body.BodySignals
    hello: object
    link: _link.LinkOutput

    @property
    def rate_hz(self) -> int:
        return self.scenario.sensor.rate_hz

    def stream(self) -> list[tuple[int, bytes]]:
        """Every packet the host receives, (t_ms, packet) in order: the HELLO first and again once
        a minute (as the clip sends it with its battery report), and the samples the link let through."""
        return with_hellos(self.hello, self.link.packets)

    def fatigue_truth(self) -> dict | None:
        """When fatigue began and when it reached the coaching thresholds (docs/simulator.md)."""
        f = self.scenario.fatigue
        if f is None:
            return None
        out = {"onset_s": f.onset_s}
        if f.cadence_pct_per_min < 0:
            out["cadence_drop_5pct_s"] = f.onset_s + 60 * 5 / -f.cadence_pct_per_min
        if f.rotation_pct_per_min > 0:
            out["rotation_rise_30pct_s"] = f.onset_s + 60 * 30 / f.rotation_pct_per_min
        return out

    def segments(self) -> list[dict]:
        """The route with start and end times."""
        seg_starts = np.concatenate([[0.0], np.cumsum([s.duration_s for s in self.scenario.segments])])
        return [{"start_s": float(a), "end_s": float(b), **_jsonable(asdict(s))}
                for s, a, b in zip(self.scenario.segments, seg_starts, seg_starts[1:])]

    def truth(self) -> dict:
        """Everything the simulator knows, as JSON-able columns."""
        return {
            "format": "strideclip-truth",
            "version": 1,
            "scenario": _jsonable(asdict(self.scenario)),
            "rate_hz": self.rate_hz,
            "n_samples": len(self.counts),
            "segments": self.segments(),
            "fatigue": self.fatigue_truth(),
            "dropped": self.link.dropped,
            "steps": {name: np.round(self.steps[name], 6).tolist() for name in self.steps.dtype.names},
        }


# each stage's share of simulate()'s time (measured on a 2-hour run): what ``progress`` reports
_STAGE_WEIGHTS = {"steps": 23, "body": 59, "truth": 2, "counts": 12, "link": 4}


def simulate(scenario: Scenario, *, progress: Callable[[float, float], None] | None = None) -> SimulatedRun:
    """The run: its steps, body, raw counts and packets. ``progress(done, total)`` after each stage
    (in units of ``_STAGE_WEIGHTS``), for a progress bar; the same seed gives the same run."""
    total = sum(_STAGE_WEIGHTS.values())
    done = 0

    def finished(stage: str) -> None:
        nonlocal done
        done += _STAGE_WEIGHTS[stage]
        if progress:
            progress(done, total)

    rng = np.random.default_rng(scenario.seed)
    steps = _gait.plan_steps(scenario, rng)
    finished("steps")
    body = _body.simulate_body(scenario, steps, rng)
    finished("body")
    _fill_measured_truth(steps, body, scenario.sensor.rate_hz)
    finished("truth")
    counts = _sensor.to_counts(scenario.sensor, body.specific_force_g, body.angular_rate_dps, rng)
    finished("counts")
    hello = _sensor.hello(scenario.sensor, clip_id=0x51A00000 | (scenario.seed & 0xFFFF), session_id=1,
                          samples_per_packet=scenario.link.samples_per_packet)
    link = _link.transmit(counts, scenario.sensor.rate_hz, scenario.link, rng)
    finished("link")
    return SimulatedRun(scenario, counts, steps, body, hello, link)


def _fill_measured_truth(steps: np.ndarray, body: _body.BodySignals, rate_hz: int) -> None:
    """Truth measured on the noiseless signals: impact per step, angle ranges per stride."""
    n = len(body.t_s)
    ic = np.clip(steps["ic_idx"], 0, n - 1)
    for k in range(len(steps)):
        a = ic[k]
        stance_end = min(n, a + int(np.ceil(steps["contact_ms"][k] / 1000 * rate_hz)) + 1)
        steps["impact_g"][k] = body.vertical_accel_g[a:stance_end].max() if stance_end > a else 0.0
        step_end = min(n, a + int(round(steps["step_time_s"][k] * rate_hz)))
        stride_end = ic[k + 2] if k + 2 < len(steps) and steps["ic_t_s"][k + 2] - steps["ic_t_s"][k] < 2.5 * steps["step_time_s"][k] else min(n, a + 2 * (step_end - a))
        for name, angle, end in (("rotation_range_deg", body.rotation_deg, stride_end),
                                 ("drop_range_deg", body.drop_deg, stride_end),
                                 ("tilt_range_deg", body.tilt_deg, step_end)):
            seg = angle[a:end]
            steps[name][k] = float(seg.max() - seg.min()) if len(seg) else 0.0


def truth_path(log_path: str | Path) -> Path:
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(".sclog") + ".truth.json")


def write_log(run: SimulatedRun, path: str | Path | OutputFile, *, athlete: str | None = None,
              started_at: str | None = None, force: bool = False) -> Path:
    """Write the session log as a host would have recorded it, and the truth sidecar beside it:
    both checked first and renamed into place when whole (strideclip.stream.outputs); an
    existing file is replaced only with ``force``."""
    log = as_output(path, force=force)
    truth = log.beside(truth_path(log.path))
    header = {
        "athlete": athlete or run.scenario.runner.name,
        "source": "simulator",
        "started_at": started_at or SIMULATED_START,  # fixed, so the same scenario gives the same bytes
        "scenario": run.scenario.name,
        "seed": run.scenario.seed,
        "rate_hz": run.rate_hz,
        "truth": truth.path.name,
    }
    with writing(log, truth) as (log_part, truth_part):
        with SessionLogWriter(log_part, header=header) as w:
            for t_ms, pkt in run.stream():
                w.clip_packet(pkt, t_ms=t_ms)
        truth_part.write_text(json.dumps(run.truth()))
    return log.path


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x
