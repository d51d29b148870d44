"""`strideclip import` (#25, docs/import.md): another sensor's recording as a session log every
command reads. The generic CSV from an example file (a simulated run as a phone in a waist belt
logs it: tests/data/import/csv/make_example.py), a round trip of a simulated session through a
100 Hz CSV, the public data sets through the generic CSV path against what `evaluate` reports,
and bad input, each through the real `strideclip` command where it concerns the command line."""
from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest

from conftest import require_data
from mpy import REPO, find_tool
from strideclip.errors import ImportFormatError
from strideclip.evaluation import datasets
from strideclip.evaluation import evaluate as ev
from strideclip.imports import generic_csv, to_log
from strideclip.imports.axes import parse_axes
from strideclip.imports.counts import nearest_rate, resample
from strideclip.imports.recording import Recording
from strideclip.stream.sclog import load_log

EXAMPLE_DIR = REPO / "tests" / "data" / "import" / "csv"
EXAMPLE = EXAMPLE_DIR / "phone_waist_100hz.csv"
EXAMPLE_COLUMNS = "t=time_ms:ms,ax=accX:mps2,ay=accY:mps2,az=accZ:mps2,gx=gyrX:rads,gy=gyrY:rads,gz=gyrZ:rads"
EXAMPLE_AXES = "x=right,y=up,z=back"  # the phone upright in the belt, its screen facing backwards
EXAMPLE_SECONDS = 45.0  # 5 s standing, 10 s walking, 25 s running, 5 s standing (make_example.py)


