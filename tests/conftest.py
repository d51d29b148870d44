import pytest

from mpy import MicroPython


@pytest.fixture(scope="session")
def mpy():
    """A running MicroPython unix port answering clipcore calls (skips off x86-64/CPython 3.11)."""
    runtime = MicroPython()
    yield runtime
    runtime.close()
