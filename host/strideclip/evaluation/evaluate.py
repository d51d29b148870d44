"""``strideclip evaluate``: the step detector scored against reference contacts.

Recordings are fed as a clip would deliver them: resampled to the clip's rate (anti-aliased,
``scipy.signal.resample_poly``), converted to int16 counts at +-16 g / +-2000 dps, a missing axis
fed as a dead (all-zero) axis. One configuration per rate for every data set. docs/step-detector.md
explains the scoring and reports the figures.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from fractions import Fraction

import numpy as np
from scipy import signal

from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import datasets
from strideclip.evaluation.scoring import Score, cadence_spm

ACCEL_FS_G = 16
GYRO_FS_DPS = 2000
ACCEL_UG_PER_LSB = round(ACCEL_FS_G * 1e6 / 32768)  # 488
GYRO_COUNTS_PER_DPS = 32768 / GYRO_FS_DPS
DEFAULT_TOLERANCE_MS = {"alcantara": 50.0, "voisard": 100.0, "adeptdata": 50.0, "sim": 50.0, "csv": 50.0}

Detector = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def resample(x: np.ndarray, rate_in: float, rate_out: int) -> np.ndarray:
    """Anti-aliased polyphase resampling along axis 0 (as a clip sampling the same motion)."""
    if rate_in == rate_out:
        return np.asarray(x, float)
    ratio = Fraction(rate_out).limit_denominator(10_000) / Fraction(rate_in).limit_denominator(10_000)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=0, padtype="line")


def to_counts(accel_g: np.ndarray, gyro_dps: np.ndarray, rate_in: float, rate_out: int) -> np.ndarray:
    """(n, 6) int16 raw counts at the clip's rate and full scales."""
    acc = resample(accel_g, rate_in, rate_out) * (1e6 / ACCEL_UG_PER_LSB)
    gyr = resample(gyro_dps, rate_in, rate_out) * GYRO_COUNTS_PER_DPS
    counts = np.concatenate([acc, gyr], axis=1)
    return np.clip(np.round(counts), -32768, 32767).astype(np.int16)


