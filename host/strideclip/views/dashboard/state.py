"""The dashboard's state: what every page shows, for a set of live clips, as plain values (None
where nothing is known yet): a tile per athlete, the metronome each clip plays, the charts' last
5 minutes per athlete (kept here, on the server, so a page opened late or reloaded has them) and
the session view. No browser is needed to read it (tests/test_dashboard_state.py)."""
from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path


from strideclip.analysis.fatigue import fatigue_marks
from strideclip.coaching import cueconfig
from strideclip.coaching.cue import Cue
from strideclip.session.live import LiveClip

TARGET_BAND_PCT = 3.0  # the cadence zone around the target (the cue outcome's zone, docs/cues.md)
UNTIL_STOPPED_S = 24 * 3600.0  # a metronome without an end plays in the page until its stop comes
HISTORY_S = 300.0  # the charts: the last 5 minutes of session time, kept by the server for every page
HISTORY_STEP_S = 1.0  # at most a chart point per second of session time (301 per athlete)
RECORD_S = 0.25  # the server records a chart point per athlete this often (wall time)
CHARTS = ("cadence_spm", "impact_g", "rotation_deg")  # what the charts plot, as the tiles name it
# (the narrowest half span of a chart's y axis, a middle to show before any data): noise in a
# stride should not look like a trend (docs/dashboard.md)
CHART_SPANS = {"cadence_spm": (10.0, 170.0), "impact_g": (0.5, 2.5), "rotation_deg": (4.0, 10.0)}
NO_RSSI = {"simulator": "simulated", "usb-serial": "USB cable", "log": "playback"}  # links with no radio to measure


class Dashboard:
    """The state every page shows, and the cue a page asks for, for a set of live clips."""

    def __init__(self, clips: list[LiveClip], *, out_dir: Path):
        self.clips = clips
        self.out_dir = Path(out_dir)
        self.started_s = time.monotonic()
        self.ended = False  # every link has ended: the page shows the session view first
        self.history = [ChartHistory() for _ in clips]  # per athlete, what a page opened now shows at once
        self.sim_delays_ms = [deque(maxlen=40) for _ in clips]  # a simulated clip's sample -> host delays

    def record(self) -> None:
        """Each athlete's chart point (its tile's values at its session time) and a simulated
        clip's sample -> host delay: the server's run loop calls it every RECORD_S, whether a
        page is open or not."""
        for i, c in enumerate(self.clips):
            behind_s = getattr(c.transport, "behind_s", None)  # a simulated clip's own timeline
            if behind_s is not None and c.link.connected and (d := behind_s(c.session.clock_idx)) is not None:
                self.sim_delays_ms[i].append(d * 1000)
            self.history[i].add(self.athlete(i))

    def _latency_ms(self, i: int, v: dict) -> float | None:
        """The command round trip (else how late the packets come); a simulated clip answers at
        once (0 ms, which says nothing): its sample -> host delay instead, p95 of the last records."""
        if self.clips[i].source.kind == "simulator":
            d = sorted(self.sim_delays_ms[i])
            return round(d[min(len(d) - 1, int(0.95 * len(d)))], 1) if d else None
        return _first(v["rtt_ms"], v["delay_ms_p95"] if (v["delay_ms_p95"] or 0) >= 0 else None)

    def athlete(self, i: int) -> dict:
        """One athlete's tile, as plain values (None where nothing is known yet)."""
        c = self.clips[i]
        v = c.values()
        s = c.session
        target = self._target_spm(c)
        return {
            "name": c.name, "clip": c.source.address if c.source.kind != "simulator" else "simulated clip",
            "cadence_spm": v["cadence_spm"], "target_spm": target,
            "in_band": (None if v["cadence_spm"] is None or target is None
                        else abs(v["cadence_spm"] / target - 1) * 100 <= TARGET_BAND_PCT),
            "impact_g": v["impact_g"], "vgrf_bw": v["vgrf_bw"], "rotation_deg": v["rotation_deg"],
            "drop_deg": v["drop_deg"], "tilt_deg": v["tilt_deg"],
            "fatigue": v["fatigue"], "fatigue_index": v["fatigue_index"], "running_s": round(s.duration_s, 1),
            "steps": v["steps"], "connected": v["connected"], "loss_pct": round(s.loss_pct, 2),
            "latency_ms": self._latency_ms(i, v), "battery_pct": v["battery_pct"],
            "rssi_dbm": v["rssi_dbm"], "error": v["error"], "takes_cues": c.takes_commands,
            "gateway": v.get("gateway"),  # the gateway holding the clip, over a broker (docs/team.md)
            "link_kind": c.source.kind, "rssi_note": None if v["rssi_dbm"] is not None else NO_RSSI.get(c.source.kind),
            "cues": [_cue_line(q) for q in s.cues[-8:]], "last_packet_wall_s": c.last_packet_wall_s,
            "newest_idx": s.decoder.next_idx,  # one past the newest live sample (sample -> screen, bench_team)
            "metronome": s.metronome_now(),
        }

    def _target_spm(self, c: LiveClip) -> float | None:
        """The cue settings' metronome target, else the runner's usual cadence."""
        target = cueconfig.target_spm(c.cue_settings)
        if target:
            return float(target)
        base = c.session.baseline_cadence_spm
        return round(base, 1) if base is not None else None

    def state(self) -> dict:
        return {"athletes": [self.athlete(i) for i in range(len(self.clips))], "ended": self.ended,
                "session": self.session_view()}

    def session_view(self) -> list[dict]:
        """Per athlete: the session summary so far (the whole session once it ended), its log and
        its report if one was written."""
        out = []
        for c in self.clips:
            s = c.session
            m = s.metric_summary()
            report = self.out_dir / (c.log_path.stem + ".html")
            out.append({"name": c.name, "log": str(c.log_path), "duration_s": round(s.duration_s, 1),
                        "steps": s.step_count, "running_steps": m.get("running_steps", 0),
                        "cadence_spm": m.get("cadence_spm_median"), "impact_g": m.get("peak_vertical_g_median"),
                        "rotation_deg": m.get("pelvic_rotation_deg_median"), "drop_deg": m.get("pelvic_drop_deg_median"),
                        "tilt_deg": m.get("pelvic_tilt_deg_median"), "cues": len(s.cues),
                        **fatigue_marks(s.fatigue_changes),
                        "report": report.name if report.exists() else None})
        return out

    async def cue(self, i: int, kind: str) -> dict:
        return (await self.clips[i].coach_cue(kind)).as_dict()

    def files(self) -> dict[str, Path]:
        """What /files/ serves: the session's logs and the reports written for them, nothing else."""
        out = {}
        for c in self.clips:
            for path in (c.log_path, self.out_dir / (c.log_path.stem + ".html")):
                if path.is_file():
                    out[path.name] = path
        return out


