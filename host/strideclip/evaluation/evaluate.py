"""``strideclip evaluate``: the step detector scored against reference contacts.

Recordings are fed as a clip would deliver them, through the code ``strideclip import`` uses
(``strideclip.imports.counts``): resampled to the clip's rate (anti-aliased,
``scipy.signal.resample_poly``), converted to int16 counts at +-16 g / +-2000 dps, a missing axis
fed as a dead (all-zero) axis. A user's CSV is read and cut at its gaps by the import's own reader
and checks (``imports.generic_csv``, ``imports.to_log.convert``). One configuration per rate for
every data set. docs/step-detector.md explains the scoring and reports the figures.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from strideclip.analysis.steps import StepDetector
from strideclip.evaluation import datasets
from strideclip.evaluation.scoring import Score, cadence_spm
from strideclip.imports import generic_csv
from strideclip.imports.counts import ACCEL_UG_PER_LSB, GYRO_COUNTS_PER_DPS, to_counts
from strideclip.imports.to_log import convert

# the clip's scales are read from here too (evaluate-metrics, the benches and tests), as before they
# moved down to strideclip.imports.counts
__all__ = ["ACCEL_UG_PER_LSB", "GYRO_COUNTS_PER_DPS", "to_counts", "clipcore_detector", "detect_blocks",
           "evaluate", "evaluate_trials", "evaluate_adept", "evaluate_sim", "sim_trials", "evaluate_csv",
           "read_reference"]
DEFAULT_TOLERANCE_MS = {"alcantara": 50.0, "voisard": 100.0, "adeptdata": 50.0, "sim": 50.0, "csv": 50.0}

Detector = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _times(ev: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detector events as (contact times s, emission times s, sides: -1 unknown)."""
    sides = np.where(ev["side"] == 255, -1, ev["side"]).astype(int)
    return ev["ic_idx"] / rate, ev["emit_idx"] / rate, sides


def clipcore_detector(rate_hz: int, *, engine: str | None = None) -> Detector:
    """Our detector: returns (contact times s, emission times s, sides). ``engine``: see
    strideclip.analysis.steps (None: the default)."""

    def run(counts: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        det = StepDetector(sampling_rate_hz=rate, accel_ug_per_lsb=ACCEL_UG_PER_LSB, engine=engine)
        return _times(det.detect(counts).events_, rate)

    return run


def detect_blocks(blocks: list[tuple[int, np.ndarray]], rate_hz: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector over a recording with gaps, (first sample index, counts) blocks in order, as a
    session runs it: started again after each gap, never stepping across one."""
    det = StepDetector(sampling_rate_hz=rate_hz, accel_ug_per_lsb=ACCEL_UG_PER_LSB, first_idx=blocks[0][0])
    parts, next_idx = [], blocks[0][0]
    for first, counts in blocks:
        if first != next_idx:
            det.resync(first)
        parts.append(det.feed(counts))
        next_idx = first + len(counts)
    return _times(np.concatenate(parts), rate_hz)


def _score(score: Score, tr: datasets.Trial, found: tuple[np.ndarray, np.ndarray, np.ndarray], duration_s: float) -> None:
    """One recording's detections into the score, and its cadence error."""
    ic_s, emit_s, sides = found
    score.add(ic_s, tr.ics_s, emitted_s=emit_s, dont_care_s=tr.dont_care_s, window_s=tr.eval_window_s,
              detected_sides=sides, reference_sides=tr.sides, duration_s=duration_s)
    ref_in = tr.ics_s if tr.eval_window_s is None else tr.ics_s[(tr.ics_s >= tr.eval_window_s[0]) & (tr.ics_s <= tr.eval_window_s[1])]
    det_in = ic_s if tr.eval_window_s is None else ic_s[(ic_s >= tr.eval_window_s[0]) & (ic_s <= tr.eval_window_s[1])]
    c_ref, c_det = cadence_spm(ref_in), cadence_spm(det_in)
    if c_ref and c_det:
        score.cadence_errors_spm.append(c_det - c_ref)


def evaluate_trials(trials: Iterable[datasets.Trial], rate_hz: int, tolerance_s: float, detector: Detector) -> dict:
    score = Score(tolerance_s)
    compute_s = 0.0
    data_s = 0.0
    for tr in trials:
        counts = to_counts(tr.accel_g, tr.gyro_dps, tr.rate_hz, rate_hz)
        t0 = time.perf_counter()
        found = detector(counts, rate_hz)
        compute_s += time.perf_counter() - t0
        data_s += len(counts) / rate_hz
        _score(score, tr, found, len(counts) / rate_hz)
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


def read_reference(reference_csv: str | os.PathLike) -> np.ndarray:
    """Reference contacts: a CSV with a column t_s, seconds from the first sample, sorted."""
    import csv

    with open(reference_csv, newline="") as f:
        reader = csv.DictReader(f)
        if "t_s" not in (reader.fieldnames or []):
            raise datasets.DataSetError(f"{reference_csv}: needs a column t_s", path=str(reference_csv))
        try:
            return np.array(sorted(float(r["t_s"]) for r in reader))
        except ValueError as e:
            raise datasets.DataSetError(f"{reference_csv}: a t_s value is not a number ({e})",
                                        path=str(reference_csv)) from e


def evaluate_csv(samples_csv: str, reference_csv: str, *, rate_hz: float | None = None, clip_rate_hz: int = 208,
                 tolerance_ms: float = 50.0, accel_unit: str = "g", gyro_unit: str = "dps", columns: str | None = None,
                 events_out: str | None = None) -> dict:
    """A user's own recording scored (docs/step-detector.md): the samples read, checked and cut at
    their gaps as ``strideclip import`` reads them (``imports.generic_csv``: ``columns``, or
    ``acc_x,acc_y,acc_z[,gyr_x,gyr_y,gyr_z]`` at ``rate_hz``), the reference contacts in seconds
    from the first sample."""
    rec = generic_csv.read([Path(samples_csv)], columns=columns, rate_hz=rate_hz, accel_unit=accel_unit,
                           gyro_unit=gyro_unit)
    clip = convert(rec, clip_rate_hz=clip_rate_hz)
    ics = read_reference(reference_csv)
    trial = datasets.Trial(name=str(samples_csv), rate_hz=clip.timeline.rate_hz, accel_g=rec.accel_g,
                           gyro_dps=rec.gyro_dps if rec.gyro_dps is not None else np.zeros_like(rec.accel_g),
                           ics_s=ics, sides=np.full(len(ics), -1), dead_axes=() if clip.has_gyro else (3, 4, 5))
    score = Score(tolerance_ms / 1000)
    t0 = time.perf_counter()
    found = detect_blocks(clip.blocks, clip_rate_hz)
    compute_s = time.perf_counter() - t0
    _score(score, trial, found, clip.span_s)
    out = score.summary()
    out["compute_s_per_hour"] = round(compute_s / clip.span_s * 3600, 3)
    if events_out:
        with open(events_out, "w") as f:
            f.write("t_s,side\n")
            for t, side in zip(found[0], found[2]):
                f.write(f"{t:.4f},{ {0: 'left', 1: 'right'}.get(int(side), 'unknown') }\n")
    return {"dataset": "csv", "rate_hz": clip_rate_hz, "input_rate_hz": round(clip.timeline.rate_hz, 4),
            "gaps": len(clip.gaps_idx), **out}
