"""Any ``Recording`` as a session log every command reads (docs/import.md): checked
(``imports.checks``), each contiguous segment resampled on its own to the step detector's nearest
rate and quantised at +-16 g / +-2000 dps (``imports.counts``), a HELLO that says so, SAMPLES
packets whose sample indices leave the source's gaps as the log's gaps, and a header that says
where the recording came from. Written as a simulated run is (``stream.clip``, ``stream.logwriter``)."""
from __future__ import annotations

import datetime as _dt
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipcore import protocol as P
from strideclip.imports import checks
from strideclip.imports.axes import parse_axes, to_clip_frame
from strideclip.imports.counts import ACCEL_FS_G, GYRO_FS_DPS, nearest_rate, to_counts
from strideclip.imports.recording import Recording
from strideclip.stream import schema
from strideclip.stream.clip import make_hello, with_hellos
from strideclip.stream.logwriter import SessionLogWriter
from strideclip.stream.outputs import OutputFile, as_output, writing
from strideclip.stream.packets import encode_samples

SAMPLES_PER_PACKET = 64  # no radio between: packets as large as keeps records small (a clip sends 19)
IMPORTED_FW_VERSION = (0, 0, 0)  # no clip firmware made these samples
# 0, "simulated": the protocol's one code for no clip's chip (it has none for another sensor, and the clip's
# wire protocol is not changed for a log); the header's "imported" names the sensor, and replay, report and
# history show that instead
IMPORTED_IMU_MODEL = P.IMU_SIMULATED
SOURCE = "imported"  # the header's "source"
MIN_SEGMENT_S_FOR_OWN_RATE = 1.0  # a shorter segment is resampled at the recording's nominal rate
JITTER_PERIODS = 0.5  # times further than this from a regular clock: placed on one first (within a segment)
GAPS_LISTED = 20  # the header lists this many of the source's gaps (all are host events)
NO_GYRO = "no gyroscope in the recording"
NEED_GYRO = ("pelvic_rotation_deg", "pelvic_drop_deg", "pelvic_tilt_deg")  # blank without one (analysis.metrics)


@dataclass
class ClipSamples:
    """A recording as a clip would have sent it: ``blocks`` of (first sample index, (n, 6) int16
    counts) in order, a gap between two blocks wherever the source had one."""

    rate_hz: int
    blocks: list[tuple[int, np.ndarray]]
    timeline: checks.Timeline
    has_gyro: bool
    notes: list[str]

    @property
    def n_samples(self) -> int:
        return sum(len(c) for _, c in self.blocks)

    @property
    def gaps_idx(self) -> list[tuple[int, int]]:
        """The missing sample ranges, [start, end), between blocks."""
        return [(a + len(c), b) for (a, c), (b, _) in zip(self.blocks, self.blocks[1:])]

    @property
    def span_s(self) -> float:
        first, (last, counts) = self.blocks[0][0], self.blocks[-1]
        return (last + len(counts) - first) / self.rate_hz


