"""strideclip report: one self-contained HTML file, checked in headless chromium with no network."""
import json
import subprocess

import numpy as np
import pytest

from mpy import find_tool
from strideclip.sim import simulate, steady_run, write_log


@pytest.fixture(scope="module")
def fatigue_log(tmp_path_factory):
    """14 minutes at 104 Hz with form breaking down from minute 5: a fatigue onset and cues."""
    log = tmp_path_factory.mktemp("report") / "fatigue.sclog"
    write_log(simulate(steady_run(14, seed=4, fatigue_onset_min=5, rate_hz=104)), log, athlete="Bo",
              started_at="2026-11-20T07:30:00.000+00:00")
    return log


def _cli(*args):
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_report_opens_offline_and_its_figures_hold_the_sessions_numbers(fatigue_log, tmp_path, browser):
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    _cli("report", fatigue_log, "-o", html, "--png", png, "--distance-km", 3.1, "--no-history")
    summary = json.loads(_cli("replay", fatigue_log, "--json"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert summary["cues"] and any(c["state"] == "fatigued" for c in summary["fatigue"]), "the scenario must cue"

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    outside = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else (outside.append(route.request.url), route.abort()))
    page.goto(html.as_uri())
    page.wait_for_function("window.Bokeh && Bokeh.documents.length > 0 && document.querySelectorAll('.bk-Column, .bk-Row').length >= 2")
    page.wait_for_timeout(500)
    page.screenshot(path=tmp_path / "report_screenshot.png", full_page=True)
    assert outside == [], "the report must need no network"

    def source(name):
        return page.evaluate(f"(() => {{ const m = Bokeh.documents[0].get_model_by_name({name!r});"
                             " return m ? Object.fromEntries(Object.entries(m.data).map(([k, v]) => [k, Array.from(v)])) : null; })()")

    # the plotted steps are the session's running steps, and their medians are the summary's
    for col, nd in (("cadence_spm", 1), ("peak_vertical_g", 3), ("pelvic_rotation_deg", 1), ("pelvic_drop_deg", 1),
                    ("pelvic_tilt_deg", 1), ("peak_vgrf_bw", 2)):
        data = source(f"series_{col}")
        assert data and len(data["value"]) > 0.9 * summary["running_steps"], col
        assert np.median(data["value"]) == pytest.approx(summary[f"{col}_median"], abs=0.51 * 10 ** -nd), col
        assert 0 <= min(data["t_min"]) and max(data["t_min"]) <= summary["duration_s"] / 60
    # cues are marked where they happened, and the fatigue onset is a line at its time
    onset_s = next(c["t_s"] for c in summary["fatigue"] if c["state"] == "fatigued")
    for panel in ("cadence", "impact", "pelvis"):
        cues = source(f"cues_{panel}")
        assert cues["t_min"] == pytest.approx([c["t_s"] / 60 for c in summary["cues"]], abs=1e-6)
        span = page.evaluate(f"Bokeh.documents[0].get_model_by_name('fatigue_onset_{panel}').location")
        assert span == pytest.approx(onset_s / 60, abs=1e-6)
    # the headline numbers on the page are the summary's
    for key in ("cadence_spm", "peak_vertical_g", "pelvic_rotation_deg", "pelvic_drop_deg", "pelvic_tilt_deg"):
        shown = page.get_attribute(f'.kpi[data-metric="{key}"]', "data-value")
        assert float(shown) == summary[f"{key}_median"], key
        assert page.inner_text(f'.kpi[data-metric="{key}"] b') == f"{summary[f'{key}_median']:.{2 if key == 'peak_vertical_g' else 1}f}"
    # splits: every running step in exactly one 5-minute split; the km splits add up to the distance
    rows = page.locator("#splits-5min tr").count() - 1
    assert rows == int(np.ceil(summary["duration_s"] / 300)) or rows == int(summary["duration_s"] // 300)
    steps_in_splits = sum(int(page.inner_text(f"#splits-5min tr:nth-child({i + 2}) td:nth-child(2)")) for i in range(rows))
    assert steps_in_splits == summary["running_steps"]
    km = [float(page.inner_text(f"#splits-km tr:nth-child({i + 2}) td:nth-child(2)"))
          for i in range(page.locator("#splits-km tr").count() - 1)]
    assert km == [1.0, 1.0, 1.0, 0.1]
    # what the cues achieved: one row per cue, with its outcome
    assert page.locator("#cues-table tr").count() - 1 == len(summary["cues"])
    page.close()


def test_report_never_overwrites_and_names_a_bad_log(tmp_path, fatigue_log):
    out = tmp_path / "r.html"
    out.write_text("keep me")
    done = subprocess.run([find_tool("strideclip"), "report", fatigue_log, "-o", out], capture_output=True, text=True)
    assert done.returncode == 2 and "exists" in done.stderr and out.read_text() == "keep me"
    bad = tmp_path / "bad.sclog"
    bad.write_bytes(b"not a log at all")
    done = subprocess.run([find_tool("strideclip"), "report", bad, "-o", tmp_path / "b.html"], capture_output=True,
                          text=True)
    assert done.returncode == 1 and "bad.sclog" in done.stderr and "not a StrideClip session log" in done.stderr
    assert not (tmp_path / "b.html").exists()
