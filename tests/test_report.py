"""strideclip report: one self-contained HTML file, checked in headless chromium with no network."""
import json
import re
import subprocess

import numpy as np
import pytest

from mpy import find_tool
from strideclip.analysis.binned import binned_median
from strideclip.coaching.cue_outcomes import LOOK_S, cue_outcomes, outcome_text
from strideclip.session.replay import analyse
from strideclip.sim import simulate, steady_run, write_log
from strideclip.analysis.fatigue import fatigue_marks


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
        median = np.median(data["value"])
        if col == "cadence_spm":  # the summary's: of the step times, in whole samples (analysis/binned.py)
            step_s = np.round(60.0 * summary["rate_hz"] / np.array(data["value"])) / summary["rate_hz"]
            median = 60.0 / binned_median(step_s, 1.0 / summary["rate_hz"])
        assert median == pytest.approx(summary[f"{col}_median"], abs=0.51 * 10 ** -nd), col
        assert 0 <= min(data["t_min"]) and max(data["t_min"]) <= summary["duration_s"] / 60
    # cues are marked where they happened; the fatigue state's first sign (the watch spell that
    # became fatigue) and its entry into fatigued are two lines, each at its time and named
    changes = summary["fatigue"]
    k = next(i for i, c in enumerate(changes) if c["state"] == "fatigued")
    assert changes[k - 1]["state"] == "watch", "the scenario must go through watch to fatigued"
    marks = {"watch": changes[k - 1]["t_s"], "fatigued": changes[k]["t_s"]}
    assert marks["watch"] < marks["fatigued"]

    def model(name, attr):
        value = page.evaluate(f"Bokeh.documents[0].get_model_by_name({name!r}).{attr}")
        return value["value"] if isinstance(value, dict) else value  # a vectorised property: its one value

    for panel in ("cadence", "impact", "pelvis"):
        cues = source(f"cues_{panel}")
        assert cues["t_min"] == pytest.approx([c["t_s"] / 60 for c in summary["cues"]], abs=1e-6)
        for state, t_s in marks.items():
            assert model(f"fatigue_{state}_{panel}", "location") == pytest.approx(t_s / 60, abs=1e-6)
            assert state in model(f"fatigue_{state}_label_{panel}", "text")
    said = page.inner_text("#fatigue")
    assert (f"(watch) at {marks['watch'] / 60:.1f} min" in said and f"fatigued at {marks['fatigued'] / 60:.1f} min"
            in said), said
    # one colour per series and mark: the PNG draws each in the HTML's colour
    from matplotlib.colors import to_hex

    from strideclip.views.report import png_figure

    data = json.loads(page.evaluate("document.getElementById('report-data').textContent"))
    png_colours = {line.get_label(): to_hex(line.get_color()) for ax in png_figure(data).axes
                   for line in ax.get_lines() if not line.get_label().startswith("_")}
    for col, series in data["series"].items():
        html_colour = model(f"trend_{col}", "glyph.line_color")
        assert to_hex(html_colour) == png_colours[series["label"]], col
        assert to_hex(model(f"dots_{col}", "glyph.fill_color")) == to_hex(html_colour), col
    assert len({png_colours[s["label"]] for s in data["series"].values()}) == len(data["series"]), "a colour each"
    for state, label in (("watch", model("fatigue_watch_label_cadence", "text")),
                         ("fatigued", model("fatigue_fatigued_label_cadence", "text"))):
        assert to_hex(model(f"fatigue_{state}_cadence", "line_color")) == png_colours[label], state
    assert to_hex(model("cue_marks_cadence", "glyph.fill_color")) == png_colours["cues"]
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
    # what the cues achieved: one row per cue, its outcome in the words `replay` uses
    assert page.locator("#cues-table tr").count() - 1 == len(summary["cues"])
    replay_words = re.findall(r"^  cue at .*?; (.*), \S+ % of steps in the zone$", _cli("replay", fatigue_log), re.M)
    assert len(replay_words) == len(summary["cues"])
    col = 1 + page.locator("#cues-table tr:first-child th").all_inner_texts().index("recovery")
    report_words = [page.inner_text(f"#cues-table tr:nth-child({i + 2}) td:nth-child({col})")
                    for i in range(len(summary["cues"]))]
    assert report_words == replay_words
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


def test_the_fatigue_marks_are_the_watch_that_became_fatigue_and_the_fatigue():
    def changes(*pairs):
        return [{"t_s": t, "state": state} for t, state in pairs]

    # a watch that came to nothing (a hill) is not the first sign of the fatigue that came later
    assert fatigue_marks(changes((60, "fresh"), (300, "watch"), (360, "fresh"), (700, "watch"), (800, "fatigued"),
                                 (900, "fresh"), (950, "watch"))) == {"watch_s": 700, "fatigued_s": 800}
    assert fatigue_marks(changes((60, "fresh"), (300, "watch"), (360, "fresh"), (500, "watch"))) == {
        "watch_s": 300, "fatigued_s": None}  # never fatigued: the first sign is still shown
    assert fatigue_marks(changes((60, "fresh"))) == {"watch_s": None, "fatigued_s": None}


def test_a_cue_outcome_says_how_much_of_the_five_minutes_the_log_holds(fatigue_log):
    summary, table = analyse(fatigue_log)
    last_running_s = table[table["running"] == 1]["ic_idx"][-1] / summary["rate_hz"]
    never = {"reason": "cadence_drop", "played": "metronome_start", "tempo_spm": 240, "duration_s": 30}  # not reached
    early, late = {**never, "t_s": 100.0}, {**never, "t_s": last_running_s - 57}
    words = [outcome_text(o) for o in cue_outcomes(table, [early, late], summary["rate_hz"])]
    assert words == [f"no recovery within {LOOK_S / 60:.0f} min", "no recovery in the 57 s the log still has"]