def convert(rec: Recording, *, clip_rate_hz: int | None = None, rotation: np.ndarray | None = None) -> ClipSamples:
    """The recording's counts at ``clip_rate_hz`` (default: the detector's rate nearest the
    recording's), turned by ``rotation`` (imports.axes.to_clip_frame) where given. Raises
    ImportFormatError for a recording that cannot become a session (imports.checks)."""
    checks.check_values(rec)
    tl = checks.timeline(rec)
    checks.check_units(rec)
    rate_out = clip_rate_hz or nearest_rate(tl.rate_hz)
    has_gyro = rec.gyro_dps is not None
    acc = np.asarray(rec.accel_g, float)
    gyr = np.asarray(rec.gyro_dps, float) if has_gyro else np.zeros_like(acc)  # a dead gyro: no rates
    if rotation is not None:
        acc, gyr = acc @ rotation.T, gyr @ rotation.T
    t = np.asarray(rec.t_s, float)
    blocks: list[tuple[int, np.ndarray]] = []
    regularised = 0
    for a, b in tl.segments:
        ts = t[a:b]
        span = ts[-1] - ts[0]
        rate = (b - a - 1) / span if span >= MIN_SEGMENT_S_FOR_OWN_RATE else tl.rate_hz
        seg_acc, seg_gyr = acc[a:b], gyr[a:b]
        grid = ts[0] + np.arange(b - a) / rate
        if np.abs(ts - grid).max() > JITTER_PERIODS / rate:  # samples not on a steady clock: put them on one
            seg_acc = np.column_stack([np.interp(grid, ts, seg_acc[:, k]) for k in range(3)])
            seg_gyr = np.column_stack([np.interp(grid, ts, seg_gyr[:, k]) for k in range(3)])
            regularised += 1
        counts = to_counts(seg_acc, seg_gyr, rate, rate_out)
        first = int(round((ts[0] - t[0]) * rate_out))
        if blocks:  # a gap in the source is a gap in the log, however short
            first = max(first, blocks[-1][0] + len(blocks[-1][1]) + 1)
        blocks.append((first, counts))
    notes = []
    if regularised:
        notes.append(f"{regularised} segment(s) had irregular times (jitter over {JITTER_PERIODS:g} sample "
                     f"periods): placed on a steady clock by linear interpolation before resampling")
    if tl.repeated_rows:
        notes.append(f"{tl.repeated_rows} rows at repeated times left out (which copy is right cannot be known): "
                     f"gaps in the log")
    if tl.dropped_rows:
        notes.append(f"{tl.dropped_rows} lone sample(s) between gaps left out")
    stated = rec.nominal_rate_hz
    if stated and abs(stated - tl.rate_hz) > checks.STATED_RATE_TOLERANCE * stated:
        notes.append(f"the file states {stated:g} Hz but its times say {tl.rate_hz:.4g} Hz: the times are used")
    return ClipSamples(rate_out, blocks, tl, has_gyro, notes)


def _packets(clip: ClipSamples) -> list[tuple[int, bytes]]:
    """SAMPLES packets of every block, timed at their last sample (ms from the first)."""
    out, seq = [], 0
    for first, counts in clip.blocks:
        for k in range(0, len(counts), SAMPLES_PER_PACKET):
            part = counts[k:k + SAMPLES_PER_PACKET]
            t_ms = int(round((first + k + len(part)) * 1000 / clip.rate_hz))
            out.append((t_ms, encode_samples(seq & 0xFFFF, first + k, part)))
            seq += 1
    return out


def _started_at(rec: Recording, given: str | None, paths: list[Path]) -> tuple[str, str]:
    """When the recording started (ISO 8601, UTC) and how that is known: given, the file's own
    start, else the newest source file's modification time, else the import's time."""
    if given:
        return given, "given (--started-at)"
    if rec.start_utc and schema.start_time(rec.start_utc) is not None:
        return schema.start_time(rec.start_utc).isoformat(timespec="milliseconds"), "the file"
    if paths:
        mtime = _dt.datetime.fromtimestamp(int(max(os.stat(p).st_mtime for p in paths)), _dt.timezone.utc)
        if schema.start_time(mtime.isoformat()) is not None:
            return (mtime.isoformat(timespec="milliseconds"),
                    "the file's modification time (the file does not say when it started)")
    return (_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            "unknown: the time of the import stands in")


