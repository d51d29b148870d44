"""Scoring detected initial contacts against reference ones (docs/step-detector.md, "How we measure").

One-to-one matching within a tolerance: candidate pairs closer than the tolerance are taken in
order of increasing distance. Because every tolerance we use (50 ms running, 100 ms walking) is
under half the shortest step (~250 ms), a detection can lie within tolerance of at most one
reference and this greedy matching is the optimal one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


def match_events(detected_s: np.ndarray, reference_s: np.ndarray, tolerance_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (detected, reference) matched one-to-one within the tolerance."""
    detected_s, reference_s = np.asarray(detected_s, float), np.asarray(reference_s, float)
    pairs = []
    for i, t in enumerate(detected_s):
        lo = np.searchsorted(reference_s, t - tolerance_s, side="left")
        hi = np.searchsorted(reference_s, t + tolerance_s, side="right")
        for j in range(lo, hi):
            pairs.append((abs(t - reference_s[j]), i, j))
    pairs.sort()
    used_d, used_r = set(), set()
    md, mr = [], []
    for _, i, j in pairs:
        if i not in used_d and j not in used_r:
            used_d.add(i)
            used_r.add(j)
            md.append(i)
            mr.append(j)
    order = np.argsort(mr)
    return np.array(md, int)[order], np.array(mr, int)[order]


STANDING_GAP_S = 1.5  # this far from any labelled contact, outside the scored span: standing


@dataclass
class Score:
    """Accumulates matches over many recordings; ``summary()`` gives the figures of `evaluate`."""

    tolerance_s: float
    n_reference: int = 0
    n_detected: int = 0
    n_matched: int = 0
    errors_s: list = field(default_factory=list)  # detected - reference, matched pairs
    latencies_s: list = field(default_factory=list)  # emission - reference, matched pairs
    cadence_errors_spm: list = field(default_factory=list)  # per recording or window
    side_correct: int = 0
    side_known: int = 0
    standing_s: float = 0.0  # outside the scored span and far from every labelled contact
    standing_detections: int = 0

    def add(self, detected_s: npt.ArrayLike, reference_s: npt.ArrayLike, *, emitted_s: npt.ArrayLike | None = None,
            dont_care_s: npt.ArrayLike = (), window_s: tuple[float, float] | None = None,
            detected_sides: npt.ArrayLike | None = None, reference_sides: npt.ArrayLike | None = None,
            duration_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Score one recording. ``window_s`` limits scoring to a span; detections matching a
        "don't care" reference (a true contact the reference cannot time) count for nothing.
        With ``duration_s``, the time outside the span and more than STANDING_GAP_S from any
        labelled contact is standing, and detections there are counted as phantom steps."""
        det = np.asarray(detected_s, float)
        ref = np.asarray(reference_s, float)
        keep_d = np.ones(len(det), bool)
        keep_r = np.ones(len(ref), bool)
        if window_s is not None:
            keep_d &= (det >= window_s[0] - self.tolerance_s) & (det <= window_s[1] + self.tolerance_s)
            keep_r &= (ref >= window_s[0]) & (ref <= window_s[1])
        d_idx = np.flatnonzero(keep_d)
        r_idx = np.flatnonzero(keep_r)
        md, mr = match_events(det[d_idx], ref[r_idx], self.tolerance_s)
        md, mr = d_idx[md], r_idx[mr]
        unmatched = np.setdiff1d(d_idx, md)
        if len(dont_care_s):
            dc_d, _ = match_events(det[unmatched], np.asarray(dont_care_s, float), self.tolerance_s)
            unmatched = np.delete(unmatched, dc_d)
        if window_s is not None:  # a detection just outside the window with no partner is not scored
            inside = (det[unmatched] >= window_s[0]) & (det[unmatched] <= window_s[1])
            unmatched = unmatched[inside]
        if window_s is not None and duration_s:
            self._standing(det, ref, window_s, duration_s)
        self.n_reference += len(r_idx)
        self.n_detected += len(md) + len(unmatched)
        self.n_matched += len(md)
        self.errors_s.extend(det[md] - ref[mr])
        if emitted_s is not None:
            self.latencies_s.extend(np.asarray(emitted_s, float)[md] - ref[mr])
        if detected_sides is not None and reference_sides is not None:
            ds, rs = np.asarray(detected_sides)[md], np.asarray(reference_sides)[mr]
            known = (ds >= 0) & (ds <= 1) & (rs >= 0)
            self.side_known += int(known.sum())
            self.side_correct += int((ds[known] == rs[known]).sum())
        return md, mr

    def _standing(self, det, ref, window_s, duration_s) -> None:
        def far(t):  # more than STANDING_GAP_S from every labelled contact, outside the span
            t = np.asarray(t, float)
            gap = np.full(len(t), np.inf)
            if len(ref):
                j = np.clip(np.searchsorted(ref, t), 1, len(ref)) - 1
                gap = np.minimum(np.abs(t - ref[j]), np.abs(t - ref[np.minimum(j + 1, len(ref) - 1)]))
            return (gap > STANDING_GAP_S) & ((t < window_s[0]) | (t > window_s[1]))

        self.standing_s += float(far(np.arange(0.05, duration_s, 0.1)).sum()) * 0.1
        self.standing_detections += int(far(det).sum())

    def summary(self) -> dict:
        err_ms = np.abs(np.array(self.errors_s)) * 1000
        precision = self.n_matched / self.n_detected if self.n_detected else 0.0
        recall = self.n_matched / self.n_reference if self.n_reference else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out = {
            "n_reference": self.n_reference,
            "n_detected": self.n_detected,
            "n_matched": self.n_matched,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "median_abs_error_ms": _r(np.median(err_ms)) if len(err_ms) else None,
            "p95_abs_error_ms": _r(np.percentile(err_ms, 95)) if len(err_ms) else None,
            "mean_error_ms": _r(1000 * np.mean(self.errors_s)) if len(err_ms) else None,
            "cadence_abs_error_spm_median": _r(np.median(np.abs(self.cadence_errors_spm))) if self.cadence_errors_spm else None,
            "latency_ms_p95": _r(1000 * np.percentile(self.latencies_s, 95)) if self.latencies_s else None,
            "tolerance_ms": _r(self.tolerance_s * 1000),
        }
        if self.side_known:
            out["side_accuracy"] = round(self.side_correct / self.side_known, 4)
        if self.standing_s:
            out["standing_s"] = _r(self.standing_s)
            out["standing_detections"] = self.standing_detections
        return out


def _r(x) -> float:
    return round(float(x), 2)


def cadence_spm(ic_s: np.ndarray) -> float | None:
    """Cadence from the median interval between consecutive contacts."""
    ic_s = np.asarray(ic_s, float)
    if len(ic_s) < 3:
        return None
    return 60.0 / float(np.median(np.diff(ic_s)))