def _cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def _refused(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """One line on stderr, the exit code, no traceback; the line says ``words``."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    line = lines[-1]
    assert all(w in line for w in words), (line, words)
    return line


def _write_csv(path, t_s, accel_g, gyro_dps=None, *, t_fmt="{:.6f}") -> None:
    """A generic CSV with the default columns (t_s, acc_*, gyr_*), values written exactly."""
    with open(path, "w") as f:
        f.write("t_s,acc_x,acc_y,acc_z" + (",gyr_x,gyr_y,gyr_z" if gyro_dps is not None else "") + "\n")
        cols = [t_s, *np.asarray(accel_g).T] + ([*np.asarray(gyro_dps).T] if gyro_dps is not None else [])
        for row in zip(*cols):
            f.write(",".join([t_fmt.format(float(row[0])), *(repr(float(v)) for v in row[1:])]) + "\n")


def _replay(log) -> dict:
    return json.loads(_cli("replay", log, "--json").stdout)


# ---- the example file, through the command line --------------------------------------------

@pytest.fixture(scope="module")
def example_logs(tmp_path_factory):
    """The example imported with its mounting stated (--axes), and as recorded."""
    out = tmp_path_factory.mktemp("import")
    stated, learnt = out / "stated.sclog", out / "learnt.sclog"
    said = _cli("import", EXAMPLE, "--format", "csv", "--columns", EXAMPLE_COLUMNS, "--axes", EXAMPLE_AXES,
                "--athlete", "Ana", "-o", stated).stdout
    _cli("import", EXAMPLE, "--format", "csv", "--columns", EXAMPLE_COLUMNS, "-o", learnt)
    return stated, learnt, said


def test_the_example_file_is_what_its_script_makes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE_DIR / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.example() == EXAMPLE.read_text(), "rerun tests/data/import/csv/make_example.py"


def test_the_example_imports_with_its_duration_rate_count_and_provenance(example_logs):
    stated, _, said = example_logs
    log = load_log(stated)
    rows = len(EXAMPLE.read_text().splitlines()) - 1
    rate = nearest_rate(100)
    assert log.hello.rate_hz == log.header["rate_hz"] == rate == 104
    assert (log.hello.accel_fs_g, log.hello.gyro_fs_dps) == (16, 2000)
    assert log.gaps == [] and len(log.counts) == pytest.approx(rows * rate / 100, abs=1)
    assert (log.sample_idx[-1] + 1) / rate == pytest.approx(EXAMPLE_SECONDS, abs=0.02)
    imp = log.header["imported"]
    assert log.header["source"] == "imported" and log.header["athlete"] == "Ana"
    assert imp["format"] == "csv" and imp["files"] == [EXAMPLE.name] and imp["samples"] == rows
    assert imp["units"] == {"t": "ms", "accel": "m/s^2", "gyro": "rad/s"} and imp["rate_hz"] == pytest.approx(100)
    assert imp["gyro"] is True and imp["not_measured"] == {} and imp["axes"] == EXAMPLE_AXES
    assert f"{len(log.counts)} samples at 104 Hz" in said and EXAMPLE.name in said


def test_standing_reads_one_g_up_in_the_stated_frame_and_the_learnt_one(example_logs):
    stated, learnt, _ = example_logs
    still = slice(50, 400)  # inside the first 5 s, standing (clear of the resampling's edge)
    acc = load_log(stated).accel_g()[still].mean(axis=0)
    assert acc[0] == pytest.approx(1.0, abs=0.03)  # the clip's x is up once --axes is applied
    assert np.degrees(np.arccos(acc[0] / np.linalg.norm(acc))) < 15  # the pelvis stands nearly upright
    raw = load_log(learnt).accel_g()[still].mean(axis=0)
    assert np.linalg.norm(raw) == pytest.approx(1.0, abs=0.03) and raw[1] > 0.95  # as recorded: the phone's y up
    for log, up_axis in ((stated, 0), (learnt, 1)):  # the analysis finds up where the data says, either way
        up = np.array(_replay(log)["body_frame"]["up"])
        assert np.degrees(np.arccos(up[up_axis])) < 20, (log.name, up)


def test_replay_report_and_fit_export_run_on_the_imported_log(example_logs, tmp_path):
    stated, learnt, _ = example_logs
    summary = _replay(stated)
    assert summary["steps"] > 60 and summary["running_steps"] > 50 and summary["gaps"] == []
    assert 150 < summary["cadence_spm_median"] < 190 and summary["pelvic_rotation_deg_median"] > 3
    assert summary["imported"]["format"] == "csv" and summary["source"] == "imported"
    assert "imported from phone_waist_100hz.csv (csv)" in _cli("replay", learnt).stdout
    html, fit = tmp_path / "r.html", tmp_path / "r.fit"
    _cli("report", stated, "-o", html, "--no-history")
    page = html.read_text()
    assert 'id="imported"' in page and EXAMPLE.name in page
    _cli("export", stated, "--format", "fit", "-o", fit)
    data = fit.read_bytes()
    assert data[8:12] == b".FIT" and len(data) > 1000


# ---- a round trip: a simulated session, as a 100 Hz CSV, imported again ---------------------

def _smoothed_cadence(log, tmp_path) -> float:
    """The session's cadence as the host shows it (each running step's smoothed cadence, median)."""
    table = tmp_path / f"{log.stem}.steps.csv"
    _cli("replay", log, "--steps-csv", table)
    rows = [r for r in csv.DictReader(open(table)) if r["running"] == "1" and r["cadence_smoothed_spm"]]
    return float(np.median([float(r["cadence_smoothed_spm"]) for r in rows]))


@pytest.mark.parametrize("seed,cadence,rate,mount", [(4, 171, 208, (20, -30, 45)), (5, 182, 416, (170, 10, -90)),
                                                     (6, 164, 104, (0, 0, 0)), (7, 176, 208, (-10, 15, 180))])
def test_a_simulated_session_through_a_100hz_csv_keeps_its_cadence_and_rotation(tmp_path, seed, cadence, rate, mount):
    original, imported, samples = tmp_path / "sim.sclog", tmp_path / "back.sclog", tmp_path / "sim100.csv"
    _cli("simulate", "--minutes", 4, "--seed", seed, "--cadence-spm", cadence, "--rate-hz", rate, "--drop-prob", 0,
         "--mount", *mount, "-o", original)
    log = load_log(original)
    accel, gyro = resample(log.accel_g(), rate, 100), resample(log.gyro_dps(), rate, 100)
    _write_csv(samples, np.arange(len(accel)) / 100, accel, gyro, t_fmt="{:.2f}")
    _cli("import", samples, "--format", "csv", "-o", imported)
    a, b = _replay(original), _replay(imported)
    assert b["rate_hz"] == 104 and b["steps"] == pytest.approx(a["steps"], abs=2)
    assert abs(b["cadence_spm_median"] - a["cadence_spm_median"]) <= 1.0  # the figure
    assert abs(b["cadence_spm_mean"] - a["cadence_spm_mean"]) <= 1.0
    assert abs(_smoothed_cadence(imported, tmp_path) - _smoothed_cadence(original, tmp_path)) <= 1.0
    assert abs(b["pelvic_rotation_deg_median"] - a["pelvic_rotation_deg_median"]) <= 1.0


# ---- the public data sets through the generic CSV path -------------------------------------

def _imported_counts(tmp_path, name: str, t_s, accel, gyro, rate_out: int) -> np.ndarray:
    """A recording written as a generic CSV, read back and imported: the log's counts."""
    samples, log_path = tmp_path / f"{name}.csv", tmp_path / f"{name}.sclog"
    _write_csv(samples, t_s, accel, gyro, t_fmt="{!r}")
    done = to_log.write_log(generic_csv.read([samples]), log_path, source_paths=[samples])
    assert done.clip.rate_hz == rate_out
    log = load_log(log_path)
    assert log.gaps == [] and log.sample_idx[0] == 0
    return log.counts


