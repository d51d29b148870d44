"""strideclip export: the per-step table as CSV and Parquet, and a FIT activity an independent
FIT reader (Garmin's own SDK) decodes with the running-dynamics fields."""
import csv
import datetime as dt
import json
import subprocess

import numpy as np
import pytest

from mpy import REPO, find_tool
from strideclip.analysis.metrics import STEP_METRICS_DTYPE
from strideclip.session.pipeline import Session
from strideclip.session.replay import replay
from strideclip.views.fit import fit_crc

LOG = REPO / "tests" / "data" / "steady_208hz.sclog"


@pytest.fixture(scope="module")
def steps():
    session = Session()
    summary = replay(LOG, session=session)
    return summary, session.step_table()


def _export(tmp_path, fmt, *extra):
    out = tmp_path / f"run.{fmt}"
    done = subprocess.run([find_tool("strideclip"), "export", LOG, "--format", fmt, "-o", out, *map(str, extra)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def test_csv_and_parquet_hold_every_step_with_unknowns_empty(tmp_path, steps):
    import pyarrow.parquet as pq

    summary, table = steps
    rows = list(csv.DictReader(open(_export(tmp_path, "csv"))))
    pt = pq.read_table(_export(tmp_path, "parquet"))
    assert len(rows) == pt.num_rows == len(table) > 100
    assert pt.schema.names == list(STEP_METRICS_DTYPE.names) == list(rows[0])
    for name in ("ic_idx", "side", "running", "cadence_spm", "peak_vertical_g", "pelvic_rotation_deg", "contact_ms"):
        col = pt.column(name).to_numpy(zero_copy_only=False)
        want = table[name]
        finite = np.isfinite(want.astype(float))
        np.testing.assert_allclose(col[finite].astype(float), want[finite], rtol=1e-12)
        assert pt.column(name).null_count == int((~finite).sum())  # NaN -> null, as the empty CSV cell
        assert [r[name] == "" for r in rows] == list(~finite)
    assert json.loads(pt.schema.metadata[b"strideclip"])["steps"] == summary["steps"]


def test_fit_activity_decodes_with_garmins_sdk_and_carries_the_running_dynamics(tmp_path, steps):
    from garmin_fit_sdk import Decoder, Stream

    summary, table = steps
    fit = _export(tmp_path, "fit", "--distance-km", 1.5)
    data = fit.read_bytes()
    assert data[8:12] == b".FIT" and fit_crc(data) == 0  # the trailing CRC makes the whole file check to 0
    decoder = Decoder(Stream.from_byte_array(bytearray(data)))
    assert decoder.is_fit() and decoder.check_integrity()
    decoder = Decoder(Stream.from_byte_array(bytearray(data)))
    msgs, errors = decoder.read()
    assert errors == []
    (file_id,), (session,), (lap,), (activity,) = (msgs[k] for k in ("file_id_mesgs", "session_mesgs", "lap_mesgs",
                                                                     "activity_mesgs"))
    start = dt.datetime.fromisoformat(summary["started_at"]).astimezone(dt.timezone.utc)
    assert file_id["type"] == "activity" and session["sport"] == "running"
    assert session["start_time"] == start and activity["num_sessions"] == 1
    assert session["total_elapsed_time"] == pytest.approx(summary["duration_s"], abs=1.0)
    assert session["total_distance"] == pytest.approx(1500) and lap["total_distance"] == pytest.approx(1500)

    records = msgs["record_mesgs"]
    assert len(records) == int(np.ceil(summary["duration_s"]))
    assert records[0]["timestamp"] == start + dt.timedelta(seconds=1)
    run = table[table["running"] == 1]
    running_s = (run["t_s"][0] + 2, run["t_s"][-1] - 2)  # records well inside the run
    inside = [r for r in records if running_s[0] <= (r["timestamp"] - start).total_seconds() <= running_s[1]]
    assert len(inside) > 0.8 * (running_s[1] - running_s[0])
    spm = np.array([2 * (r["cadence"] + r["fractional_cadence"]) for r in inside])  # FIT counts strides
    assert np.median(spm) == pytest.approx(summary["cadence_spm_median"], abs=1.0)
    assert np.median([r["stance_time"] for r in inside]) == pytest.approx(summary["contact_ms_median"], abs=5)
    assert np.median([r["vertical_oscillation"] for r in inside]) == pytest.approx(
        10 * summary["vertical_oscillation_cm_median"], abs=3)
    assert np.median([r["stance_time_balance"] for r in inside]) == pytest.approx(50, abs=2)
    assert 40 < np.median([r["stance_time_percent"] for r in inside]) < 75
    assert records[-1]["distance"] == pytest.approx(1500, abs=1)
    assert session["avg_stance_time"] == pytest.approx(summary["contact_ms_median"], abs=5)
    # before the first step there is no cadence: readers get nothing, not a made-up zero
    assert "cadence" not in records[0] or records[0]["cadence"] is None


def test_export_refuses_an_existing_file_and_names_a_bad_log(tmp_path):
    out = tmp_path / "keep.fit"
    out.write_bytes(b"mine")
    done = subprocess.run([find_tool("strideclip"), "export", LOG, "--format", "fit", "-o", out],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "keep.fit exists" in done.stderr and out.read_bytes() == b"mine"  # docs/cli.md
    bad = tmp_path / "bad.sclog"
    bad.write_bytes(b"SCLOG\x01\r\n" + b"\x00" * 100)
    done = subprocess.run([find_tool("strideclip"), "export", bad, "--format", "csv", "-o", tmp_path / "b.csv"],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "bad.sclog" in done.stderr and not (tmp_path / "b.csv").exists()
