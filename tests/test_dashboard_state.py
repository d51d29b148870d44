"""The dashboard's state without a browser (strideclip.views.dashboard.state): simulated clips that
answer like clips run through the usual live path, and every refresh's tiles hold the values of
their clip's session at that moment; the tiles' HTML carries the same numbers; after the run the
session view sums up what a replay of each recorded log finds."""
import asyncio
import math
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from strideclip.link.sources import sim_source
from strideclip.session.live import open_clips, run_clips
from strideclip.session.replay import replay
from strideclip.sim import simulate, steady_run
from strideclip.views.dashboard.markup import tiles_html
from strideclip.views.dashboard.state import Dashboard, beat_data

SPEED = 40.0  # times real time: a 2.5-minute run in about 4 s


def _median_of_last_steps(session, column: str, n: int = 8):
    """What a tile shows, from the session's step table: the median over the last n steps."""
    v = session.step_table()[column][-n:]
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


def _check_tiles(dash: Dashboard, checked: list) -> None:
    """Called at each refresh, inside the event loop: no packet arrives while it runs."""
    for i, c in enumerate(dash.clips):
        a, s = dash.athlete(i), c.session
        assert a["name"] == c.name and a["clip"] == "simulated clip" and a["takes_cues"] is True
        assert a["steps"] == s.step_count
        assert a["running_s"] == round(s.duration_s, 1)
        assert a["loss_pct"] == round(s.decoder.stats.loss_pct, 2)
        cadence = s.step_table()["cadence_smoothed_spm"]  # the cadence now: the newest step's, smoothed once
        cadence = cadence[np.isfinite(cadence)][-1:]
        assert a["cadence_spm"] == (float(cadence[0]) if len(cadence) else None)
        for key, column in (("impact_g", "peak_vertical_g"),
                            ("vgrf_bw", "peak_vgrf_bw"), ("rotation_deg", "pelvic_rotation_deg"),
                            ("drop_deg", "pelvic_drop_deg"), ("tilt_deg", "pelvic_tilt_deg")):
            want = _median_of_last_steps(s, column)
            assert (a[key] is None) == (want is None) and (want is None or math.isclose(a[key], want)), (key, a[key], want)
        assert a["fatigue"] == s.fatigue.last.state and a["metronome"] == s.metronome_now()
        assert len(a["cues"]) == min(8, len(s.cues))
        if a["cadence_spm"] is not None and a["target_spm"] is not None:
            assert a["in_band"] == (abs(a["cadence_spm"] / a["target_spm"] - 1) * 100 <= 3.0)
        # the page's tile carries the same numbers (data-value, the numbers behind the text)
        tile = re.search(rf'<div class="tile" data-athlete="{re.escape(c.name)}".*?</div></div>', tiles_html(dash), re.S)
        shown = dict(re.findall(r'data-key="(\w+)" data-value="([^"]*)"', tile.group()))
        for key in ("cadence_spm", "impact_g", "rotation_deg", "loss_pct", "battery_pct"):
            assert shown[key] == ("" if a[key] is None else str(a[key])), (key, shown[key], a[key])
    beats = beat_data(dash)
    assert beats["athlete"] == [c.name for c in dash.clips]
    checked.append([(dash.athlete(i)["steps"], dash.athlete(i)["cadence_spm"]) for i in range(len(dash.clips))])


def test_the_tiles_and_the_session_view_are_the_sessions_values(tmp_path):
    runs = [simulate(steady_run(2.5, seed=400 + i)) for i in range(2)]
    clips = open_clips([sim_source(f"athlete-{i + 1}", run, SPEED, answers=True) for i, run in enumerate(runs)],
                       tmp_path)
    dash = Dashboard(clips, out_dir=tmp_path)
    checked: list = []

    def run() -> None:  # in a thread of its own: a browser test on this worker holds the main thread's loop
        asyncio.run(run_clips(clips, on_update=lambda _clips: _check_tiles(dash, checked), update_s=0.25))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()

    assert len(checked) >= 8, "too few refreshes to see the tiles follow the run"
    assert checked[-1][0][0] > checked[len(checked) // 2][0][0] > 0, "the tiles did not follow the run"
    for i in range(len(clips)):  # the running cadence was on the tiles, not only None
        assert any(seen[i][1] and 150 < seen[i][1] < 200 for seen in checked), [seen[i] for seen in checked]
    assert all(c.link.error is None for c in clips)
    dash.ended = True
    state = dash.state()
    assert state["ended"] and [a["name"] for a in state["athletes"]] == ["athlete-1", "athlete-2"]
    for row, c in zip(state["session"], clips):
        again = replay(c.log_path)  # what any reader of the recorded log finds
        assert row["log"] == str(c.log_path) and row["report"] is None
        assert row["steps"] == again["steps"] > 200 and row["running_steps"] == again["running_steps"]
        assert row["duration_s"] == round(again["duration_s"], 1)
        assert row["cadence_spm"] == again["cadence_spm_median"] and 150 < row["cadence_spm"] < 200
        assert row["impact_g"] == again["peak_vertical_g_median"]
        assert row["rotation_deg"] == again.get("pelvic_rotation_deg_median")
        assert row["cues"] == len(again["cues"])
    assert set(dash.files()) == {c.log_path.name for c in clips}  # /files/ serves the logs, nothing else
