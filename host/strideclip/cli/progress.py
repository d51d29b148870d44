"""The command line's one progress bar, for work that takes a while: reading a long log (replay,
report, export), simulating (simulate, the simulated clips of live and dashboard),
evaluate-cues. The work reports through a ``progress(done, total)`` callback (as
``strideclip.session.replay.analyse`` takes one); ``ProgressBar`` is that callback.

It draws (rich, on stderr, gone when the work ends) only on a terminal, and only once the work has
run ``show_after_s``: short work stays silent, and so does any command whose stderr is piped or
that prints ``--json`` (``quiet``)."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

SHOW_AFTER_S = 1.0  # work shorter than about 2 s never shows a bar


class ProgressBar:
    """``with ProgressBar("reading run.sclog", quiet=as_json) as bar: analyse(log, progress=bar)``"""

    def __init__(self, label: str, *, quiet: bool = False, show_after_s: float = SHOW_AFTER_S):
        self.label = label
        self._on = not quiet and sys.stderr.isatty()
        self._show_after_s = show_after_s
        self._bar = self._task = None
        self._started_s = time.monotonic()

    @property
    def enabled(self) -> bool:
        """It draws once the work runs long enough: on a terminal, not ``quiet``."""
        return self._on

    def __enter__(self) -> ProgressBar:
        self._started_s = time.monotonic()
        if self._show_after_s <= 0:
            self(0, 1)
        return self

    def __call__(self, done: float, total: float) -> None:
        if not self._on:
            return
        if self._bar is None:
            if time.monotonic() - self._started_s < self._show_after_s:
                return
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=total or 1)
        self._bar.update(self._task, completed=done, total=total or 1)

    def part(self, k: int, parts: int) -> Callable[[float, float], None]:
        """The callback for the ``k``-th (from 0) of ``parts`` equal pieces of the work: one run of
        several simulated, say."""
        return lambda done, total: self(k + done / (total or 1), parts)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
            self._bar = None
