"""The dashboard's state: what every page shows, for a set of live clips, as plain values (None
where nothing is known yet): a tile per athlete, the metronome each clip plays, and the session
view. No browser is needed to read it (tests/test_dashboard_state.py)."""
from __future__ import annotations

import time
from pathlib import Path

from strideclip.coaching import cueconfig
from strideclip.coaching.cue import Cue
from strideclip.session.live import LiveClip

TARGET_BAND_PCT = 3.0  # the cadence zone around the target (the cue outcome's zone, docs/cues.md)
UNTIL_STOPPED_S = 24 * 3600.0  # a metronome without an end plays in the page until its stop comes


class Dashboard:
    """The state every page shows, and the cue a page asks for, for a set of live clips."""

    def __init__(self, clips: list[LiveClip], *, out_dir: Path):
        self.clips = clips
        self.out_dir = Path(out_dir)
        self.started_s = time.monotonic()
        self.ended = False  # every link has ended: the page shows the session view first

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
            "latency_ms": _first(v["rtt_ms"], v["delay_ms_p95"] if (v["delay_ms_p95"] or 0) >= 0 else None), "battery_pct": v["battery_pct"],
            "rssi_dbm": v["rssi_dbm"], "error": v["error"], "takes_cues": c.takes_commands,
            "cues": [_cue_line(q) for q in s.cues[-8:]], "last_packet_wall_s": c.last_packet_wall_s,
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
                        "fatigue_onset_s": next((f["t_s"] for f in s.fatigue_changes if f["state"] == "fatigued"), None),
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
