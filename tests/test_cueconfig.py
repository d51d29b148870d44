"""Cue settings from TOML: checked against the clip's own ranges, refused whole when bad, used
by replay and sent to live clips."""
import asyncio
import json
import subprocess

import pytest

from clipcore import cues as C
from clipcore import protocol as P
from mpy import find_tool
from strideclip.coaching import cueconfig
from strideclip.errors import ConfigError
from strideclip.sim import Fatigue, Scenario, Segment, simulate, write_log


def test_a_good_file_sets_exactly_what_it_names(tmp_path):
    f = tmp_path / "cues.toml"
    f.write_text("[cues]\nfloor_spm = 165\nsustain_s = 45\n")
    settings = cueconfig.load(f)
    assert settings == {1: 165, 5: 45}
    cfg = C.make_config(208)
    cueconfig.apply(cfg, settings)
    assert cfg[C.K_FLOOR_SPM] == 165 and cfg[C.K_SUSTAIN_S] == 45 and cfg[C.K_DROP_PCT] == C.DEFAULTS[C.K_DROP_PCT]


@pytest.mark.parametrize("text, message", [
    ("[cues]\nfloor_spm = 90\n", "floor_spm = 90 is outside 100..220"),
    ("[cues]\nflor_spm = 160\n", "unknown cue setting 'flor_spm'; known: floor_spm"),
    ("[cues]\nsustain_s = 2.5\n", "sustain_s must be a whole number, not 2.5"),
    ("[cues]\ncue_s = true\n", "cue_s must be a whole number"),
    ("[cues\n", "is not valid TOML"),
    ("[other]\nx = 1\n", "no [cues] table"),
])
def test_a_bad_file_is_refused_with_its_reason(tmp_path, text, message):
    f = tmp_path / "cues.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        cueconfig.load(f)
    assert str(f) in str(e.value)


def test_set_config_keeps_the_old_value_on_error():
    cfg = C.make_config(208)
    assert C.set_config(cfg, 3, 999) == P.RESULT_OUT_OF_RANGE and cfg[C.K_ROT_RISE_PCT] == C.DEFAULTS[C.K_ROT_RISE_PCT]
    assert C.set_config(cfg, 42, 1) == P.RESULT_UNKNOWN_KEY
    assert C.set_config(cfg, 3, 40) == P.RESULT_OK and cfg[C.K_ROT_RISE_PCT] == 40


def _fatigue_log(tmp_path):
    sc = Scenario((Segment("walk", 30, speed_mps=1.3), Segment("run", 540, speed_mps=3.3)),
                  fatigue=Fatigue(onset_s=280, cadence_pct_per_min=-2.0, rotation_pct_per_min=1.0), seed=90)
    return write_log(simulate(sc), tmp_path / "fatigue.sclog")


