"""`strideclip flash` against a real MicroPython REPL over a real pseudo-terminal (issue #7).

The MicroPython unix port runs its REPL on one pty; a bridge copies bytes to a second pty whose
device path is handed to `strideclip flash` as the clip's port. mpremote and pyserial are the
real ones; the files land in the REPL's working directory as they would on the clip's flash.
"""
import subprocess
from pathlib import Path

import pytest

from mpy import find_tool, micropython_exe
from ptys import PtyLink


@pytest.fixture
def repl_port(tmp_path):
    """A device path where a MicroPython REPL answers, and the folder that is its filesystem."""
    link = PtyLink()
    proc = subprocess.Popen([micropython_exe(), "-i"], stdin=link.dev_slave, stdout=link.dev_slave,
                            stderr=link.dev_slave, cwd=tmp_path, close_fds=True)
    yield link.host_path, tmp_path
    proc.kill()
    proc.wait()
    link.close()


def _cli(*args):
    return subprocess.run([find_tool("strideclip"), *args], capture_output=True, text=True, timeout=120)


def test_flash_copies_the_compiled_app_and_config_onto_the_clip(repl_port, tmp_path_factory):
    port, clip_fs = repl_port
    config = tmp_path_factory.mktemp("cfg") / "clip.json"
    config.write_text('{"clip_name": "Ana", "sample_rate_hz": 416}')
    done = _cli("flash", "--port", port, "--config", str(config), "--no-reset")
    assert done.returncode == 0, done.stderr
    assert (clip_fs / "main.py").read_text().startswith("# The clip's boot entry")
    assert (clip_fs / "clipcore" / "steps.mpy").exists() and (clip_fs / "clipfw" / "imu" / "lsm6dsox.mpy").exists()
    assert '"clip_name": "Ana"' in (clip_fs / "config.json").read_text()
    # What was copied loads on the clip: its config module reads the config that was put there.
    check = subprocess.run([find_tool("mpremote"), "connect", port, "resume", "exec",
                            "from clipfw import config; from clipcore import steps; "
                            "print(config.load('config.json')['sample_rate_hz'], steps.StepDetector(416, 488, 8).rate_hz)"],
                           capture_output=True, text=True, timeout=60)
    assert check.stdout.strip().endswith("416 416"), check.stdout + check.stderr  # its viper code loads too


def test_flash_refuses_a_bad_config_before_touching_the_clip(repl_port, tmp_path_factory):
    port, clip_fs = repl_port
    config = tmp_path_factory.mktemp("cfg") / "clip.json"
    config.write_text('{"gyro_fs_dps": 4000}')
    done = _cli("flash", "--port", port, "--config", str(config))
    assert done.returncode == 1 and "gyro_fs_dps" in done.stderr and "4000" in done.stderr
    assert not (clip_fs / "main.py").exists()


def test_flash_names_a_missing_device():
    done = _cli("flash", "--port", "/dev/ttyNOSUCHCLIP")
    assert done.returncode == 1 and "no device at /dev/ttyNOSUCHCLIP" in done.stderr


def test_sync_fetches_the_clips_logs_checks_them_and_can_delete_them(repl_port, tmp_path_factory):
    port, clip_fs = repl_port
    (clip_fs / "logs").mkdir()
    original = Path("tests/data/steady_208hz.sclog").read_bytes()
    (clip_fs / "logs" / "clip-000051a0-00001.sclog").write_bytes(original)
    out = tmp_path_factory.mktemp("fetched")
    done = _cli("sync", "--port", port, "--out", str(out), "--delete")
    assert done.returncode == 0, done.stderr
    assert (out / "clip-000051a0-00001.sclog").read_bytes() == original
    assert "12480 samples" in done.stdout and "clean" in done.stdout
    assert not (clip_fs / "logs" / "clip-000051a0-00001.sclog").exists()  # read cleanly, so removed
    again = _cli("sync", "--port", port, "--out", str(out))
    assert again.returncode == 0 and "0 log(s)" in again.stdout


def test_flash_compiles_for_the_clips_own_architecture_and_refuses_another_mpy_version():
    """What a clip's MicroPython reports (sys.implementation._mpy) decides the build: the ESP32's
    v6.3 xtensawin, the unix port's x64; a clip whose MicroPython takes another .mpy version is
    refused with both versions named (a viper .mpy of another sub-version does not import)."""
    from strideclip.device.flash import march_for, mpy_cross_version
    from strideclip.errors import DeviceError

    compiler = mpy_cross_version()
    assert compiler == (6, 3)
    assert march_for(0x2B06, compiler) == "xtensawin"  # MicroPython v1.23-v1.28 on an ESP32
    assert march_for(0x0B06, compiler) == "x64"
    with pytest.raises(DeviceError, match=r"loads \.mpy v6\.2, but this mpy-cross writes v6\.3"):
        march_for(0x2A06, compiler)  # MicroPython v1.22
    with pytest.raises(DeviceError, match="without native code"):
        march_for(0x0306, compiler)


def test_flash_onto_the_rig_then_the_clip_boots_what_was_flashed(tmp_path):
    """`strideclip flash` against the clip on the rig (tests/rig: the 32-bit interpreter, its
    littlefs flash): the app is compiled for its architecture (x86), copied by mpremote, and the
    next boot from that flash streams."""
    import rig as R
    from clipcore import protocol as P

    board = R.Board(tmp_path / "clip")
    link = PtyLink()
    proc = subprocess.Popen([R.micropython(), "-i", str(R.BOARD_DIR / "rigrepl.py"), str(board.dir), str(R.BOARD_DIR)],
                            stdin=link.dev_slave, stdout=link.dev_slave, stderr=link.dev_slave, close_fds=True)
    try:
        config = tmp_path / "clip.json"
        config.write_text('{"link": "usb"}')
        done = _cli("flash", "--port", link.host_path, "--config", str(config), "--no-reset")
    finally:
        proc.kill()
        proc.wait()
        link.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "-march=x86" in done.stdout and ".mpy v6.3" in done.stdout
    assert "clipcore" in board.listing() and "main.py" in board.listing()
    from strideclip.sim import simulate, steady_run

    boot = board.boot(simulate(steady_run(0.2, seed=2)).counts, end_ms=8000)
    d = P.Deframer()
    d.feed(boot.serial)
    first = P.decode(d.next_packet(eof=True))
    assert isinstance(first, P.Hello) and "crashed" not in boot.report, boot.stderr
