"""Cue settings from a TOML file, checked against the ranges the clip checks (clipcore.cues).

```toml
[cues]
floor_spm = 165          # cadence floor, steps/min
drop_pct = 5             # cadence drop that counts, % below the runner's baseline
rotation_rise_pct = 25   # rotation rise that counts, % above the baseline
warmup_s = 240           # running before the baselines are trusted
sustain_s = 20           # how long a breakdown must hold
cooldown_s = 120         # quiet after a cue
cue_s = 30               # how long the metronome plays
target_spm = 172         # the metronome's tempo, from a cadence plan (0 or absent: the baseline)
```

Any subset may be given; the rest keep the defaults. A bad file is refused whole with a message
naming the file, the setting and the allowed range: the settings in use stay as they were.
The same settings go to a connected clip as SET_CONFIG commands (keys in docs/protocol.md).
"""
from __future__ import annotations

from array import array
from pathlib import Path

from clipcore import cues as C
from clipcore import protocol as P
from strideclip.errors import ConfigError

# setting name in the file -> SET_CONFIG key
KEYS = {"floor_spm": 1, "drop_pct": 2, "rotation_rise_pct": 3, "warmup_s": 4, "sustain_s": 5, "cooldown_s": 6,
        "cue_s": 7, "target_spm": 8}


def load(path: str | Path) -> dict[int, int]:
    """{SET_CONFIG key: value} from the file's [cues] table, every value checked."""
    import tomllib  # (here: most commands read no settings file)

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read cue settings {path}: {e.strerror}", key=str(path)) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}", key=str(path)) from e
    table = doc.get("cues")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: no [cues] table", key="cues")
    settings = {}
    for name, value in table.items():
        if name not in KEYS:
            raise ConfigError(f"{path}: unknown cue setting {name!r}; known: {', '.join(KEYS)}", key=name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: {name} must be a whole number, not {value!r}", key=name)
        key = KEYS[name]
        if C.check_config(key, value) != P.RESULT_OK:
            _index, lo, hi = C.CONFIG_KEYS[key]
            allowed = f"{lo}..{hi}" + (" (or 0: off)" if key in C.OFF_KEYS else "")
            raise ConfigError(f"{path}: {name} = {value} is outside {allowed}", key=name)
        settings[key] = value
    return settings


def load_if_given(path: str | Path | None) -> dict[int, int]:
    """``load(path)``, or no settings (the clip's defaults) when no file is given."""
    return load(path) if path else {}


def apply(cfg: array[int], settings: dict[int, int]) -> None:
    """Put checked settings into a clipcore.cues config array."""
    for key, value in settings.items():
        code = C.set_config(cfg, key, value)
        if code != P.RESULT_OK:  # load() checked them: this is a bug, not bad input
            raise ConfigError(f"cue setting {key} = {value}: {P.RESULT_NAMES[code]}", key=str(key))


def target_spm(settings: dict[int, int]) -> int | None:
    """The metronome target the settings give (SET_CONFIG key ``KEYS["target_spm"]``), None if unset."""
    return settings.get(KEYS["target_spm"]) or None