def test_replay_uses_the_settings_and_reports_what_the_cues_did(tmp_path):
    log = _fatigue_log(tmp_path)
    plain = json.loads(subprocess.run([find_tool("strideclip"), "replay", str(log), "--json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert plain["cues"] and plain["cues"][0]["reason"] == "cadence_drop"
    outcome = plain["cue_outcomes"][0]
    assert outcome["t_s"] == plain["cues"][0]["t_s"] and set(outcome) >= {"recovered_after_s", "in_zone_pct"}
    assert 0 < outcome["watched_s"] <= 300  # the running time after the cue that the log still holds
    (tmp_path / "lax.toml").write_text("[cues]\ndrop_pct = 20\nfloor_spm = 120\n")
    lax = json.loads(subprocess.run([find_tool("strideclip"), "replay", str(log), "--json", "--cues",
                                     str(tmp_path / "lax.toml")], capture_output=True, text=True, check=True).stdout)
    assert lax["cues"] == [] and lax["cue_outcomes"] == []  # a 20 % drop never happened
    (tmp_path / "bad.toml").write_text("[cues]\ndrop_pct = 0\n")
    bad = subprocess.run([find_tool("strideclip"), "replay", str(log), "--cues", str(tmp_path / "bad.toml")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "drop_pct = 0 is outside 1..30" in bad.stderr and "Traceback" not in bad.stderr


def test_live_sends_the_settings_to_the_clip(tmp_path):
    from blesim.clip import SimClip
    from blesim.radio import Radio
    from strideclip.link.ble import scan
    from strideclip.session.live import run_live
    from strideclip.sim import steady_run

    run = simulate(steady_run(0.3, seed=5))

    async def main():
        radio = Radio()
        await radio.start()
        clip = SimClip(radio, 1, "clip-1", run.counts, run.hello, speed=1)
        await clip.start()
        adverts = await scan(0.5, backend=radio.scanner_backend)
        await run_live(adverts, tmp_path, backend=radio.client_backend, seconds=3, cue_settings={1: 170, 3: 40})
        return clip

    clip = asyncio.run(main())
    assert (P.OP_SET_CONFIG, (1, 170)) in clip.commands and (P.OP_SET_CONFIG, (3, 40)) in clip.commands
    assert clip.cue_config[C.K_FLOOR_SPM] == 170 and clip.cue_config[C.K_ROT_RISE_PCT] == 40


def _first_cue_tempo(cfg):
    """Run at ~171 steps/min past the warm-up, then fall to ~150 (under the floor): the first cue's tempo."""
    st = C.make_state()
    idx = 0
    for k in range(6000):
        step = 73 if k < 3000 else 83
        idx += step
        if C.on_step(cfg, st, idx, step, True, 0):
            return st[C.TEMPO_SPM]
    return None


def test_the_metronome_plays_the_plans_target_or_else_the_runners_own_cadence():
    cfg = C.make_config(208)
    assert _first_cue_tempo(cfg) == 171  # no plan: the runner's baseline
    assert C.set_config(cfg, 8, 176) == P.RESULT_OK and _first_cue_tempo(cfg) == 176
    assert C.set_config(cfg, 8, 0) == P.RESULT_OK and _first_cue_tempo(cfg) == 171  # 0 turns it off


@pytest.mark.parametrize("value", [1, 99, 241, -5])
def test_a_target_outside_0_or_100_240_is_refused_and_the_old_one_stays(value):
    cfg = C.make_config(208)
    C.set_config(cfg, 8, 172)
    assert C.set_config(cfg, 8, value) == P.RESULT_OUT_OF_RANGE and cfg[C.K_TARGET_SPM] == 172


def test_a_target_in_the_settings_file_is_checked_like_the_clip_checks_it(tmp_path):
    f = tmp_path / "cues.toml"
    f.write_text("[cues]\ntarget_spm = 0\n")
    assert cueconfig.load(f) == {8: 0}
    f.write_text("[cues]\ntarget_spm = 50\n")
    with pytest.raises(ConfigError, match=r"target_spm = 50 is outside 100..240 \(or 0: off\)"):
        cueconfig.load(f)


def test_the_cadence_plan_rises_5_spm_per_4_weeks_and_at_most_10_pct():
    import datetime as dt

    from strideclip.coaching.cadence_plan import target_spm

    start = dt.date(2026, 9, 1)
    assert target_spm(160, start, start) == 160
    assert target_spm(160, start, start - dt.timedelta(days=3)) == 160  # before the plan: where it starts
    assert target_spm(160, start, start + dt.timedelta(days=28)) == 165
    assert target_spm(160, start, start + dt.timedelta(days=14)) == 163  # spread over the days (162.5)
    assert target_spm(160, start, start + dt.timedelta(days=365)) == 176  # capped at +10 %
    with pytest.raises(ValueError, match="not a running cadence"):
        target_spm(60, start, start)


def test_cli_plan_prints_the_target_and_the_setting():
    done = subprocess.run([find_tool("strideclip"), "plan", "--start-spm", "160", "--since", "2026-09-01",
                           "--on", "2026-09-29"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "metronome target 165 steps/min" in done.stdout and "target_spm = 165" in done.stdout
