import pytest

from mpy import MicroPython
from strideclip.datasets import data_dir


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
def clip_lib(tmp_path_factory):
    """firmware/, shared/ and tests/fw compiled to .mpy, as they are copied onto a clip."""
    from mpy import REPO
    from strideclip import clipbuild

    lib = clipbuild.build(tmp_path_factory.mktemp("clip_lib"))
    clipbuild.compile_tree(REPO / "tests" / "fw", lib / "test")
    return lib