def _from_logs(found: list[np.ndarray]) -> ev.Detector:
    """A detector run on the imported logs' counts, in order, each checked against the counts
    evaluate makes itself: the same samples, hence the same contacts."""
    logs = iter(found)
    detector = ev.clipcore_detector(0)

    def run(counts: np.ndarray, rate: int):
        log_counts = next(logs)
        np.testing.assert_array_equal(log_counts, counts)
        return detector(log_counts, rate)

    return run


def _same_scores(a: dict, b: dict) -> None:
    a, b = dict(a), dict(b)
    a.pop("compute_s_per_hour"), b.pop("compute_s_per_hour")
    assert a == b


@pytest.mark.parametrize("name", ["alcantara", "voisard"])
def test_a_data_set_imported_as_csv_scores_as_evaluate_reports(tmp_path, name):
    require_data(datasets.ALCANTARA if name == "alcantara" else datasets.VOISARD)
    trials = datasets.load_alcantara() if name == "alcantara" else datasets.load_voisard()
    rate = nearest_rate(trials[0].rate_hz)  # 500 Hz -> 416, 100 Hz -> 104
    # Alcantara has no gyro (and no medio-lateral axis: a dead axis, as evaluate feeds it)
    found = [_imported_counts(tmp_path, f"{name}{k}", np.arange(len(tr.accel_g)) / tr.rate_hz, tr.accel_g,
                              None if name == "alcantara" else tr.gyro_dps, rate) for k, tr in enumerate(trials)]
    reported = ev.evaluate(name, rate_hz=rate)
    tol_s = ev.DEFAULT_TOLERANCE_MS[name] / 1000
    _same_scores(ev.evaluate_trials(trials, rate, tol_s, _from_logs(found)), {k: v for k, v in reported.items()
                                                                          if k not in ("dataset", "rate_hz")})
    assert reported["n_detected"] > 0.9 * reported["n_reference"]


def test_adeptdata_imported_as_csv_tracks_cadence_as_evaluate_reports(tmp_path):
    require_data(datasets.ADEPT)
    run = datasets.load_adept()
    counts = _imported_counts(tmp_path, "adept", np.arange(len(run.hip_g)) / run.rate_hz, run.hip_g, None, 104)
    reported = ev.evaluate("adeptdata", rate_hz=104)
    _same_scores(ev.evaluate_adept(104, _from_logs([counts])), {k: v for k, v in reported.items()
                                                                if k not in ("dataset", "rate_hz")})