def clipcore_detector(rate_hz: int, *, engine: str | None = None) -> Detector:
    """Our detector: returns (contact times s, emission times s, sides). ``engine``: see
    strideclip.analysis.steps (None: the default)."""

    def run(counts: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        det = StepDetector(sampling_rate_hz=rate, accel_ug_per_lsb=ACCEL_UG_PER_LSB, engine=engine)
        ev = det.detect(counts).events_
        sides = np.where(ev["side"] == 255, -1, ev["side"]).astype(int)
        return ev["ic_idx"] / rate, ev["emit_idx"] / rate, sides

    return run


def evaluate_trials(trials: Iterable[datasets.Trial], rate_hz: int, tolerance_s: float, detector: Detector) -> dict:
    score = Score(tolerance_s)
    compute_s = 0.0
    data_s = 0.0
    for tr in trials:
        counts = to_counts(tr.accel_g, tr.gyro_dps, tr.rate_hz, rate_hz)
        t0 = time.perf_counter()
        ic_s, emit_s, sides = detector(counts, rate_hz)
        compute_s += time.perf_counter() - t0
        data_s += len(counts) / rate_hz
        score.add(ic_s, tr.ics_s, emitted_s=emit_s, dont_care_s=tr.dont_care_s, window_s=tr.eval_window_s,
                  detected_sides=sides, reference_sides=tr.sides, duration_s=len(counts) / rate_hz)
        ref_in = tr.ics_s if tr.eval_window_s is None else tr.ics_s[(tr.ics_s >= tr.eval_window_s[0]) & (tr.ics_s <= tr.eval_window_s[1])]
        det_in = ic_s if tr.eval_window_s is None else ic_s[(ic_s >= tr.eval_window_s[0]) & (ic_s <= tr.eval_window_s[1])]
        c_ref, c_det = cadence_spm(ref_in), cadence_spm(det_in)
        if c_ref and c_det:
            score.cadence_errors_spm.append(c_det - c_ref)
    out = score.summary()
    out["compute_s_per_hour"] = round(compute_s / data_s * 3600, 3) if data_s else None
    return out


def evaluate_adept(rate_hz: int, detector: Detector, root: str | os.PathLike | None = None,
                   window_s: float = 60.0) -> dict:
    """Cadence over 60-s windows from the hip sensor vs 2 x stride rate from the left ankle."""
    run = datasets.load_adept(root)
    strides = datasets.ankle_strides_s(run)
    counts = to_counts(run.hip_g, np.zeros_like(run.hip_g), run.rate_hz, rate_hz)
    t0 = time.perf_counter()
    ic_s, emit_s, _ = detector(counts, rate_hz)
    compute_s = time.perf_counter() - t0
    duration = len(counts) / rate_hz
    errors, windows = [], []
    for w0 in np.arange(0, duration - window_s + 1e-9, window_s):
        ref = strides[(strides >= w0) & (strides < w0 + window_s)]
        det = ic_s[(ic_s >= w0) & (ic_s < w0 + window_s)]
        if len(ref) < 10:
            continue  # not running in this window
        ref_cad = 120.0 / float(np.median(np.diff(ref)))
        # Same definition for both: two steps per stride. A lateral hip sensor times left and
        # right steps differently, so single-step intervals alternate; strides do not.
        det_cad = 120.0 / float(np.median(det[2:] - det[:-2])) if len(det) > 10 else None
        err = (det_cad - ref_cad) if det_cad else float("nan")
        errors.append(err)
        windows.append({"start_s": float(w0), "reference_spm": round(ref_cad, 2),
                        "detected_spm": round(det_cad, 2) if det_cad else None})
    errs = np.abs(np.array(errors))
    return {
        "windows": len(windows),
        "n_reference_strides": int(len(strides)),
        "n_detected": int(len(ic_s)),
        "cadence_abs_error_spm_median": round(float(np.nanmedian(errs)), 3) if len(errs) else None,
        "cadence_abs_error_spm_max": round(float(np.nanmax(errs)), 3) if len(errs) else None,
        "compute_s_per_hour": round(compute_s / duration * 3600, 3),
        "per_window": windows,
    }


def sim_trials(rate_hz: int, seeds: Iterable[int] = range(6), minutes: float = 4.0) -> list[datasets.Trial]:
    """Simulated sessions with misalignment, noise, hills, stops and walking breaks."""
    from strideclip.sim import Scenario, Segment, Sensor, simulate

    trials = []
    for seed in seeds:
        rng = np.random.default_rng(1000 + seed)
        run_s = minutes * 60 / 4
        segs = (
            Segment("stand", 5), Segment("walk", 25, speed_mps=1.3),
            Segment("run", run_s, speed_mps=float(rng.uniform(2.6, 4.2))),
            Segment("run", run_s / 2, speed_mps=3.3, slope_pct=float(rng.choice([-6, 6])), label="hill"),
            Segment("stand", 15, label="traffic light"),
            Segment("run", run_s, speed_mps=float(rng.uniform(2.8, 4.5)), turn_deg=180, label="pace change"),
            Segment("walk", 20, speed_mps=1.2, label="walking break"),
            Segment("run", run_s / 2, speed_mps=3.0), Segment("stand", 5),
        )
        sensor = Sensor.random_mounting(rng, rate_hz)
        run = simulate(Scenario(segs, sensor=sensor, seed=seed))
        trials.append(datasets.Trial(
            name=f"sim-{seed}", rate_hz=rate_hz, accel_g=np.zeros((0, 3)), gyro_dps=np.zeros((0, 3)),
            ics_s=run.steps["ic_t_s"], sides=run.steps["side"].astype(int), info={"counts": run.counts},
        ))
    return trials


def evaluate_sim(rate_hz: int, tolerance_s: float, detector: Detector, seeds: Iterable[int] = range(6)) -> dict:
    score = Score(tolerance_s)
    compute_s = data_s = 0.0
    for tr in sim_trials(rate_hz, seeds):
        counts = tr.info["counts"]
        t0 = time.perf_counter()
        ic_s, emit_s, sides = detector(counts, rate_hz)
        compute_s += time.perf_counter() - t0
        data_s += len(counts) / rate_hz
        score.add(ic_s, tr.ics_s, emitted_s=emit_s, detected_sides=sides, reference_sides=tr.sides)
    out = score.summary()
    out["compute_s_per_hour"] = round(compute_s / data_s * 3600, 3)
    return out


def evaluate(dataset: str, *, rate_hz: int = 208, tolerance_ms: float | None = None,
             data_dir: str | os.PathLike | None = None,
             detector: Detector | None = None) -> dict:
    """Score a data set; the result is what `strideclip evaluate ... --json` prints."""
    detector = detector or clipcore_detector(rate_hz)
    tol_s = (tolerance_ms if tolerance_ms is not None else DEFAULT_TOLERANCE_MS[dataset]) / 1000
    if dataset == "alcantara":
        out = evaluate_trials(datasets.load_alcantara(data_dir), rate_hz, tol_s, detector)
    elif dataset == "voisard":
        out = evaluate_trials(datasets.load_voisard(data_dir), rate_hz, tol_s, detector)
    elif dataset == "adeptdata":
        out = evaluate_adept(rate_hz, detector, data_dir)
    elif dataset == "sim":
        out = evaluate_sim(rate_hz, tol_s, detector)
    else:
        raise ValueError(f"unknown data set {dataset!r}")
    return {"dataset": dataset, "rate_hz": rate_hz, **out}


def read_csv_recording(samples_csv: str, reference_csv: str, *, rate_hz: float, accel_unit: str = "g",
                       gyro_unit: str = "dps") -> datasets.Trial:
    """A user's own recording: samples (acc_x,acc_y,acc_z[,gyr_x,gyr_y,gyr_z], one row per sample)
    and reference contacts (t_s, seconds from the first sample). docs/evaluate-csv.md."""
    import csv

    with open(samples_csv, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("acc_x", "acc_y", "acc_z") if c not in cols]
        if missing:
            raise datasets.DataSetError(f"{samples_csv}: missing column(s) {', '.join(missing)}", path=samples_csv)
        has_gyro = all(c in cols for c in ("gyr_x", "gyr_y", "gyr_z"))
        rows = []
        for line_no, row in enumerate(reader, start=2):
            try:
                acc = [float(row[c]) for c in ("acc_x", "acc_y", "acc_z")]
                gyr = [float(row[c]) for c in ("gyr_x", "gyr_y", "gyr_z")] if has_gyro else [0.0, 0.0, 0.0]
            except (TypeError, ValueError) as e:
                raise datasets.DataSetError(f"{samples_csv}, line {line_no}: not a number ({e})", path=samples_csv) from e
            rows.append(acc + gyr)
    if len(rows) < 2:
        raise datasets.DataSetError(f"{samples_csv}: no samples", path=samples_csv)
    data = np.array(rows)
    if not np.all(np.isfinite(data)):
        raise datasets.DataSetError(f"{samples_csv}: NaN or infinite values", path=samples_csv)
    accel = data[:, :3] / (datasets.G_MPS2 if accel_unit == "mps2" else 1.0)
    gyro = np.degrees(data[:, 3:]) if gyro_unit == "rads" else data[:, 3:]
    with open(reference_csv, newline="") as f:
        reader = csv.DictReader(f)
        if "t_s" not in (reader.fieldnames or []):
            raise datasets.DataSetError(f"{reference_csv}: needs a column t_s", path=reference_csv)
        try:
            ics = np.array(sorted(float(r["t_s"]) for r in reader))
        except ValueError as e:
            raise datasets.DataSetError(f"{reference_csv}: a t_s value is not a number ({e})", path=reference_csv) from e
    return datasets.Trial(name=str(samples_csv), rate_hz=rate_hz, accel_g=accel, gyro_dps=gyro, ics_s=ics,
                          sides=np.full(len(ics), -1), dead_axes=() if has_gyro else (3, 4, 5))


def evaluate_csv(samples_csv: str, reference_csv: str, *, rate_hz: float, clip_rate_hz: int = 208,
                 tolerance_ms: float = 50.0, accel_unit: str = "g", gyro_unit: str = "dps",
                 events_out: str | None = None) -> dict:
    trial = read_csv_recording(samples_csv, reference_csv, rate_hz=rate_hz, accel_unit=accel_unit, gyro_unit=gyro_unit)
    detector = clipcore_detector(clip_rate_hz)
    out = evaluate_trials([trial], clip_rate_hz, tolerance_ms / 1000, detector)
    if events_out:
        ic_s, _, sides = detector(to_counts(trial.accel_g, trial.gyro_dps, trial.rate_hz, clip_rate_hz), clip_rate_hz)
        with open(events_out, "w") as f:
            f.write("t_s,side\n")
            for t, side in zip(ic_s, sides):
                f.write(f"{t:.4f},{ {0: 'left', 1: 'right'}.get(int(side), 'unknown') }\n")
    return {"dataset": "csv", "rate_hz": clip_rate_hz, "input_rate_hz": rate_hz, **out}
