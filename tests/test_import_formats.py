"""The vendors' readers of `strideclip import` (#25, docs/import.md#formats): phyphox, MetaMotion
(MetaBase), Movesense, Xsens DOT. Each on its real example file (tests/data/import/<format>/SOURCE.md
says where each came from and under which licence), checked against the file read independently
and against physics (a quiet second reads 1 g, gravity mostly on one axis); on files written in
the vendor's format from a simulated run (formats and variants no licensed real file was found
for), whose session must match the simulator's own; on bad input; and end to end through the CLI."""
import datetime as dt
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mpy import REPO, find_tool
from strideclip.errors import ImportFormatError
from strideclip.imports.counts import resample
from strideclip.imports.formats import reader
from strideclip.session.pipeline import Session
from strideclip.session.replay import replay
from strideclip.sim import simulate, steady_run, write_log
from strideclip.sim.sensor import accel_ug_per_lsb, gyro_mdps_per_lsb_q8

DATA = REPO / "tests" / "data" / "import"
PHYPHOX_ACC = DATA / "phyphox" / "acceleration_with_g_back_pocket.csv"
PHYPHOX_GYRO = DATA / "phyphox" / "gyroscope.csv"
MOVESENSE = DATA / "movesense" / "imu9_sbem2json.json"
XSENS = DATA / "xsens-dot" / "Pelvis_20210820_202113_836.csv"
METAMOTION = sorted((DATA / "metamotion").glob("*.csv"))
REAL = {"phyphox": [PHYPHOX_ACC], "movesense": [MOVESENSE], "xsens-dot": [XSENS]}
EXAMPLES = {**REAL, "metamotion": METAMOTION}
G = 9.80665
RAD = 180 / np.pi
START_MS = 1767250800000  # 2026-01-01T07:00:00Z, the simulator's start
MAC = "C0FFEE123456"


def quiet_second(t_s, accel_g):
    """The stillest second (least spread of |a|): its mean |a| in g and the dominant axis's share."""
    norm = np.linalg.norm(accel_g, axis=1)
    starts = np.arange(0, t_s[-1] - 1, 0.1)
    windows = [(t_s >= s) & (t_s < s + 1) for s in starts]
    best = min(windows, key=lambda w: norm[w].std())
    mean = accel_g[best].mean(axis=0)
    return float(norm[best].mean()), float(np.abs(mean).max() / np.linalg.norm(mean))