def test_the_session_pipeline_finds_the_contacts_the_detector_finds_on_an_imported_log(tmp_path):
    """What replay, report and export use (session.replay.analyse) on an imported data-set trial."""
    from strideclip.session.replay import analyse

    require_data(datasets.VOISARD)
    for k, tr in enumerate(datasets.load_voisard(limit=3)):
        samples, log_path = tmp_path / f"v{k}.csv", tmp_path / f"v{k}.sclog"
        _write_csv(samples, np.arange(len(tr.accel_g)) / tr.rate_hz, tr.accel_g, tr.gyro_dps, t_fmt="{!r}")
        to_log.write_log(generic_csv.read([samples]), log_path)
        _, table = analyse(log_path)
        detected, _, _ = ev.clipcore_detector(104)(load_log(log_path).counts, 104)
        assert len(table) > 20 and np.array_equal(table["ic_idx"] / 104, detected)


# ---- gaps and repeated times --------------------------------------------------------------

def test_a_gap_and_a_repeated_time_become_the_logs_gaps_and_nothing_is_made_up(tmp_path):
    lines = EXAMPLE.read_text().splitlines()
    head, rows = lines[0], lines[1:]
    rows = rows[:1500] + rows[1530:]  # 0.3 s with no samples (a phone's logger stalled)
    cells = rows[3000].split(",")
    rows[3001] = ",".join([cells[0], *rows[3001].split(",")[1:]])  # two samples at one time
    samples, log_path = tmp_path / "gappy.csv", tmp_path / "gappy.sclog"
    samples.write_text("\n".join([head, *rows]) + "\n")
    said = _cli("import", samples, "--format", "csv", "--columns", EXAMPLE_COLUMNS, "-o", log_path).stdout
    log = load_log(log_path)
    assert len(log.gaps) == 2 and "2 gap(s) in the recording" in said
    (a0, a1), (b0, b1) = log.gaps
    assert (a1 - a0) / 104 == pytest.approx(0.30, abs=0.03)  # the stall's length, not filled
    assert b1 - b0 >= 1 and (b1 - b0) / 104 <= 0.035  # the two rows left out
    events = [e for _, e in log.host_events if e["event"] == "source_gap"]
    assert [(e["start_idx"], e["end_idx"], e["why"]) for e in events] == [(a0, a1, "time step"), (b0, b1, "repeated time")]
    assert len(log.counts) == pytest.approx((len(rows) - 2) * 104 / 100, abs=3)  # the rows there are, resampled
    assert log.sample_idx[-1] + 1 == len(log.counts) + (a1 - a0) + (b1 - b0)  # and nothing in the gaps
    assert log.header["imported"]["gaps"] == 2 and log.header["imported"]["repeated_rows"] == 2
    summary = _replay(log_path)
    assert summary["gaps"] == [list(g) for g in log.gaps] and summary["lost_packets"] == 0


# ---- bad input: one clear line, never a traceback ------------------------------------------

def test_a_file_that_is_not_the_format_named_is_refused(tmp_path):
    _refused(_cli("import", REPO / "tests" / "data" / "steady_208hz.sclog", "--format", "csv", "-o", tmp_path / "a.sclog",
                  ok=False), 1, "steady_208hz.sclog", "not a text file")
    _refused(_cli("import", EXAMPLE, "--format", "csv", "-o", tmp_path / "b.sclog", ok=False), 1,
             "missing column(s) t_s, acc_x", "it has: time_ms, accX")  # a table, not with the columns asked for
    assert not list(tmp_path.iterdir())  # nothing written


