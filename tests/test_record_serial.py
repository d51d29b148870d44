"""`strideclip record --serial`: the clip's firmware on the rig (tests/rig) writes its USB serial
stream into a real pseudo-terminal; the host records it with real pyserial (issue #8, the serial
part). The port behaves as the ESP32's: a 0x03 from the host is Ctrl-C unless the firmware turned
that off (rig.usb_rx). Bytes are damaged on the way: the host resynchronises, asks the clip for
the samples of the frames that were hit (BACKFILL), and ends with every sample."""
import os
import subprocess

import numpy as np

import rig as R
from mpy import find_tool
from ptys import PtyLink
from strideclip.sim import simulate, steady_run
from strideclip.stream.sclog import load_log

DAMAGE_AT = (20_000, 60_000, 100_000)  # offsets in the clip's byte stream
SPEED = 4  # the board's clock runs 4x faster than the wall's (a host hiccup of 0.3 s is 1.2 s for the clip)


def flip(offset, chunk):
    out = bytearray(chunk)
    for at in DAMAGE_AT:
        if offset <= at < offset + len(chunk):
            out[at - offset] ^= 0xFF
    return bytes(out)


def test_record_over_serial_resyncs_after_damage_and_keeps_everything_else(tmp_path, tmp_path_factory):
    run = simulate(steady_run(1, seed=14))
    firmware = R.build_firmware(tmp_path_factory.mktemp("fw"))
    board = R.Board(tmp_path / "clip", firmware, {"link": "usb", "backfill_s": 60})
    proc = None
    link = PtyLink(damage=flip, to_device=lambda data, write: R.usb_rx(proc.pid, data, write))
    log_path = tmp_path / "run.sclog"
    try:
        recorder = subprocess.Popen([find_tool("strideclip"), "record", "--serial", link.host_path, "-o", str(log_path),
                                     "--idle-s", "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert recorder.stdout.readline().startswith("recording")  # the host listens before the clip talks
        dev = os.open(link.device_path, os.O_RDWR | os.O_NOCTTY)
        # The board keeps answering for 20 s of its time after the run (the host's backfill requests).
        proc = board.boot(run.counts, stdin=dev, stdout=dev, popen=True, clock="real", speed=SPEED,
                          end_ms=len(run.counts) * 1000 // 208 + 20_000)
        _, err = proc.communicate(timeout=300)
        os.close(dev)
        out, rec_err = recorder.communicate(timeout=60)  # (the first line was read above)
    finally:
        link.close()
    boot = board.result(proc.returncode, err.decode(errors="replace"))
    assert boot.how == "power_off", boot.stderr
    assert recorder.returncode == 0, rec_err
    log = load_log(log_path)
    assert log.header["source"] == "usb-serial" and log.hello.rate_hz == 208
    # Everything that arrived is right and in its place; the damaged frames were asked for again.
    assert all(np.array_equal(log.counts[k], run.counts[i]) for k, i in enumerate(log.sample_idx))
    assert len(log.counts) >= len(run.counts) - 19 and not log.gaps  # all but the clip's last partial packet
    assert len(log.sent) >= 1  # the backfill requests are in the log
    stats = [e for e in log.host_events if e[1].get("event") == "link_stats"][0][1]
    assert stats["bad_frames"] >= 1 and stats["dropped_bytes"] > 0
    assert "bad frames" in out and "filled by backfill, 0 still open" in out
    assert "added to the history" in out and "#" in out.split("added to the history")[1]


def test_record_names_a_missing_port(tmp_path):
    done = subprocess.run([find_tool("strideclip"), "record", "--serial", "/dev/ttyNOSUCHCLIP", "-o",
                           str(tmp_path / "x.sclog"), "--seconds", "1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot open /dev/ttyNOSUCHCLIP" in done.stderr
    assert not (tmp_path / "x.sclog").exists()


def test_a_port_that_vanishes_mid_run_keeps_everything_recorded(tmp_path):
    import os
    import time

    from clipcore import protocol as P
    from strideclip.stream.packets import encode_packet, encode_samples

    run = simulate(steady_run(0.2, seed=9))
    master, slave = os.openpty()
    out = tmp_path / "cut.sclog"
    proc = subprocess.Popen([find_tool("strideclip"), "record", "--serial", os.ttyname(slave), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    assert "recording" in proc.stdout.readline()  # the port is open: from now on nothing is lost
    os.write(master, P.frame(encode_packet(run.hello)))
    for k in range(40):
        os.write(master, P.frame(encode_samples(k, 19 * k, run.counts[19 * k : 19 * k + 19])))
    time.sleep(0.5)
    os.close(master)  # the cable is pulled
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "was lost" in err and f"everything before it is in {out}" in err
    log = load_log(out)
    assert np.array_equal(log.counts, run.counts[: 40 * 19])
    assert any(e.get("event") == "link" and e.get("state") == "lost" for _t, e in log.host_events)