def cli(*args, ok=True):
    done = subprocess.run([find_tool("strideclip"), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr or done.stdout
    return done


# --- the simulated run the synthetic files are written from ------------------------------------

@pytest.fixture(scope="module")
def run():
    return simulate(steady_run(1.5, seed=21, rate_hz=208))


@pytest.fixture(scope="module")
def physical(run):
    """The run's samples in g and deg/s, sensor frame, at its 208 Hz."""
    c, s = run.counts.astype(float), run.scenario.sensor
    return c[:, :3] * accel_ug_per_lsb(s) / 1e6, c[:, 3:] * gyro_mdps_per_lsb_q8(s) / 256000


@pytest.fixture(scope="module")
def original(run, tmp_path_factory):
    """The simulated session's medians, replayed from its own log."""
    log = tmp_path_factory.mktemp("orig") / "run.sclog"
    write_log(run, log)
    return medians(log)


def medians(log):
    session = Session()
    replay(log, session=session)
    steps = session.step_table()
    running = steps[steps["running"] == 1]
    return {k: float(np.nanmedian(running[k])) for k in ("cadence_spm", "pelvic_rotation_deg")}


def write_metabase(folder, accel_g, gyro_dps, rate_in, *, acc_hz=100, gyro_hz=200, gyro_delay_ms=15, span=None):
    """The MetaBase app's two CSVs (format from MbientLab's MetaBase source, docs/import.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for sensor, values, hz, delay, unit in (("Accelerometer", accel_g, acc_hz, 0, "g"),
                                            ("Gyroscope", gyro_dps, gyro_hz, gyro_delay_ms, "deg/s")):
        data = resample(values, rate_in, hz)
        period_ms = 1000 / hz
        first = int(round(delay / period_ms))
        rows = range(first, len(data)) if span is None else range(int(span[0] * hz) + first, int(span[1] * hz))
        t0 = START_MS + (rows[0] * period_ms if span else 0)
        path = folder / f"Run_MetaWear_2026-01-01T07.00.00.000_{MAC}_{sensor}_{hz:.3f}Hz_1.7.3.csv"
        lines = [f"epoc (ms),timestamp (+0000),elapsed (s),x-axis ({unit}),y-axis ({unit}),z-axis ({unit})"]
        for k in rows:
            ms = START_MS + int(round(k * period_ms))
            stamp = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%dT%H.%M.%S.%f")[:-3]
            lines.append(f"{ms},{stamp},{(ms - t0) / 1000:.3f}," + ",".join(f"{v:.3f}" for v in data[k]))
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def write_movesense_meas(path, accel_g, gyro_dps, rate_in, *, hz=104, per_packet=8, drop_packet=None):
    """The Logbook's JSON: {"Meas": {"IMU6": [{Timestamp, ArrayAcc, ArrayGyro}]}} (m/s^2, deg/s)."""
    acc, gyr = resample(accel_g, rate_in, hz) * G, resample(gyro_dps, rate_in, hz)
    packets = []
    for j, k in enumerate(range(0, len(acc) - per_packet + 1, per_packet)):
        if j == drop_packet:
            continue
        packets.append({"Timestamp": 5000 + int(round(k * 1000 / hz)),
                        "ArrayAcc": [dict(zip("xyz", map(float, v))) for v in acc[k:k + per_packet]],
                        "ArrayGyro": [dict(zip("xyz", map(float, v))) for v in gyr[k:k + per_packet]]})
    path.write_text(json.dumps({"Meas": {"IMU6": packets}}))
    return path


def write_xsens(path, accel_g, gyro_dps, rate_in, *, hz=120, first_us=2 ** 32 - 30_000_000):
    """An Xsens DOT app export in a mode with Acc and Gyr (the user manual's columns), its
    SampleTimeFine wrapping 30 s in."""
    acc, gyr = resample(accel_g, rate_in, hz) * G, resample(gyro_dps, rate_in, hz)
    lines = ["sep=,", "DeviceTag:,Sim", "FirmwareVersion:,2.6.0", "AppVersion:,2023.6.0", "SyncStatus:,Unsynced",
             f"OutputRate:,{hz}Hz", "FilterProfile:,General", "Measurement Mode:,Custom Mode 5",
             "StartTime:,2026-01-01 08:00:00.000 +0100", "© Movella", "",
             "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z,Status"]
    for k in range(len(acc)):
        fine = (first_us + int(round(k * 1e6 / hz))) % 2 ** 32
        lines.append(f"{k + 1},{fine}," + ",".join(f"{v:.6f}" for v in (*acc[k], *gyr[k])) + ",0")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- phyphox --------------------------------------------------------------------------------------

def test_phyphox_real_acceleration_with_g_reads_as_the_file_has_it():
    raw = np.loadtxt(PHYPHOX_ACC, delimiter=",", skiprows=1)
    rec = reader("phyphox")([PHYPHOX_ACC])
    assert rec.n_samples == len(raw) and rec.fmt == "phyphox" and rec.files == [PHYPHOX_ACC.name]
    assert rec.t_s[-1] == pytest.approx(raw[-1, 0] - raw[0, 0]) and rec.t_s[0] == 0
    assert 1 / np.median(np.diff(rec.t_s)) == pytest.approx(1 / np.median(np.diff(raw[:, 0])))
    np.testing.assert_allclose(rec.accel_g, raw[:, 1:4] / G)
    assert rec.gyro_dps is None and rec.units["accel"] == "m/s^2"
    assert list(rec.lines[:2]) == [2, 3]
    mean_g, share = quiet_second(rec.t_s, rec.accel_g)
    assert mean_g == pytest.approx(1.0, rel=0.05) and share > 0.9


def test_phyphox_real_gyroscope_alone_is_refused_and_joins_within_its_coverage(tmp_path):
    """The two real files are of two recordings; put in one folder they stand for one experiment's
    export: the gyro (rad/s) is interpolated onto the accelerometer's times where it has data, the
    accelerometer's samples after it ends are left out, and the notes say so."""
    with pytest.raises(ImportFormatError, match="gyroscope and no accelerometer"):
        reader("phyphox")([PHYPHOX_GYRO])
    folder = tmp_path / "export"
    folder.mkdir()
    for p in (PHYPHOX_ACC, PHYPHOX_GYRO):
        shutil.copy(p, folder / p.name)
    rec = reader("phyphox")([folder])
    acc, gyr = np.loadtxt(PHYPHOX_ACC, delimiter=",", skiprows=1), np.loadtxt(PHYPHOX_GYRO, delimiter=",", skiprows=1)
    inside = (acc[:, 0] >= gyr[0, 0]) & (acc[:, 0] <= gyr[-1, 0])
    assert rec.n_samples == inside.sum() < len(acc) and rec.units["gyro"] == "rad/s"
    expected = np.column_stack([np.interp(acc[inside, 0], gyr[:, 0], gyr[:, k]) for k in (1, 2, 3)]) * RAD
    np.testing.assert_allclose(rec.gyro_dps, expected, atol=1e-9)
    assert any("left out" in n for n in rec.notes)
    assert rec.files == [f"export/{PHYPHOX_ACC.name}", f"export/{PHYPHOX_GYRO.name}"]


@pytest.mark.parametrize("delimiter,decimal", [(";", "."), (";", ","), ("\t", "."), ("\t", ",")])
def test_phyphox_csv_dialects_and_the_newer_sensor_headers(tmp_path, delimiter, decimal):
    """The app's other CSV exports of the same real data, with Accelerometer.csv's bare-axis header."""
    raw = PHYPHOX_ACC.read_text().splitlines()
    head = delimiter.join(['"Time (s)"', '"X (m/s^2)"', '"Y (m/s^2)"', '"Z (m/s^2)"'])
    rows = [delimiter.join(line.split(",")[:4]).replace(".", decimal) for line in raw[1:]]
    path = tmp_path / "Accelerometer.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    rec, ref = reader("phyphox")([path]), reader("phyphox")([PHYPHOX_ACC])
    np.testing.assert_allclose(rec.accel_g, ref.accel_g)
    np.testing.assert_allclose(rec.t_s, ref.t_s)
    linear = tmp_path / "Linear Accelerometer.csv"
    linear.write_text(path.read_text())
    with pytest.raises(ImportFormatError, match="without g"):
        reader("phyphox")([linear])


def test_phyphox_export_archive_reads_as_its_unpacked_folder(tmp_path):
    folder = tmp_path / "Acceleration with g 2024-05-01 10-00-00"
    (folder / "meta").mkdir(parents=True)
    shutil.copy(PHYPHOX_ACC, folder / "Raw Data.csv")
    (folder / "meta" / "device.csv").write_text('"property","value"\n"version","1.1.16"\n"build","1011602"\n'
                                                '"deviceModel","SM-F946N"\n"deviceBrand","samsung"\n')
    (folder / "meta" / "time.csv").write_text('"event","experiment time","system time","system time text"\n'
                                              '"START",0.0E0,1.714557600E9,"2024-05-01 10:00:00.000 UTC+00:00"\n')
    archive = shutil.make_archive(str(tmp_path / "export"), "zip", folder)
    from_zip, from_folder = reader("phyphox")([archive]), reader("phyphox")([folder])
    np.testing.assert_array_equal(from_zip.accel_g, from_folder.accel_g)
    assert from_zip.sensor == from_folder.sensor == "samsung SM-F946N" and from_zip.app == "phyphox 1.1.16 (build 1011602)"
    t0 = float(PHYPHOX_ACC.read_text().splitlines()[1].split(",")[0])
    started = dt.datetime.fromisoformat(from_zip.start_utc).timestamp()
    assert started == pytest.approx(1714557600 + t0, abs=1e-3)
    # a copy damaged in the middle: one line naming the file in the archive, not a zip library's traceback
    data = bytearray(Path(archive).read_bytes())
    data[len(data) // 3:len(data) // 3 + 64] = bytes(64)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ImportFormatError, match=r"damaged\.zip/.*cannot be unpacked"):
        reader("phyphox")([damaged])


def _phyphox_experiment(folder, t_s, values, names, unit, start_epoch):
    folder.mkdir(parents=True)
    (folder / "meta").mkdir()
    lines = [",".join(f'"{n} ({u})"' for n, u in zip(names, ["s", unit, unit, unit]))]
    lines += [",".join(f"{v:.9E}" for v in (t, *row)) for t, row in zip(t_s, values)]
    (folder / "Raw Data.csv").write_text("\n".join(lines) + "\n")
    (folder / "meta" / "time.csv").write_text('"event","experiment time","system time","system time text"\n'
                                              f'"START",0.000000000000000E0,{start_epoch:.15E},"-"\n')
    (folder / "meta" / "device.csv").write_text('"property","value"\n"version","1.2.0"\n"deviceModel","SimPhone"\n')


def test_phyphox_two_experiments_are_put_on_one_clock_by_meta_time(tmp_path, physical):
    """Acceleration with g and Gyroscope recorded as two experiments, the gyro's started 2.5 s
    later: meta/time.csv puts its samples back at the right moments."""
    accel_g, gyro_dps = (resample(x, 208, 100) for x in physical)
    t = np.arange(len(accel_g)) / 100
    later = t >= 2.5
    _phyphox_experiment(tmp_path / "acc", t, accel_g * G, ["Time", "Acceleration x", "Acceleration y",
                                                             "Acceleration z"], "m/s^2", 1767250800.0)
    _phyphox_experiment(tmp_path / "gyr", t[later] - 2.5, gyro_dps[later] / RAD, ["Time", "Gyroscope x", "Gyroscope y",
                                                                                  "Gyroscope z"], "rad/s", 1767250802.5)
    rec = reader("phyphox")([tmp_path / "acc", tmp_path / "gyr"])
    assert rec.n_samples == later.sum() and rec.sensor == "SimPhone" and rec.app.startswith("phyphox 1.2.0")
    np.testing.assert_allclose(rec.gyro_dps, gyro_dps[later], atol=1e-6)
    assert rec.start_utc == "2026-01-01T07:00:02.500+00:00"
    shutil.rmtree(tmp_path / "gyr" / "meta")
    with pytest.raises(ImportFormatError, match="cannot be put on one clock"):
        reader("phyphox")([tmp_path / "acc", tmp_path / "gyr"])


def test_phyphox_one_csv_with_both_sensors_each_after_its_time_column(tmp_path, physical):
    accel_g, gyro_dps = resample(physical[0], 208, 100), resample(physical[1], 208, 200)
    n = min(len(accel_g), len(gyro_dps) // 2)
    head = '"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)",' \
           '"Time (s)","Gyroscope x (rad/s)","Gyroscope y (rad/s)","Gyroscope z (rad/s)"'
    rows = []
    for k in range(2 * n):  # the gyro's column is twice as long: the accelerometer's cells end empty
        left = [f"{k / 100:.6f}", *(f"{v * G:.6f}" for v in accel_g[k])] if k < n else ["", "", "", ""]
        rows.append(",".join(left + [f"{k / 200:.6f}", *(f"{v / RAD:.8f}" for v in gyro_dps[k])]))
    path = tmp_path / "Raw Data.csv"
    path.write_text("\n".join([head, *rows]) + "\n")
    rec = reader("phyphox")([path])
    assert rec.n_samples == n and rec.files == ["Raw Data.csv"]
    np.testing.assert_allclose(rec.gyro_dps, gyro_dps[:2 * n:2][:n], atol=1e-4)


# --- MetaMotion (MetaBase) --------------------------------------------------------------------------

def test_metamotion_sample_reads_both_files_in_either_order():
    acc_path = next(p for p in METAMOTION if "Accelerometer" in p.name)
    gyr_path = next(p for p in METAMOTION if "Gyroscope" in p.name)
    acc = np.genfromtxt(acc_path, delimiter=",", skip_header=1, usecols=(0, 3, 4, 5))
    gyr = np.genfromtxt(gyr_path, delimiter=",", skip_header=1, usecols=(0, 3, 4, 5))
    one, other = reader("metamotion")([acc_path, gyr_path]), reader("metamotion")([gyr_path, acc_path])
    np.testing.assert_array_equal(one.accel_g, other.accel_g)
    inside = (acc[:, 0] >= gyr[0, 0]) & (acc[:, 0] <= gyr[-1, 0])
    assert one.n_samples == inside.sum() and one.nominal_rate_hz == 100.0
    np.testing.assert_allclose(one.t_s, (acc[inside, 0] - acc[inside, 0][0]) / 1000)
    np.testing.assert_allclose(one.accel_g, acc[inside, 1:])
    np.testing.assert_allclose(one.gyro_dps, np.column_stack([np.interp(acc[inside, 0], gyr[:, 0], gyr[:, k])
                                                              for k in (1, 2, 3)]))
    assert one.start_utc == dt.datetime.fromtimestamp(acc[inside, 0][0] / 1000, dt.timezone.utc).isoformat(
        timespec="milliseconds")
    assert MAC in one.sensor and one.units == {"t": "ms", "accel": "g", "gyro": "deg/s"}
    mean_g, share = quiet_second(one.t_s, one.accel_g)
    assert mean_g == pytest.approx(1.0, rel=0.05) and share > 0.9


def test_metamotion_refuses_what_is_not_the_raw_sensors(tmp_path, physical):
    acc_path, gyr_path = write_metabase(tmp_path / "a", *physical, 208, span=(0, 3))
    with pytest.raises(ImportFormatError, match="gyroscope and no accelerometer"):
        reader("metamotion")([gyr_path])
    linear = tmp_path / acc_path.name.replace("Accelerometer", "Linear Acceleration")
    linear.write_text(acc_path.read_text())
    with pytest.raises(ImportFormatError, match="Linear Acceleration"):
        reader("metamotion")([linear, gyr_path])
    other = tmp_path / gyr_path.name.replace(MAC, "0123456789AB")
    other.write_text(gyr_path.read_text())
    with pytest.raises(ImportFormatError, match="two sensors"):
        reader("metamotion")([acc_path, other])
    no_z = tmp_path / "no_z.csv"
    no_z.write_text("\n".join(",".join(line.split(",")[:5]) for line in acc_path.read_text().splitlines()) + "\n")
    with pytest.raises(ImportFormatError, match="no x-axis, y-axis, z-axis"):
        reader("metamotion")([no_z])


# --- Movesense ----------------------------------------------------------------------------------------

def test_movesense_real_datalogger_json_reads_each_packets_samples():
    doc = json.loads(MOVESENSE.read_text())
    packets = [s["MeasIMU9"] for s in doc["Samples"] if "MeasIMU9" in s]
    stamps = np.array([p["MeasIMU9"]["Timestamp"] for p in packets], float)
    acc = np.concatenate([np.column_stack([p["ArrayAcc"][0][k] for k in "xyz"]) for p in packets])
    gyr = np.concatenate([np.column_stack([p["ArrayGyro"][0][k] for k in "xyz"]) for p in packets])
    sizes = [len(p["ArrayAcc"][0]["x"]) for p in packets]
    rec = reader("movesense")([MOVESENSE])
    assert rec.n_samples == len(acc) == sum(sizes) and rec.units["gyro"] == "deg/s"
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    np.testing.assert_allclose(rec.t_s[firsts], (stamps - stamps[0]) / 1000)  # each packet starts at its Timestamp
    assert 1 / np.median(np.diff(rec.t_s)) == pytest.approx(sizes[0] * 1000 / np.median(np.diff(stamps)))
    np.testing.assert_allclose(rec.accel_g, acc / G)
    np.testing.assert_allclose(rec.gyro_dps, gyr)
    assert np.all(np.diff(rec.t_s) > 0)
    mean_g, share = quiet_second(rec.t_s, rec.accel_g)
    assert mean_g == pytest.approx(1.0, rel=0.05) and share > 0.9


def test_movesense_separate_resources_and_a_lost_packet(tmp_path, physical):
    path = write_movesense_meas(tmp_path / "log.json", *physical, 208, drop_packet=40)
    rec = reader("movesense")([path])
    step = np.diff(rec.t_s)
    assert step.max() == pytest.approx(9 / 104, rel=0.02) and (step > 2 / 104).sum() == 1  # the lost packet's gap
    acc = resample(physical[0], 208, 104)
    samples = {"Samples": [{"TimeDetailed": {"relativeTime": 5000, "utcTime": START_MS * 1000}}]}
    for k in range(0, 400, 4):  # sbem2json's shape: resources in turn, arrays as {x: [...], ...}
        ms = 5000 + int(round(k * 1000 / 104))
        samples["Samples"].append({"MeasAcc": {"MeasAcc": {"Timestamp": ms}, "ArrayAcc": [
            {a: [float(v) for v in acc[k:k + 4, i] * G] for i, a in enumerate("xyz")}]}})
    for k in range(0, 400, 4):
        ms = 5000 + int(round(k * 1000 / 104)) + 2
        samples["Samples"].append({"MeasGyro": {"MeasGyro": {"Timestamp": ms}, "ArrayGyro": [
            {a: [1.0, 1.0, 1.0, 1.0] for a in "xyz"}]}})
    notes = [{"Uri": "174630000123/Meas/IMU6/104", "Method": "PUT", "Body": packet}
             for packet in json.loads(path.read_text())["Meas"]["IMU6"]]
    (tmp_path / "notifications.json").write_text(json.dumps(notes))
    streamed = reader("movesense")([tmp_path / "notifications.json"])
    np.testing.assert_array_equal(streamed.accel_g, rec.accel_g)
    assert streamed.nominal_rate_hz == 104 and streamed.sensor == "Movesense 174630000123"
    split = tmp_path / "split.json"
    split.write_text(json.dumps(samples))
    rec = reader("movesense")([split])
    started = dt.datetime.fromisoformat(rec.start_utc).timestamp() * 1000 - START_MS
    assert 0 < started < 10 and rec.n_samples < 400  # the gyro starts 2 ms late: the first sample is left out
    np.testing.assert_allclose(rec.gyro_dps, 1.0)
    assert any("interpolated" in n for n in rec.notes) and any("left out" in n for n in rec.notes)


# --- Xsens DOT ---------------------------------------------------------------------------------------

def test_xsens_real_fusion_export_rebuilds_the_sensor_frame_acceleration():
    lines = XSENS.read_text(encoding="utf-8").splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("PacketCounter"))
    raw = np.loadtxt(lines[at + 1:], delimiter=",")
    head = lines[at].split(",")
    quat = raw[:, [head.index(c) for c in ("Quat_X", "Quat_Y", "Quat_Z", "Quat_W")]]
    free = raw[:, [head.index(f"FreeAcc_{a}") for a in "XYZ"]]
    rec = reader("xsens-dot")([XSENS])
    assert rec.n_samples == len(raw) and rec.gyro_dps is None and rec.nominal_rate_hz == 60
    fine = raw[:, head.index("SampleTimeFine")]
    np.testing.assert_allclose(rec.t_s, (fine - fine[0]) / 1e6)
    expected = Rotation.from_quat(quat).inv().apply(free + [0, 0, G]) / G  # an independent rotation
    np.testing.assert_allclose(rec.accel_g, expected, atol=1e-6)
    assert rec.start_utc == "2021-08-20T12:21:13.835+00:00"  # StartTime 20:21:13_835 GMT+8
    mean_g, share = quiet_second(rec.t_s, rec.accel_g)
    assert mean_g == pytest.approx(1.0, rel=0.05) and share > 0.9
    assert any("no angular rate" in n for n in rec.notes)


def test_xsens_euler_and_quaternion_exports_agree(tmp_path):
    rng = np.random.default_rng(3)
    rot = Rotation.random(50, random_state=rng)
    euler = rot.as_euler("ZYX", degrees=True)[:, ::-1]  # Xsens: roll X, pitch Y, yaw Z, R = Rz Ry Rx
    quat = rot.as_quat()[:, [3, 0, 1, 2]]
    free = rng.normal(0, 0.5, (50, 3))
    for name, cols, values in (("e", "Euler_X,Euler_Y,Euler_Z", euler), ("q", "Quat_W,Quat_X,Quat_Y,Quat_Z", quat)):
        rows = [f"{k + 1},{k * 16667}," + ",".join(f"{v:.9f}" for v in (*values[k], *free[k])) + ",0" for k in range(50)]
        (tmp_path / f"{name}.csv").write_text("\n".join([f"PacketCounter,SampleTimeFine,{cols},FreeAcc_X,FreeAcc_Y,"
                                                         f"FreeAcc_Z,Status", *rows]) + "\n")
    by_euler, by_quat = (reader("xsens-dot")([tmp_path / f"{n}.csv"]) for n in "eq")
    expected = rot.inv().apply(free + [0, 0, G]) / G
    np.testing.assert_allclose(by_euler.accel_g, expected, atol=1e-7)
    np.testing.assert_allclose(by_quat.accel_g, expected, atol=1e-7)


def test_xsens_sample_time_fine_wraps_and_acc_gyr_are_read_as_they_are(tmp_path, physical):
    path = write_xsens(tmp_path / "custom.csv", *physical, 208)
    rec = reader("xsens-dot")([path])
    acc = resample(physical[0], 208, 120)
    assert rec.n_samples == len(acc) and np.all(np.diff(rec.t_s) > 0)
    np.testing.assert_allclose(rec.t_s, np.round(np.arange(len(acc)) * 1e6 / 120) / 1e6, atol=1e-9)
    np.testing.assert_allclose(rec.accel_g, acc, atol=1e-6)
    assert rec.start_utc == "2026-01-01T07:00:00.000+00:00" and any("wrapped 1 time" in n for n in rec.notes)


def test_xsens_rate_quantities_dv_dq_give_the_same_as_acc_gyr(tmp_path, physical):
    """dv (m/s over one output period) and dq (the orientation increment over it), as the DOT user
    manual defines them, read as the acceleration and angular rate they integrate."""
    hz = 60
    acc, gyr = resample(physical[0], 208, hz)[:600] * G, resample(physical[1], 208, hz)[:600]
    dq = Rotation.from_rotvec(np.radians(gyr) / hz).as_quat()[:, [3, 0, 1, 2]]
    rows = [f"{k + 1},{int(round(k * 1e6 / hz))}," + ",".join(f"{v:.9f}" for v in (*dq[k], *(acc[k] / hz)))
            for k in range(len(acc))]
    path = tmp_path / "rate.csv"
    path.write_text("\n".join(["OutputRate:,60Hz", "PacketCounter,SampleTimeFine,dq_W,dq_X,dq_Y,dq_Z,dv[1],dv[2],dv[3]",
                               *rows]) + "\n")
    rec = reader("xsens-dot")([path])
    np.testing.assert_allclose(rec.accel_g, acc / G, atol=1e-6)
    np.testing.assert_allclose(rec.gyro_dps, gyr, atol=1e-4)


# --- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("utc", ["soon", 1e30, None])
def test_a_movesense_date_no_clock_gives_leaves_the_recording_undated(utc, tmp_path):
    doc = json.loads(MOVESENSE.read_text())
    doc["Samples"].insert(0, {"TimeDetailed": {"utcTime": utc, "relativeTime": 5}})
    path = tmp_path / MOVESENSE.name
    path.write_text(json.dumps(doc))
    rec = reader("movesense")([path])
    assert rec.start_utc is None and rec.n_samples == reader("movesense")([MOVESENSE]).n_samples


def test_a_damaged_import_header_is_said_as_far_as_it_can_be():
    from strideclip.imports.recording import provenance_said
    source, blank = provenance_said({"files": "run.csv", "format": "csv", "not_measured": ["rotation_deg"]})
    assert source.startswith(" (csv)") and blank == []


OTHER = {"phyphox": (MOVESENSE, "movesense"), "metamotion": (PHYPHOX_ACC, "phyphox"),
         "movesense": (XSENS, "xsens-dot"), "xsens-dot": (PHYPHOX_ACC, "phyphox")}


@pytest.mark.parametrize("fmt", sorted(OTHER))
def test_another_formats_file_is_named_for_what_it_is(fmt):
    path, what = OTHER[fmt]
    with pytest.raises(ImportFormatError, match=f"--format {what}"):
        reader(fmt)([path])


def _first_file(fmt):
    return next(p for p in EXAMPLES[fmt] if "Gyroscope" not in p.name)


@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_a_truncated_file_says_it_was_cut_short(fmt, tmp_path):
    path = _first_file(fmt)
    cut = tmp_path / path.name
    text = path.read_text(encoding="utf-8")
    cut.write_text(text[:len(text) * 2 // 3].rsplit(",", 1)[0], encoding="utf-8")  # ends a few cells into a row
    with pytest.raises(ImportFormatError, match="cut short") as e:
        reader(fmt)([cut])
    assert cut.name in str(e.value) and e.value.path


@pytest.mark.parametrize("fmt", sorted(set(EXAMPLES) - {"movesense"}))
def test_a_file_with_its_header_and_no_rows_says_it_has_no_samples(fmt, tmp_path):
    """(An experiment stopped at once; a MetaBase download with nothing in it.)"""
    path = _first_file(fmt)
    lines = path.read_text(encoding="utf-8").splitlines()
    header_lines = next(k for k, line in enumerate(lines) if line[:1].isdigit() or line[:2] in ('"0', '"1'))
    empty = tmp_path / path.name
    empty.write_text("\n".join(lines[:header_lines]) + "\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match="no samples") as e:
        reader(fmt)([empty])
    assert empty.name in str(e.value)


@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_a_cell_that_is_not_a_number_is_named_with_its_line(fmt, tmp_path):
    path = _first_file(fmt)
    lines = path.read_text(encoding="utf-8").splitlines()
    if fmt == "movesense":
        doc = json.loads("\n".join(lines))
        doc["Samples"][3]["MeasIMU9"]["ArrayAcc"][0]["y"][2] = "n/a"
        bad = tmp_path / path.name
        bad.write_text(json.dumps(doc))
        with pytest.raises(ImportFormatError, match="ArrayAcc is not a list of x, y, z values"):
            reader(fmt)([bad])
        return
    row = len(lines) - 5
    cells = lines[row].split(",")
    cells[3] = "n/a"
    lines[row] = ",".join(cells)
    bad = tmp_path / path.name
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    others = [p for p in EXAMPLES[fmt] if p != path]
    with pytest.raises(ImportFormatError, match=f"line {row + 1}: 'n/a'"):
        reader(fmt)([bad, *others])


def test_mixed_or_unknown_units_are_refused(tmp_path):
    lines = PHYPHOX_ACC.read_text().splitlines()
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([lines[0].replace("Acceleration y (m/s^2)", "Acceleration y (g)"), *lines[1:]]) + "\n")
    with pytest.raises(ImportFormatError, match=r"mixed units in one sensor's axes \(g, m/s\^2\)"):
        reader("phyphox")([mixed])
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("\n".join([lines[0].replace("m/s^2", "ft/s^2"), *lines[1:]]) + "\n")
    with pytest.raises(ImportFormatError, match="no acceleration columns"):
        reader("phyphox")([unknown])
    acc_path = next(p for p in METAMOTION if "Accelerometer" in p.name)
    tesla = tmp_path / acc_path.name.replace("Accelerometer", "Magnetometer")
    tesla.write_text(acc_path.read_text().replace("(g)", "(T)"))
    with pytest.raises(ImportFormatError, match="not the accelerometer"):
        reader("metamotion")([tesla])


# --- end to end: import, then every command -------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(EXAMPLES))
def test_each_example_imports_and_replay_report_export_run_on_it(fmt, tmp_path):
    log = tmp_path / "session.sclog"
    cli("import", *EXAMPLES[fmt], "--format", fmt, "-o", log)
    summary = json.loads(cli("replay", log, "--json").stdout)
    rec = reader(fmt)(EXAMPLES[fmt])
    imported = summary["imported"]
    assert imported["format"] == fmt and imported["samples"] == rec.n_samples
    assert imported["gyro"] == (rec.gyro_dps is not None) and summary["samples"] > 0
    assert imported["duration_s"] == pytest.approx(rec.t_s[-1], abs=0.01)
    cli("report", log, "-o", tmp_path / "report.html", "--no-history")
    cli("export", log, "--format", "fit", "-o", tmp_path / "run.fit")
    assert (tmp_path / "report.html").stat().st_size > 0 and (tmp_path / "run.fit").stat().st_size > 0
    # The log's HELLO has no clip's chip (imu_model 0, which the protocol names "simulated"): every
    # view of the log says what recorded it instead, and none calls it simulated.
    assert summary["source"] == "imported" and summary["clip"] == rec.sensor != ""
    said = cli("replay", log).stdout
    page = re.sub(r"<script.*?</script>", "", (tmp_path / "report.html").read_text(), flags=re.S)
    assert f"({fmt}, {rec.sensor}" in said and html.escape(f"({fmt}, {rec.sensor}") in page
    db = tmp_path / "history.db"
    cli("history", "import", log, "--db", db)
    sessions = json.loads(cli("history", "--json", "--db", db).stdout)[rec.sensor]["sessions"]
    assert [(s["source"], s["clip"]) for s in sessions] == [("imported", rec.sensor)]
    assert not [text for text in (said, page) if re.search(r"\bsimulat", text, re.I)]


@pytest.mark.parametrize("fmt", ["metamotion", "movesense", "xsens-dot"])
def test_a_simulated_run_written_in_the_vendors_format_gives_the_same_session(fmt, tmp_path, physical, original):
    """Cadence within 1 spm and pelvic rotation within 1 deg of the simulated session's medians,
    through each format's own rates and timing (MetaMotion: accelerometer 100 Hz, gyro 200 Hz;
    Movesense: 104 Hz in 8-sample packets; Xsens DOT: 120 Hz with the clock wrapping)."""
    if fmt == "metamotion":
        files = write_metabase(tmp_path / "mb", *physical, 208)
    elif fmt == "movesense":
        files = [write_movesense_meas(tmp_path / "log.json", *physical, 208)]
    else:
        files = [write_xsens(tmp_path / "dot.csv", *physical, 208)]
    log = tmp_path / "imported.sclog"
    cli("import", *files, "--format", fmt, "-o", log)
    got = medians(log)
    assert got["cadence_spm"] == pytest.approx(original["cadence_spm"], abs=1.0)
    assert got["pelvic_rotation_deg"] == pytest.approx(original["pelvic_rotation_deg"], abs=1.0)
