"""hardware/wiring.md and the firmware's config defaults describe the same board."""
import re

from strideclip.clipbuild import REPO
from strideclip.flash import clip_config_module


def test_wiring_table_matches_the_config_defaults():
    defaults = clip_config_module().DEFAULTS
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \|", (REPO / "hardware" / "wiring.md").read_text(), re.M)
    assert len(rows) >= 7
    for key, value in rows:
        assert key in defaults, f"wiring.md names {key}, which the config does not have"
        assert str(defaults[key]) == value, f"{key}: wiring.md says {value}, the config default is {defaults[key]}"
    pins = {k for k in defaults if k.endswith("_pin")}
    assert pins <= {k for k, _ in rows}, "every pin the firmware uses is in the wiring table"
