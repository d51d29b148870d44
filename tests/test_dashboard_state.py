"""The dashboard's state without a browser (strideclip.views.dashboard.state): simulated clips that
answer like clips run through the usual live path, and every refresh's tiles hold the values of
their clip's session at that moment; the tiles' HTML carries the same numbers; after the run the
session view sums up what a replay of each recorded log finds."""
import asyncio
import math
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

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


def test_the_server_keeps_each_athletes_last_five_minutes_for_a_page_opened_late(tmp_path):
    from strideclip.coaching.cueconfig import KEYS
    from strideclip.views.dashboard.markup import header_html
    from strideclip.views.dashboard.state import CHART_SPANS, CHARTS, HISTORY_S, RECORD_S, axis_span, target_band

    run = simulate(steady_run(6.5, seed=410))
    clips = open_clips([sim_source("athlete-1", run, 60.0, answers=True)], tmp_path, cue_settings={KEYS["target_spm"]: 172})
    dash = Dashboard(clips, out_dir=tmp_path)
    history = dash.history[0]
    page = {"cols": None, "seen": 0}  # a page opened at the first tick, streaming as page.py does
    every: list = []  # every point the server made, kept or not

    def tick(_clips) -> None:  # the server's record, inside the event loop: the session does not move meanwhile
        before = history.added
        dash.record()
        a = dash.athlete(0)
        t = [p[0] for p in history.points]
        if history.added > before:  # the newest point is the tile now, at the session time it shows
            assert history.points[-1] == (a["running_s"], *(a[k] for k in CHARTS), *target_band(172))
            every.append(history.points[-1])
        assert t == sorted(t) and (not t or t[-1] - t[0] <= HISTORY_S)
        if page["cols"] is None:
            page["cols"], page["seen"] = history.since(0)
        else:
            new, page["seen"] = history.since(page["seen"])
            for k in page["cols"]:
                page["cols"][k] = (page["cols"][k] + new[k])[-len(history.points):]

    def play() -> None:  # in a thread of its own: a browser test on this worker holds the main thread's loop
        asyncio.run(run_clips(clips, on_update=tick, update_s=RECORD_S))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(play).result()

    end_s = clips[0].session.duration_s
    assert end_s > HISTORY_S + 60 and len(every) > 10 and history.added == len(every)
    # bounded: only the last 5 minutes of session time, however long the run
    assert list(history.points) == [p for p in every if p[0] >= every[-1][0] - HISTORY_S]  # ... and all of them
    assert history.added > len(history.points)
    assert len(history.points) <= HISTORY_S / history.step_s + 1
    # what a page opened now gets: every kept point, in minutes, NaN where nothing was known
    cols, added = history.since(0)
    assert added == history.added and set(cols) == {"t_min", *CHARTS, "band_lo_spm", "band_hi_spm"}
    assert cols["t_min"] == [p[0] / 60 for p in history.points]
    for k, key in enumerate(CHARTS, start=1):
        assert all((v == p[k]) or (p[k] is None and math.isnan(v)) for v, p in zip(cols[key], history.points))
        assert sum(np.isfinite(cols[key])) > 0.8 * len(cols[key]), key
    assert history.since(added)[0]["t_min"] == [] and history.since(added - 2)[0]["t_min"] == cols["t_min"][-2:]
    # the page opened at the start, streaming and rolling over as page.py does, holds what the server holds
    assert page["cols"]["t_min"] == cols["t_min"]
    # y axes: all the data (and the target band), never narrower than the chart's minimum span
    for key in CHARTS:
        lo, hi = axis_span(key, dash.history)
        shown = [v for v in cols[key] if np.isfinite(v)] + (cols["band_lo_spm"] + cols["band_hi_spm"]
                                                           if key == "cadence_spm" else [])
        assert lo <= min(shown) and max(shown) <= hi and hi - lo >= 2 * CHART_SPANS[key][0] - 1e-9, (key, lo, hi)
    # a simulated clip has no radio: its RSSI says so, its latency is measured (sample -> host), not 0
    a = dash.athlete(0)
    assert a["rssi_dbm"] is None and a["rssi_note"] == "simulated"
    assert dash.sim_delays_ms[0] and 0 < a["latency_ms"] < 10_000
    tile = tiles_html(dash)
    assert 'data-key="rssi_dbm" data-value="" title="no radio signal to measure">simulated<' in tile
    assert f'data-key="latency_ms" data-value="{a["latency_ms"]}"' in tile and "dBm" not in tile
    # one clock on the page: the header shows the session time the tile shows
    clock = re.search(r'class="clock" data-session-s="([^"]+)">([^<]+)<', header_html([a], dash.ended))
    assert float(clock.group(1)) == a["running_s"]
    assert f'<td class="time">{clock.group(2)}</td>' in tile


def test_a_chart_never_spans_less_than_its_minimum_around_steady_data():
    from strideclip.views.dashboard.state import CHART_SPANS, ChartHistory, axis_span

    h = ChartHistory(span_s=60.0, step_s=1.0)
    for t in range(1, 200):  # a cadence steady within ±1 spm: a flat line, not a trend
        assert h.add({"running_s": float(t), "cadence_spm": 170 + (t % 3 - 1), "impact_g": 2.5, "rotation_deg": 11.0,
                      "target_spm": None})
        assert not h.add({"running_s": t + 0.5, "cadence_spm": 0.0, "impact_g": 0.0, "rotation_deg": 0.0,
                          "target_spm": None})  # less than a step later: not kept
    assert len(h.points) == 61 and h.points[0][0] == 199 - 60
    assert axis_span("cadence_spm", [h]) == (160.0, 180.0)
    assert axis_span("impact_g", [h]) == (2.5 - CHART_SPANS["impact_g"][0], 2.5 + CHART_SPANS["impact_g"][0])
    lo, hi = axis_span("rotation_deg", [h])
    assert hi - lo == pytest.approx(2 * CHART_SPANS["rotation_deg"][0]) and lo < 11.0 < hi
    h.add({"running_s": 300.0, "cadence_spm": 171.0, "impact_g": 2.5, "rotation_deg": 11.0, "target_spm": 180.0})
    lo, hi = axis_span("cadence_spm", [h])  # the target band is on the chart too
    assert lo <= 169.0 and hi >= 180 * 1.03
    assert axis_span("cadence_spm", [ChartHistory()]) == (160.0, 180.0)  # no data yet: a running cadence's span
