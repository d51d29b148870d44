"""Samples in index order for the analysis, whichever order they arrive in.

A clip's samples reach the host live, and what the link lost comes back later as backfill. The
step detector and the metrics must see every sample once, in order, so a session holds what
arrives after a gap until the gap is filled, or until it is given up: ``hold_ms`` of receive
time after the gap was seen (the host asks for a gap at once, and the clip answers within
seconds), ``hold_samples`` held (a bound on memory), or the end of the log. Each gap's wait runs
from when the samples after it arrived, so gaps closer together than ``hold_ms`` do not add up:
a live view lags over a gap by at most ``hold_ms``. The analysis of a log is the live analysis,
with every gap the clip filled.
"""
from __future__ import annotations

import heapq

import numpy as np


class InOrder:
    def __init__(self, *, hold_ms: int, hold_samples: int):
        self.hold_ms = hold_ms
        self.hold_samples = hold_samples
        self.next_idx: int | None = None  # the next sample the analysis takes
        self.held_samples = 0
        self._blocks: list[tuple[int, int, int, np.ndarray]] = []  # heap: (first_idx, arrival, t_ms, counts)
        # The usual packet: the very next samples with nothing held. Kept beside the heap (a heap
        # of one, taken as the heap would); the next block to come puts it in the heap first.
        self._next_block: tuple[int, int, int, np.ndarray] | None = None
        self._arrivals = 0

    def add(self, first_idx: int, counts: np.ndarray, t_ms: int) -> None:
        """Samples from ``first_idx`` that arrived at receive time ``t_ms``."""
        if self.next_idx is not None and first_idx + len(counts) <= self.next_idx:
            return  # taken already (a repeat, or backfill of a gap given up)
        block = (first_idx, self._arrivals, t_ms, counts)
        self._arrivals += 1
        self.held_samples += len(counts)
        if self._next_block is not None:
            heapq.heappush(self._blocks, self._next_block)
            self._next_block = None
        elif first_idx == self.next_idx and not self._blocks:
            self._next_block = block
            return
        heapq.heappush(self._blocks, block)

    def take(self, now_ms: int, *, end: bool = False) -> list[tuple[int, np.ndarray | None, int]]:
        """What the analysis can take at receive time ``now_ms``, in order: (first_idx, counts, 0)
        for samples and (start, None, end) for a gap given up. ``end``: nothing more will come."""
        if self._next_block is not None:  # (then the heap is empty)
            first, _, _, counts = self._next_block
            self._next_block = None
            self.held_samples -= len(counts)
            self.next_idx = first + len(counts)
            return [(first, counts, 0)]
        out: list = []  # (a list, not a generator: called for every packet, most often for one block)
        blocks = self._blocks
        while blocks:
            first, _, seen_ms, counts = blocks[0]
            if self.next_idx is None:
                self.next_idx = first
            if first > self.next_idx:  # a gap, seen when what follows it came: wait while it may be filled
                if not end and now_ms - seen_ms < self.hold_ms and self.held_samples < self.hold_samples:
                    break
                out.append((self.next_idx, None, first))
                self.next_idx = first
                continue
            heapq.heappop(blocks)
            self.held_samples -= len(counts)
            skip = self.next_idx - first  # overlap with what was taken already: duplicates
            if skip < len(counts):
                out.append((self.next_idx, counts[skip:] if skip else counts, 0))
                self.next_idx = first + len(counts)
        return out