def test_mixed_units_are_refused(tmp_path):
    mixed = EXAMPLE_COLUMNS.replace("ay=accY:mps2", "ay=accY:g")
    _refused(_cli("import", EXAMPLE, "--format", "csv", "--columns", mixed, "-o", tmp_path / "a.sclog", ok=False), 2,
             "mixed units", "ax in mps2", "ay in g")
    said_g = EXAMPLE_COLUMNS.replace(":mps2", ":g")  # m/s^2 values read as g: 9.8 g standing
    _refused(_cli("import", EXAMPLE, "--format", "csv", "--columns", said_g, "-o", tmp_path / "b.sclog", ok=False), 1,
             "median |a|", "look like m/s^2")
    said_dps = EXAMPLE_COLUMNS.replace(":rads", ":dps")  # rad/s values read as deg/s
    _refused(_cli("import", EXAMPLE, "--format", "csv", "--columns", said_dps, "-o", tmp_path / "c.sclog", ok=False), 1,
             "gyroscope", "look like rad/s")
    assert not list(tmp_path.iterdir())


def test_a_recording_without_a_gyro_leaves_its_metrics_blank_and_says_why(tmp_path):
    no_gyro = ",".join(p for p in EXAMPLE_COLUMNS.split(",") if not p.startswith("g"))
    log_path, html = tmp_path / "nogyro.sclog", tmp_path / "nogyro.html"
    said = _cli("import", EXAMPLE, "--format", "csv", "--columns", no_gyro, "-o", log_path).stdout
    assert "no gyroscope: pelvic rotation, drop and tilt will be blank" in said
    log = load_log(log_path)
    assert not log.counts[:, 3:].any()  # a dead gyro, as a clip's would be: never made up
    summary = _replay(log_path)
    assert summary["steps"] > 60 and 150 < summary["cadence_spm_median"] < 190  # the rest is measured
    for metric in ("pelvic_rotation_deg", "pelvic_drop_deg", "pelvic_tilt_deg"):
        assert f"{metric}_median" not in summary
        assert summary["imported"]["not_measured"][metric] == "no gyroscope in the recording"
    assert "not measured: pelvic drop, pelvic rotation, pelvic tilt (no gyroscope in the recording)" in \
        _cli("replay", log_path).stdout
    _cli("report", log_path, "-o", html, "--no-history")
    assert "no gyroscope in the recording" in html.read_text()


def test_time_that_goes_backwards_is_refused_naming_the_line(tmp_path):
    lines = EXAMPLE.read_text().splitlines()
    t_before = int(lines[700].split(",")[0])
    lines[701] = ",".join([str(t_before - 5), *lines[701].split(",")[1:]])
    samples = tmp_path / "back.csv"
    samples.write_text("\n".join(lines) + "\n")
    _refused(_cli("import", samples, "--format", "csv", "--columns", EXAMPLE_COLUMNS, "-o", tmp_path / "a.sclog",
                  ok=False), 1, "back.csv", "line 702", "time goes backwards")


def test_a_rate_under_50_hz_is_refused(tmp_path):
    lines = EXAMPLE.read_text().splitlines()
    samples = tmp_path / "slow.csv"
    samples.write_text("\n".join([lines[0], *lines[1::3]]) + "\n")  # 33 Hz
    _refused(_cli("import", samples, "--format", "csv", "--columns", EXAMPLE_COLUMNS, "-o", tmp_path / "a.sclog",
                  ok=False), 1, "slow.csv", "33.3 Hz", "at least 50 Hz")


def test_options_are_checked_before_anything_is_read(tmp_path):
    out = tmp_path / "a.sclog"
    _refused(_cli("import", EXAMPLE, "--format", "csv", "--axes", "x=up,y=right,z=back", "-o", out, ok=False), 2,
             "mirror image")
    _refused(_cli("import", EXAMPLE, "--format", "csv", "--columns", "t=time_ms:furlongs,ax=a,ay=b,az=c", "-o", out,
                  ok=False), 2, "furlongs", "not a unit of t")
    _refused(_cli("import", EXAMPLE, "--format", "phyphox", "--rate-hz", 100, "-o", out, ok=False), 2,
             "--rate-hz", "only for --format csv")
    _refused(_cli("import", EXAMPLE, "--format", "csv", "-o", EXAMPLE, "--force", ok=False), 2,
             "a file this command reads: choose another -o")
    assert not out.exists()