def provenance(rec: Recording, clip: ClipSamples, *, axes: str | None, mount_deg: tuple | None,
               start_known_from: str) -> dict:
    """The header's ``imported``: where the samples came from and what was done to them."""
    tl = clip.timeline
    if axes or mount_deg:
        stated = [f"--axes {axes}"] if axes else []
        stated += [f"--mount {' '.join(f'{a:g}' for a in mount_deg)}"] if mount_deg else []
        frame = ("turned into the clip's recommended orientation (x up, y left, z out of the back) from the stated "
                 f"mounting ({', '.join(stated)}); the body frame is still learnt from the motion")
    else:
        frame = "as recorded: the body frame is learnt from the motion (docs/frames.md)"
    out = {
        "format": rec.fmt, "sensor": rec.sensor, "app": rec.app, "files": list(rec.files), "units": dict(rec.units),
        "samples": rec.n_samples, "rate_hz": round(tl.rate_hz, 4), "stated_rate_hz": rec.nominal_rate_hz,
        "duration_s": round(float(rec.t_s[-1] - rec.t_s[0]), 3),
        "resampled_to_hz": clip.rate_hz, "full_scale": {"accel_g": ACCEL_FS_G, "gyro_dps": GYRO_FS_DPS},
        "gyro": clip.has_gyro, "not_measured": {} if clip.has_gyro else dict.fromkeys(NEED_GYRO, NO_GYRO),
        "frame": frame, "axes": axes, "mount_deg": list(mount_deg) if mount_deg else None,
        "gaps": len(tl.gaps), "gaps_listed": tl.gaps[:GAPS_LISTED], "repeated_rows": tl.repeated_rows,
        "started_at_from": start_known_from, "notes": list(rec.notes) + clip.notes,
    }
    return out


@dataclass
class Imported:
    """What ``write_log`` wrote: the log, the samples as the clip would have sent them, its header."""

    path: Path
    clip: ClipSamples
    header: dict


def write_log(rec: Recording, path: str | os.PathLike | OutputFile, *, force: bool = False, athlete: str | None = None,
              clip_rate_hz: int | None = None, axes: str | None = None,
              mount_deg: tuple[float, float, float] | None = None, started_at: str | None = None,
              source_paths: list[Path] | None = None) -> Imported:
    """Write ``rec`` as a session log at ``path`` (checked first, renamed into place when whole:
    strideclip.stream.outputs; an existing file is replaced only with ``force``). ``axes`` is an
    ``--axes`` mapping (imports.axes.parse_axes: ValueError if it is not one); ``source_paths``:
    the files read, whose time stands in for a start the recording does not give."""
    log = as_output(path, force=force)
    rotation = to_clip_frame(parse_axes(axes) if axes else None, mount_deg)
    clip = convert(rec, clip_rate_hz=clip_rate_hz, rotation=rotation)
    start, known_from = _started_at(rec, started_at, [Path(p) for p in source_paths or []])
    name = rec.sensor or f"{rec.fmt} recording"
    header = {
        "source": SOURCE, "started_at": start, "clip_name": name, "rate_hz": clip.rate_hz,
        "imported": provenance(rec, clip, axes=axes, mount_deg=mount_deg, start_known_from=known_from),
    }
    if athlete:
        header["athlete"] = athlete
    hello = make_hello(fw_version=IMPORTED_FW_VERSION, imu_model=IMPORTED_IMU_MODEL, rate_hz=clip.rate_hz,
                       accel_fs_g=ACCEL_FS_G, gyro_fs_dps=GYRO_FS_DPS, clip_id=zlib.crc32(name.encode()),
                       session_id=1, samples_per_packet=SAMPLES_PER_PACKET, battery_pct=P.BATTERY_UNKNOWN, flags=0)
    gap_events = [(int(round(b * 1000 / clip.rate_hz)), a, b, g)
                  for (a, b), g in zip(clip.gaps_idx, clip.timeline.gaps)]
    with writing(log) as (part,):
        with SessionLogWriter(part, header=header) as w:
            events = iter(gap_events)
            pending = next(events, None)
            for t_ms, pkt in with_hellos(hello, _packets(clip)):
                w.clip_packet(pkt, t_ms=t_ms)
                while pending is not None and pending[0] <= t_ms:  # said where the samples after it arrive
                    w.host_event("source_gap", t_ms=pending[0], start_idx=pending[1], end_idx=pending[2],
                                 why=pending[3]["why"], missing_s=pending[3]["missing_s"])
                    pending = next(events, None)
    return Imported(log.path, clip, header)
