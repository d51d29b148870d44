"""hardware/: the parts list, the pin tables, the diagrams, the case and the power budget agree
with each other and with the firmware."""
import csv
import json
import re
import shutil
import subprocess
import sys

import pytest

from strideclip.device.clipbuild import REPO
from strideclip.device.flash import clip_config_module

HW = REPO / "hardware"


def _bom() -> dict:
    with open(HW / "bom.csv", newline="") as f:
        return {r["ref"]: r for r in csv.DictReader(f)}


def _dims(ref: str) -> list[float]:
    return [float(v) for v in _bom()[ref]["dims_mm"].split("x")]


def _table_rows(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^\| `(\w+)` \| (\w+) \|", text, re.M)


def test_every_boards_pin_table_matches_the_firmware():
    cfg = clip_config_module()
    text = (HW / "wiring.md").read_text()
    common = text.split("## Every board")[1].split("\n## ")[0]
    for key, value in _table_rows(common):
        assert str(cfg.DEFAULTS[key]) == value, f"{key}: wiring.md says {value}, the config default is {cfg.DEFAULTS[key]}"
    assert cfg.DEFAULTS["board"] in cfg.BOARDS
    for board, pins in cfg.BOARDS.items():
        assert f"## Board `{board}`" in text, f"wiring.md has no section for {board}"
        section = text.split(f"## Board `{board}`")[1].split("\n## ")[0]
        rows = dict(_table_rows(section))
        full = cfg.validate({"board": board})
        assert set(rows) == set(pins), f"{board}: the table lists {sorted(rows)}, the firmware {sorted(pins)}"
        for key, value in rows.items():
            assert str(full[key]) == value, f"{board} {key}: wiring.md says {value}, the firmware {full[key]}"
    every_pin = {k for k in cfg.DEFAULTS if k.endswith("_pin")}
    assert every_pin == {k for pins in cfg.BOARDS.values() for k in pins}, "every pin the firmware uses is per board"


def test_the_diagrams_show_the_firmwares_pins_and_are_current():
    sys.path.insert(0, str(HW))
    import draw_schematics

    for board, pins in clip_config_module().BOARDS.items():
        svg = (HW / f"schematic-{board}.svg").read_text()
        shown = dict(re.findall(r'data-key="(\w+)" data-gpio="(\d+)"', svg))
        assert shown == {k: str(v) for k, v in pins.items()}, f"schematic-{board}.svg shows {shown}"
        for key, gpio in shown.items():
            assert re.search(rf'data-key="{key}" data-gpio="{gpio}"[^>]*>GPIO{gpio}\b', svg)
        assert svg == draw_schematics.draw(board, pins), f"schematic-{board}.svg is stale: run draw_schematics.py"


def test_the_parts_list_has_every_role_and_the_readme_shows_it():
    bom = _bom()
    for ref in ("U1", "U2", "M1", "Q1", "D1", "R1", "R2-R3", "C1", "BT1", "SW1", "E1"):
        assert ref in bom and bom[ref]["role"] and bom[ref]["alternatives"], ref
    readme = (HW / "README.md").read_text()
    for ref, r in bom.items():
        assert f"| {ref} | {r['qty']} | {r['part']} |" in readme, f"README's parts table lacks {ref}"


def test_the_case_is_built_from_the_parts_sizes():
    scad = (HW / "enclosure.scad").read_text()

    def vec(name):
        return [float(v) for v in re.search(rf"^{name} = \[([^\]]+)\];", scad, re.M).group(1).split(",")]

    assert vec("board") == _dims("U1") and vec("imu") == _dims("U2") and vec("battery") == _dims("BT1")
    assert vec("switch") == _dims("SW1")
    motor_d, motor_h = _dims("M1")
    assert f"motor_d = {motor_d:g};" in scad and f"motor_h = {motor_h:g};" in scad


def test_the_case_renders_as_one_clean_solid(tmp_path):
    openscad = shutil.which("openscad")
    if not openscad:
        pytest.skip("openscad is not installed (make test installs Debian's openscad with apt-get where apt is available)")
    sizes = []
    for part in ("base", "lid"):
        done = subprocess.run([openscad, "-o", str(tmp_path / f"{part}.stl"), "-D", f'part="{part}"',
                               str(HW / "enclosure.scad")], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr
        assert (tmp_path / f"{part}.stl").stat().st_size > 10_000
        sizes.append([float(v) for v in re.search(r"outer size \(mm\): \[([^\]]+)\]", done.stderr).group(1).split(",")])
    outer = sizes[0]
    assert [round(v) for v in outer] == _dims("E1")  # the parts list gives the case's size
    assert all(o > max(b, i) for o, b, i in zip(outer[:2], _dims("BT1"), _dims("U2")))
    assert "outer %.1f × %.1f × %.1f mm" % tuple(outer) in (HW / "README.md").read_text()


def test_the_power_budget_runs_and_the_readme_shows_its_figures():
    done = subprocess.run([sys.executable, str(HW / "power_budget.py"), "--json"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    readme = (HW / "README.md").read_text()
    assert got["battery_mah"] == 500
    for mode, r in got["modes"].items():
        lo, typ, hi = r["total_ma"]
        h_hi, h_typ, h_lo = r["hours"]
        assert h_lo >= 6.0, f"{mode}: under a marathon-plus in the worst case"
        assert f"| {mode} |" in readme and f"{typ:.1f} mA ({lo:.1f}-{hi:.1f}) | {h_typ:.1f} h ({h_lo:.1f}-{h_hi:.1f})" in readme
        if r["link"]:
            assert f"{r['link']['frames_per_s']:.1f} notifications/s" in readme
    rates = [m for m in got["modes"] if m.startswith("streaming")]
    frames = [got["modes"][m]["link"]["frames_per_s"] for m in rates]
    assert frames == sorted(frames) and frames[-1] < 40  # more samples, more notifications, under the link's limit