# ---- the pieces -------------------------------------------------------------------------------

def test_column_mappings_and_their_refusals():
    m = generic_csv.parse_columns("t=Time (s),ax=Acc x:mps2,ay=#3:mps2,az=#4,gx=gx:rads,gy=gy,gz=gz")
    assert m["t"] == ("Time (s)", None) and m["ax"] == ("Acc x", "mps2") and m["ay"] == ("#3", "mps2")
    for bad, why in (("t=a,ax=b,ay=c", "missing az"), ("t=a,ax=b,ay=c,az=d,gx=e", "gyroscope axes"),
                     ("q=a", "KEY=COLUMN"), ("t=a,t=b", "twice"), ("ax=a:g,ay=b:mg,az=c:g", "mixed units")):
        with pytest.raises(ValueError, match=why):
            generic_csv.parse_columns(bad)


PHYPHOX_REAL = REPO / "tests" / "data" / "import" / "phyphox" / "acceleration_with_g_back_pocket.csv"
PHYPHOX_AS_CSV = ("t=Time (s),ax=Acceleration x (m/s^2):mps2,ay=Acceleration y (m/s^2):mps2,"
                  "az=Acceleration z (m/s^2):mps2")
DIALECTS = {  # the file's text -> the same table written another way
    "semicolon, decimal comma": lambda text: text.replace(",", ";").replace(".", ","),
    "tab": lambda text: text.replace(",", "\t"),
    "CRLF, a byte-order mark": lambda text: "\ufeff" + text.replace("\n", "\r\n"),
    "comments, empty lines, no last newline": lambda text: text.replace("\n", "\n# a comment\n\n", 3).rstrip("\n"),
}


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_the_generic_csv_and_a_vendors_reader_read_a_table_alike(dialect, tmp_path):
    """One parser (imports.columns) under every format: a real phyphox export in each dialect,
    read by the phyphox reader and by the generic CSV through a mapping of its headers, gives
    the file's own numbers and lines to both."""
    from strideclip.imports.formats import reader

    raw = np.loadtxt(PHYPHOX_REAL, delimiter=",", skiprows=1)
    path = tmp_path / "Raw Data.csv"
    path.write_bytes(DIALECTS[dialect](PHYPHOX_REAL.read_text()).encode())
    vendor, generic = reader("phyphox")([path]), generic_csv.read([path], columns=PHYPHOX_AS_CSV)
    for rec in (vendor, generic):
        assert rec.n_samples == len(raw)
        np.testing.assert_allclose(rec.accel_g * 9.80665, raw[:, 1:4], rtol=1e-12)
        np.testing.assert_allclose(rec.t_s, raw[:, 0] - raw[0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(vendor.lines, generic.lines)
    row = np.arange(len(raw))
    skipped = 2 * np.minimum(row + 1, 3) if dialect.startswith("comments") else 0  # a comment and an empty line
    np.testing.assert_array_equal(generic.lines, 2 + row + skipped)  # after the header and each of two rows


def test_empty_cells_are_nan_and_a_bad_one_is_named_with_its_line_and_column():
    from strideclip.imports import columns

    table = columns.parse_table("t;a;b;c\n0;1,5;;3\n1;;;\n;5;6;7\n", "x.csv", "x.csv")
    assert table.delimiter == ";" and table.decimal_comma and table.lines.tolist() == [2, 3, 4]
    np.testing.assert_array_equal(table.values, [[0, 1.5, np.nan, 3], [1, np.nan, np.nan, np.nan], [np.nan, 5, 6, 7]])
    with pytest.raises(ImportFormatError, match=r"x.csv, line 3: an empty \(or NaN\) cell in the b values"):
        table.filled(table.values[:, 2], "the b values", rows=np.array([1, 2]))
    with pytest.raises(ImportFormatError, match=r"x.csv, line 3: '1,0\.5' in column 'a' \(#2\) is not a number"):
        columns.parse_table('t,a\n0,1\n1,"1,0.5"\n', "x.csv", "x.csv")
    with pytest.raises(ImportFormatError, match=r"x.csv, line 3: 1 cells where the header names 2 \(.*cut short"):
        columns.parse_table("t,a\n0,1\n1", "x.csv", "x.csv")


def test_axes_turn_a_recording_into_the_clips_recommended_orientation():
    m = parse_axes("x=right,y=up,z=back")
    from strideclip.imports.axes import to_clip_frame

    turn = to_clip_frame(m, None)
    np.testing.assert_allclose(turn @ [0, 1, 0], [1, 0, 0])  # the phone's y (up) is the clip's x (up)
    np.testing.assert_allclose(turn @ [1, 0, 0], [0, -1, 0])  # its x (right) is minus the clip's y (left)
    assert to_clip_frame(None, None) is None
    np.testing.assert_allclose(to_clip_frame(None, (0, 0, 90)) @ [1, 0, 0], [0, 1, 0], atol=1e-12)  # yaw 90 deg
    for bad in ("x=up,y=up,z=back", "x=up,y=left", "x=up,y=left,z=sideways", "x=up,y=right,z=back"):
        with pytest.raises(ValueError):
            parse_axes(bad)


def test_a_stated_mount_turns_a_misaligned_sensor_back_into_the_recommended_orientation():
    from strideclip.imports.axes import to_clip_frame
    from strideclip.sim import Scenario, Segment, Sensor, simulate

    mount = (20.0, -30.0, 45.0)  # roll, pitch, yaw: as strideclip simulate --mount
    run = simulate(Scenario((Segment("stand", 4),), sensor=Sensor(rate_hz=208, mount_roll_deg=mount[0],
                                                                   mount_pitch_deg=mount[1], mount_yaw_deg=mount[2]),
                            seed=3))
    accel = run.counts[:, :3].astype(float) * run.hello.accel_ug_per_lsb / 1e6
    rec = Recording(t_s=np.arange(len(accel)) / 208, accel_g=accel, gyro_dps=None, fmt="csv", files=["m.csv"])

    def tilt_from_x(clip: to_log.ClipSamples) -> float:
        g = clip.blocks[0][1][100:-100, :3].astype(float).mean(axis=0)
        return float(np.degrees(np.arccos(g[0] / np.linalg.norm(g))))

    assert tilt_from_x(to_log.convert(rec)) > 30  # as recorded: gravity far from the clip's x
    assert tilt_from_x(to_log.convert(rec, rotation=to_clip_frame(None, mount))) < 10  # undone: x up again


def test_the_log_gets_the_detectors_nearest_rate_and_a_stated_one_on_request(tmp_path):
    t = np.arange(2000) / 500
    accel = np.column_stack([np.ones_like(t), 0.1 * np.sin(2 * np.pi * 2.8 * t), np.zeros_like(t)])
    rec = Recording(t_s=t, accel_g=accel, gyro_dps=None, fmt="csv", files=["x.csv"])
    assert to_log.convert(rec).rate_hz == 416
    assert to_log.convert(rec, clip_rate_hz=208).rate_hz == 208
    assert [nearest_rate(r) for r in (50, 100, 150, 200, 300, 1000)] == [104, 104, 104, 208, 208, 416]
    with pytest.raises(ImportFormatError, match="sample 3: the accelerometer value is not a number"):
        accel[2, 1] = np.nan
        to_log.convert(rec)


def test_evaluate_csv_reads_through_the_same_reader_with_a_time_column(tmp_path):
    """`evaluate csv --columns` with a time column (no --rate-hz), and a gap: cut there, as the import cuts it."""
    from strideclip.sim import Scenario, Segment, Sensor, simulate

    run = simulate(Scenario((Segment("stand", 3), Segment("run", 40, speed_mps=3.3)), sensor=Sensor(rate_hz=208), seed=9))
    accel = run.counts[:, :3].astype(float) * run.hello.accel_ug_per_lsb / 1e6
    t = np.arange(len(accel)) / 208
    keep = (t < 20) | (t > 20.5)  # half a second lost
    samples, reference = tmp_path / "s.csv", tmp_path / "r.csv"
    with open(samples, "w") as f:
        f.write("ms;ax;ay;az\n")
        f.write("".join(f"{ms:.3f};{a[0]:.5f};{a[1]:.5f};{a[2]:.5f}\n".replace(".", ",")
                        for ms, a in zip(t[keep] * 1000, accel[keep])))
    reference.write_text("t_s\n" + "\n".join(f"{x:.4f}" for x in run.steps["ic_t_s"]) + "\n")
    done = _cli("evaluate", "csv", "--samples", samples, "--reference", reference, "--columns",
                "t=ms:ms,ax=ax,ay=ay,az=az", "--json")
    out = json.loads(done.stdout)
    assert out["gaps"] == 1 and out["input_rate_hz"] == pytest.approx(208, abs=0.01)
    assert out["recall"] > 0.97 and out["precision"] > 0.99  # only the steps in the lost half second are missed
    _refused(_cli("evaluate", "csv", "--samples", samples, "--reference", reference, "--columns", "t=ms:ms,ax=ax",
                  ok=False), 2, "--columns", "missing ay, az")


def test_a_csv_without_a_header_is_read_by_column_numbers_past_its_comments(tmp_path):
    t = np.arange(600) / 200
    accel = np.column_stack([0.05 * np.sin(2 * np.pi * 2.8 * t), np.zeros_like(t), np.ones_like(t)])
    samples = tmp_path / "logger.tsv"
    samples.write_text("# exported by a logger\n# columns: time (us), az, ay, ax\n\n"
                       + "".join(f"{round(x * 1e6)}\t{a[2]:.4f}\t{a[1]:.4f}\t{a[0]:.4f}\n" for x, a in zip(t, accel)))
    rec = generic_csv.read([samples], columns="t=#1:us,ax=#4,ay=#3,az=#2")
    assert rec.n_samples == 600 and rec.gyro_dps is None and rec.lines[0] == 4
    np.testing.assert_allclose(rec.t_s, t, atol=1e-9)
    np.testing.assert_allclose(rec.accel_g, np.round(accel, 4))
    with pytest.raises(ImportFormatError, match="no header line"):
        generic_csv.read([samples], columns="t=time:us,ax=#4,ay=#3,az=#2")
    samples.write_text(samples.read_text().replace("\n30000\t1.0000\t", "\n30000\tone\t", 1))
    with pytest.raises(ImportFormatError, match=r"logger.tsv, line 10: 'one' in column #2 is not a number"):
        generic_csv.read([samples], columns="t=#1:us,ax=#4,ay=#3,az=#2")


def test_a_hostile_imported_header_is_made_plain_text_or_dropped(tmp_path):
    """The header's ``imported`` is printed by replay and report: its strings lose control
    characters (terminal escapes) at the reader's boundary; anything but an object is dropped."""
    from strideclip.stream.logwriter import SessionLogWriter
    from strideclip.stream.sclog import load_header

    for name, imported in (("escapes", {"files": ["\x1b[2Jrun.csv"], "not_measured": {"x\x07": "why\n"}}),
                           ("list", ["not", "an", "object"])):
        path = tmp_path / f"{name}.sclog"
        with SessionLogWriter(path, header={"imported": imported}):
            pass
        header = load_header(path)
        if name == "escapes":
            assert header["imported"] == {"files": ["[2Jrun.csv"], "not_measured": {"x": "why"}}
        else:
            assert "imported" not in header