def _first(*values):
    return next((v for v in values if v is not None), None)


def _cue_line(q: Cue) -> str:
    t = q.t_s
    when = f"{int(t // 60)}:{int(t % 60):02d}" if t is not None else "-"
    tempo = f" {q.tempo_spm} spm" if q.tempo_spm else ""
    return f"{when} {q.played}{tempo} ({q.reason}, {q.source}{'' if q.sent else ', not sent'})"


def beat_data(dash: Dashboard) -> dict:
    """Every athlete's metronome now, for the page's click (0 where none plays)."""
    out = {"athlete": [], "tempo_spm": [], "remaining_s": [], "cue_t_s": []}
    for c in dash.clips:
        m = c.session.metronome_now() or {"tempo_spm": 0, "remaining_s": 0.0, "cue_t_s": -1.0}
        out["athlete"].append(c.name)
        out["tempo_spm"].append(m["tempo_spm"])
        out["remaining_s"].append(UNTIL_STOPPED_S if m["remaining_s"] is None else m["remaining_s"])
        out["cue_t_s"].append(m["cue_t_s"])
    return out


def target_band(target_spm: float | None) -> tuple[float | None, float | None]:
    """The cadence zone around a target: ±TARGET_BAND_PCT."""
    if not target_spm:
        return None, None
    return target_spm * (1 - TARGET_BAND_PCT / 100), target_spm * (1 + TARGET_BAND_PCT / 100)


class ChartHistory:
    """One athlete's chart points over the last ``span_s`` of session time, on the server: a page
    opened late, or reloaded, starts with them and then streams what comes after. A point is the
    tile's values (cadence, impact, rotation) and its target band
    at the session time the tile shows; at most one per ``step_s``, so at most span_s / step_s + 1."""

    COLUMNS = ("t_min", *CHARTS, "band_lo_spm", "band_hi_spm")

    def __init__(self, span_s: float = HISTORY_S, step_s: float = HISTORY_STEP_S):
        self.span_s, self.step_s = span_s, step_s
        self.points: deque = deque(maxlen=int(span_s / step_s) + 1)  # (t_s, *CHARTS, band lo, band hi)
        self.added = 0  # points ever added: a page asks for those after the ones it has

    def add(self, a: dict) -> bool:
        """A tile's values (Dashboard.athlete) as a point, unless its session time has not moved on
        by ``step_s`` (or has no samples yet)."""
        t_s = a["running_s"]
        if t_s <= 0 or (self.points and t_s < self.points[-1][0] + self.step_s):
            return False
        self.points.append((t_s, *(a[k] for k in CHARTS), *target_band(a["target_spm"])))
        self.added += 1
        while t_s - self.points[0][0] > self.span_s:
            self.points.popleft()
        return True

    def since(self, seen: int) -> tuple[dict, int]:
        """The points added after the first ``seen`` (as many of them as are still kept), as the
        page's columns (minutes; NaN where nothing is known), and the count to ask from next."""
        new = min(self.added - seen, len(self.points))
        rows = list(self.points)[len(self.points) - new:]
        cols = {name: [_nan(p[k]) for p in rows] for k, name in enumerate(self.COLUMNS)}
        cols["t_min"] = [p[0] / 60 for p in rows]
        return cols, self.added


def axis_span(key: str, histories: list[ChartHistory]) -> tuple[float, float]:
    """A chart's y range: every athlete's kept points (and, for cadence, their target bands) with
    10 % to spare, never narrower than ±CHART_SPANS[key] around their middle, never below 0 for
    values that are not."""
    k = 1 + CHARTS.index(key)
    cols = (k, len(CHARTS) + 1, len(CHARTS) + 2) if key == "cadence_spm" else (k,)
    values = [p[j] for h in histories for p in h.points for j in cols if p[j] is not None and math.isfinite(p[j])]
    min_half, middle = CHART_SPANS[key]
    lo, hi = (min(values), max(values)) if values else (middle, middle)
    half = max((hi - lo) / 2 * 1.1, min_half)
    mid = (lo + hi) / 2
    start = 0.0 if lo >= 0 and mid - half < 0 else mid - half
    return round(start, 2), round(start + 2 * half, 2)


def _nan(v) -> float:
    return float("nan") if v is None else float(v)
