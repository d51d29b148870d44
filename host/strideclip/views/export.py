"""A session's steps in the tools runners and coaches already use.

- ``csv``: the per-step table (docs/metrics.md), one row per step, units in the column names;
- ``parquet``: the same table, typed, for pandas / polars / R (with the session's summary in
  the file's key-value metadata under ``strideclip``);
- ``fit``: a FIT activity with the running-dynamics fields (strideclip.views.fit).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable

import numpy as np

from strideclip.analysis.metrics import STEP_METRICS_DTYPE, write_step_table_csv
from strideclip.errors import ExportError, needs_extra
from strideclip.stream.outputs import OutputFile, as_output, writing

FORMATS = ("csv", "parquet", "fit")


def export_session(log_path: str | os.PathLike, out_path: str | os.PathLike | OutputFile, fmt: str, *,
                   distance_km: float | None = None, cue_settings: dict[int, int] | None = None,
                   progress: Callable[[int, int], None] | None = None, force: bool = False) -> tuple[dict, int]:
    """Run the log through the host pipeline and write its steps as ``fmt``; returns the summary
    and the rows written (csv, parquet: one per step; fit: one record per second). ``out_path``
    (a path or an OutputFile) is checked before the log is read and appears only when whole
    (strideclip.stream.outputs); ``force`` replaces what is there."""
    from strideclip.session.replay import analyse, session_start

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        needs_extra("pyarrow", "export")
    out = as_output(out_path, force=force)
    summary, table = analyse(log_path, cue_settings=cue_settings, progress=progress)
    if not summary["samples"]:
        raise ExportError(f"{log_path}: no samples in this log ({summary['log_damage']['summary']})")
    rows = len(table)
    with writing(out) as (part,):
        if fmt == "csv":
            write_step_table_csv(table, part)
        elif fmt == "parquet":
            write_step_table_parquet(table, part, summary)
        else:
            from strideclip.views.fit import per_second_records, session_fit

            started, _ = session_start(summary)
            part.write_bytes(session_fit(table, started_at=started, duration_s=summary["duration_s"],
                                         serial=fit_serial(summary["clip"]), distance_km=distance_km))
            rows = per_second_records(summary["duration_s"])
    return summary, rows


def fit_serial(clip: str | None) -> int:
    """The FIT file's serial number (a uint32z): a clip's own id when its name is the one it
    gives its flash logs (``clip-`` and 8 hex digits), else 0 (none): BLE names are free text."""
    match = re.fullmatch(r"clip-([0-9a-f]{8})", clip or "")
    return int(match[1], 16) if match else 0


def write_step_table_parquet(table: np.ndarray, path: str | os.PathLike, summary: dict | None = None) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # NaN (a value the data could not support) becomes null, as the empty cell in the CSV
    cols = {name: pa.array(table[name], from_pandas=True) for name in STEP_METRICS_DTYPE.names}
    meta = {"strideclip": json.dumps({k: v for k, v in (summary or {}).items() if k != "host_events"})}
    t = pa.table(cols).replace_schema_metadata(meta)
    with open(path, "xb") as f:  # never overwrite
        pq.write_table(t, f)
