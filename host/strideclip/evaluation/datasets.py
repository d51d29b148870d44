"""Loaders for the public data sets in ``../shared/data`` and their ground-truth recipes.

Each data set's README (in its folder) gives source, licence, units and how ground truth is
encoded; the recipes below follow them. The data stay outside the repository: ``data_dir()``
finds them and ``DataSetError`` says exactly what is missing.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from strideclip.errors import DataSetError

REPO_ROOT = Path(__file__).resolve().parents[3]
G_MPS2 = 9.80665


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: ``override``, else $STRIDECLIP_DATA, else ../shared/data beside the repo."""
    return Path(override or os.environ.get("STRIDECLIP_DATA") or REPO_ROOT.parent / "shared" / "data")


def _require(path: Path, name: str) -> Path:
    if not path.exists():
        raise DataSetError(f"data set {name!r} not found: {path} does not exist (see --data-dir)", path=str(path))
    return path


@dataclass
class Trial:
    """One recording: accelerations in g and angular rates in dps, in the recording's own frame.

    ``accel_g``/``gyro_dps`` are (n, 3) with NaN-free values; a missing axis is all zeros and
    listed in ``dead_axes``. ``ics_s`` are reference initial contacts (seconds from the first
    sample); ``dont_care_s`` are true contacts the reference cannot time (cut by the window edge):
    a detection there is neither a hit nor a false alarm. ``sides`` is 0 left / 1 right / -1 unknown.
    """

    name: str
    rate_hz: float
    accel_g: np.ndarray
    gyro_dps: np.ndarray
    ics_s: np.ndarray
    sides: np.ndarray
    dont_care_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_window_s: tuple[float, float] | None = None  # score only inside this span
    dead_axes: tuple[int, ...] = ()
    info: dict = field(default_factory=dict)


# ---- Alcantara et al. 2022: sacral accelerometer + force treadmill, running ------------------

ALCANTARA = "alcantara2022_sacral_running"
ALCANTARA_HZ = 500


