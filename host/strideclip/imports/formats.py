"""The formats ``strideclip import --format`` takes, each a reader ``read(paths) -> Recording``
in a module of its own (imported only when used). The generic CSV's reader also takes its
column mapping. docs/import.md says which are confirmed from a real file."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (the command line lists READERS: numpy is imported only by a command that reads)
    from strideclip.imports.recording import Recording

READERS = {  # --format NAME: module in strideclip.imports holding its read()
    "csv": "generic_csv",
    "phyphox": "phyphox",
    "metamotion": "metamotion",
    "movesense": "movesense",
    "xsens-dot": "xsens_dot",
}


def reader(fmt: str) -> Callable[..., Recording]:
    """The read() of format ``fmt``."""
    return importlib.import_module(f"strideclip.imports.{READERS[fmt]}").read
