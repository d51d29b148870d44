"""`strideclip evaluate`: scoring rules, the data-set runners, and users' own CSV recordings."""
import json
import subprocess

import numpy as np
import pytest

from conftest import require_data
from mpy import find_tool
from strideclip.evaluation import datasets
from strideclip.evaluation.scoring import Score, match_events
from strideclip.sim import Scenario, Segment, Sensor, simulate

KEYS = ("n_reference", "n_detected", "precision", "recall", "f1", "median_abs_error_ms", "p95_abs_error_ms",
        "mean_error_ms", "cadence_abs_error_spm_median", "latency_ms_p95")


def _cli(*args):
    return subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_matching_is_one_to_one_within_tolerance():
    det = np.array([0.98, 1.02, 2.0, 3.2, 5.0])
    ref = np.array([1.0, 2.03, 3.0, 4.0])
    md, mr = match_events(det, ref, 0.05)
    assert list(zip(md, mr)) == [(0, 0), (2, 1)]  # 0.98 wins 1.0 (tie broken by order), 3.2 is too far


def test_score_handles_dont_care_and_windows():
    s = Score(0.05)
    s.add([0.0, 1.0, 2.0, 9.0], [1.0, 2.0], dont_care_s=[0.01], window_s=(0.5, 5.0), emitted_s=[0.1, 1.08, 2.07, 9.1])
    out = s.summary()
    assert (out["n_reference"], out["n_detected"], out["n_matched"]) == (2, 2, 2)
    assert out["f1"] == 1.0 and out["latency_ms_p95"] == pytest.approx(79.5, abs=0.5)


def test_detections_in_standing_are_counted_as_phantom_steps():
    s = Score(0.1)
    # walking from 2 s to 8 s (scored), contacts also labelled at 10-11 s (a walk back, not scored);
    # standing: 0-0.5 s, 8-9 s and 12.5-20 s; detections at 0.3 s and 15 s are phantoms, 10.52 s a real step
    s.add([0.3, 2.0, 3.0, 10.52, 15.0], [2.0, 3.0, 10.5, 11.0], window_s=(2.0, 8.0), duration_s=20.0)
    out = s.summary()
    assert out["standing_detections"] == 2
    assert out["standing_s"] == pytest.approx(0.5 + 1.0 + 7.5, abs=0.15)


def _write_recording(tmp_path, *, unit_scale=1.0, header="acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"):
    run = simulate(Scenario((Segment("stand", 3), Segment("run", 40, speed_mps=3.3)), sensor=Sensor(rate_hz=104), seed=9))
    acc = run.counts[:, :3].astype(float) * run.hello.accel_ug_per_lsb / 1e6 * unit_scale
    gyr = run.counts[:, 3:].astype(float) * run.hello.gyro_mdps_per_lsb_q8 / 256 / 1000
    samples, reference = tmp_path / "S.csv", tmp_path / "R.csv"
    samples.write_text(header + "\n" + "\n".join(",".join(f"{v:.5f}" for v in (*a, *g)) for a, g in zip(acc, gyr)) + "\n")
    reference.write_text("t_s\n" + "\n".join(f"{t:.4f}" for t in run.steps["ic_t_s"]) + "\n")
    return samples, reference, run


def test_csv_recording_is_scored_and_events_written(tmp_path):
    samples, reference, run = _write_recording(tmp_path, unit_scale=9.80665)
    events = tmp_path / "E.csv"
    done = _cli("evaluate", "csv", "--samples", samples, "--reference", reference, "--rate-hz", 104,
                "--accel-unit", "mps2", "--events-out", events, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert all(k in out for k in KEYS)
    assert out["f1"] >= 0.98 and out["n_reference"] == len(run.steps)
    lines = events.read_text().splitlines()
    assert lines[0] == "t_s,side" and len(lines) - 1 == out["n_detected"]


@pytest.mark.parametrize("mangle,message", [
    (lambda p: p.write_text(p.read_text().replace("acc_y", "accy")), "missing column(s) acc_y"),
    (lambda p: p.write_text(p.read_text().replace("\n0", "\nabc", 1)), "line"),
])
def test_bad_csv_gets_a_clear_error(tmp_path, mangle, message):
    samples, reference, _ = _write_recording(tmp_path)
    mangle(samples)
    done = _cli("evaluate", "csv", "--samples", samples, "--reference", reference, "--rate-hz", 104)
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_missing_data_set_is_named():
    done = _cli("evaluate", "alcantara", "--data-dir", "/nonexistent", "--json")
    assert done.returncode == 1 and "alcantara2022_sacral_running" in done.stderr and "--data-dir" in done.stderr


def test_cli_reports_the_issue_fields_for_a_data_set():
    require_data(datasets.ALCANTARA)
    done = _cli("evaluate", "alcantara", "--clip-rate-hz", 104, "--json")
    out = json.loads(done.stdout)
    assert all(k in out for k in KEYS) and out["rate_hz"] == 104 and out["n_reference"] == 465