def alcantara_contacts(grf_bw: np.ndarray, rate_hz: float = ALCANTARA_HZ) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Initial contacts from vertical GRF by the README's recipe.

    stance = GRF > 0.05 BW; gaps under 40 ms merged; stances under 100 ms dropped; IC = first
    sample of a stance. A stance already under way at the first sample has no observable IC; one
    still under way at the last sample has a true IC but a cut contact ("don't care" for timing
    scores that need the whole stance). Both are "don't care". Returns (ICs, don't-care, stances).
    """
    on = grf_bw > 0.05
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    starts = list(edges[~on[edges]] + 1)
    ends = list(edges[on[edges]] + 1)
    if on[0]:
        starts.insert(0, 0)
    if on[-1]:
        ends.append(len(on))
    stances = list(zip(starts, ends))
    merged: list[list[int]] = []
    for a, b in stances:
        if merged and a - merged[-1][1] < 0.040 * rate_hz:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    kept = [(a, b) for a, b in merged if b - a >= 0.100 * rate_hz or b == len(on)]
    ics, dont_care = [], []
    for a, b in kept:
        # A stance under way at the first sample began before the window: its contact time is
        # unknown (at or before 0). One still under way at the end has a true contact but a cut
        # stance. Neither can be scored; a detection there counts for nothing.
        (dont_care if a == 0 or b == len(on) else ics).append(a)
    return ics, dont_care, kept


def load_alcantara(root: str | os.PathLike | None = None) -> list[Trial]:
    folder = _require(data_dir(root) / ALCANTARA, ALCANTARA)
    acc = np.loadtxt(_require(folder / "Accelerometer_one_sub.csv", ALCANTARA), delimiter=",")
    grf = np.loadtxt(folder / "GRF_one_sub.csv", delimiter=",")
    with open(folder / "Sub_Info_one_sub.csv") as f:
        header = f.readline().strip().split(",")
        rows = [dict(zip(header, line.strip().split(","))) for line in f if line.strip()]
    n = grf.shape[1]
    if acc.shape != (len(rows), 2 * n):
        raise DataSetError(f"{ALCANTARA}: expected {len(rows)} x {2 * n} accelerations, got {acc.shape}", path=str(folder))
    trials = []
    for k, row in enumerate(rows):
        ics, dont_care, stances = alcantara_contacts(grf[k])
        accel = np.zeros((n, 3))
        accel[:, 0] = acc[k, :n]  # vertical (up), g, gravity included, negatives clipped to 0 by the authors
        accel[:, 2] = acc[k, n:]  # antero-posterior; the medio-lateral axis does not exist
        trials.append(Trial(
            name=f"alcantara-{k:02d}", rate_hz=ALCANTARA_HZ, accel_g=accel, gyro_dps=np.zeros((n, 3)),
            ics_s=np.array(ics) / ALCANTARA_HZ, sides=np.full(len(ics), -1),
            dont_care_s=np.array(dont_care) / ALCANTARA_HZ, dead_axes=(1, 3, 4, 5),
            info={"speed_mps": float(row["Speed"]), "slope_deg": float(row["Slope"]), "grf_bw": grf[k],
                  "stances": stances, "rfs_pct": float(row["RFS"]), "axes": "x=vertical up, z=antero-posterior"},
        ))
    return trials


# ---- Voisard et al. 2023: L5 IMU, walking ----------------------------------------------------

VOISARD = "voisard2023_ipol_lowerback_walking"


def voisard_on_packet_clock(data: np.ndarray) -> np.ndarray:
    """The rows of a ``*_lb.txt`` placed at their PacketCounter (column 0), one row per packet.

    The wireless L5 sensor lost packets in 79 of the 110 trials (5 % of all samples, mostly on
    the way back, in runs of 1-64), and the footstep events are indexed by packet number (24
    trials have events beyond the last row). Taking rows as consecutive samples squeezes time
    after each loss and drifts the signal away from its contacts. Here row k is packet k:
    missing packets are interpolated linearly, a repeated packet number keeps its first row,
    and packets before the first one received repeat it.
    """
    pc = data[:, 0].astype(np.int64)
    keep = np.r_[True, np.diff(pc) > 0]
    pc, data = pc[keep], data[keep]
    grid = np.arange(0, pc[-1] + 1)
    out = np.empty((len(grid), data.shape[1]))
    out[:, 0] = grid
    for c in range(1, data.shape[1]):
        out[:, c] = np.interp(grid, pc, data[:, c])
    return out


def load_voisard(root: str | os.PathLike | None = None, *, limit: int | None = None) -> list[Trial]:
    folder = _require(data_dir(root) / VOISARD / "GaitData", VOISARD)
    metas = sorted(folder.glob("*.json"), key=lambda p: [int(x) for x in p.stem.split("-")])
    if not metas:
        raise DataSetError(f"{VOISARD}: no trial .json files in {folder}", path=str(folder))
    trials = []
    for meta_path in metas[:limit]:
        meta = json.loads(meta_path.read_text())
        samples = folder / f"{meta_path.stem}_lb.txt"
        with open(_require(samples, VOISARD)) as f:
            rate_hz = float(f.readline().split(":")[1].split()[0])
        data = voisard_on_packet_clock(np.loadtxt(samples, skiprows=2))
        events = [(e[1], 0) for e in meta["LeftFootEvents"]] + [(e[1], 1) for e in meta["RightFootEvents"]]
        events.sort()
        lo, hi = meta["TrialBoundaries"]
        trials.append(Trial(
            name=f"voisard-{meta_path.stem}", rate_hz=rate_hz, accel_g=data[:, 1:4] / G_MPS2,
            gyro_dps=np.degrees(data[:, 4:7]),
            ics_s=np.array([e for e, _ in events]) / rate_hz, sides=np.array([s for _, s in events]),
            eval_window_s=(lo / rate_hz, hi / rate_hz),
            info={"uturn_s": tuple(np.array(meta["UTurnBoundaries"]) / rate_hz), "subject": meta["Subject"]},
        ))
    return trials


# ---- adeptdata acc_running: 25-min outdoor run, hip and ankle -------------------------------

ADEPT = "adeptdata_acc_running"


@dataclass
class AdeptRun:
    rate_hz: float
    hip_g: np.ndarray  # (n, 3) left lateral hip, g
    ankle_g: np.ndarray  # (n, 3) left ankle, g (saturates at 8 g)


def load_adept(root: str | os.PathLike | None = None) -> AdeptRun:
    path = _require(data_dir(root) / ADEPT / "acc_running.csv.gz", ADEPT)
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        if header != ["loc_id", "t_s", "x", "y", "z"]:
            raise DataSetError(f"{ADEPT}: unexpected columns {header}", path=str(path))
        hip, ankle = [], []
        for line in f:
            loc, _, x, y, z = line.rstrip().split(",")
            (hip if loc == "left_hip" else ankle).append((float(x), float(y), float(z)))
    return AdeptRun(rate_hz=100.0, hip_g=np.array(hip), ankle_g=np.array(ankle))


def ankle_strides_s(run: AdeptRun) -> np.ndarray:
    """Left-foot strike times from ankle impact peaks (|a| > 3 g, at least 0.5 s apart), as the
    data set's README does; they give stride time, hence cadence = 2 x stride rate."""
    mag = np.linalg.norm(run.ankle_g, axis=1)
    peaks = []
    last = -np.inf
    min_gap = int(0.5 * run.rate_hz)
    i = 1
    while i < len(mag) - 1:
        if mag[i] > 3.0 and mag[i] >= mag[i - 1] and mag[i] >= mag[i + 1]:
            if i - last >= min_gap:
                peaks.append(i)
                last = i
            elif mag[i] > mag[peaks[-1]]:
                peaks[-1] = last = i
        i += 1
    return np.array(peaks) / run.rate_hz
