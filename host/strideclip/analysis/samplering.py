"""The metrics engine's memory of samples: the last ``capacity`` samples by clip sample index.

Blocks are kept as they come and written into the ring only when it is read (``take``): a live
session delivers a block per packet, ~11 a second, and a window is read about three times a
second, so most blocks are scaled and stored together, a run at a time. Samples are scaled as
they are stored, once: windows overlap (a step's and its stride's), so each is read two or three
times.
"""
from __future__ import annotations

import numpy as np


class SampleRing:
    def __init__(self, capacity: int, scale: np.ndarray):
        self.capacity = capacity
        self.values = np.zeros((capacity, len(scale)))  # the samples, scaled (counts * scale)
        self._scale = scale
        self._stored_idx = np.full(capacity, -1, np.int64)  # which sample each slot holds
        self._unsynced: list[tuple[int, np.ndarray]] = []  # blocks not yet in the ring
        self._unsynced_n = 0
        self.last_idx: int | None = None  # the newest sample's index
        self._first: int | None = None  # the first sample's index
        self._in_order = True  # every block came after the last: only the gaps between them can be missing
        self._gaps: list[tuple[int, int]] = []  # [start, end) never received, the recent ones

    def add(self, first_idx: int, counts: np.ndarray) -> None:
        """Raw counts from clip sample first_idx; older samples fall out. The block is read later
        (at the next ``take``): it must not be changed meanwhile."""
        n = len(counts)
        if n == 0:
            return
        self._unsynced.append((first_idx, counts))
        self._unsynced_n += n
        last, newest = first_idx + n - 1, self.last_idx
        if newest is None:
            self._first = first_idx
        elif first_idx != newest + 1:  # (a block per packet: nearly always the next samples)
            if first_idx <= newest:
                self._in_order = False
            else:
                self._gaps = [g for g in self._gaps if g[1] > last - self.capacity] + [(newest + 1, first_idx)]
        if newest is None or last > newest:
            self.last_idx = last
        if self._unsynced_n >= self.capacity:
            self._sync()

    def take(self, start: int, end: int) -> np.ndarray | None:
        """Samples [start, end) scaled (a copy), or None if any is missing or overwritten."""
        if end <= start or self.last_idx is None or end - 1 > self.last_idx or end - start > self.capacity:
            return None
        if self._unsynced:
            self._sync()
        s0, n = start % self.capacity, end - start
        if self._in_order and start >= self._first and start > self.last_idx - self.capacity and \
                not (self._gaps and any(g0 < end and start < g1 for g0, g1 in self._gaps)):
            # Received in order, none lost, none overwritten yet: the slots hold them.
            if s0 + n <= self.capacity:
                return self.values[s0:s0 + n].copy()
            return np.concatenate([self.values[s0:], self.values[:s0 + n - self.capacity]])
        slots = np.arange(start, end) % self.capacity
        held = self._stored_idx[slots]
        # A slot holds the sample asked for only if nothing was lost or overwritten since.
        if held[0] != start or held[-1] != end - 1 or np.any(np.diff(held) != 1):
            return None
        return self.values[slots]

    def _sync(self) -> None:
        """Write the blocks that came since the ring was last read, runs of adjacent blocks at once."""
        blocks, self._unsynced, self._unsynced_n = self._unsynced, [], 0
        run_first, run = blocks[0][0], [blocks[0][1]]  # a run of adjacent blocks, from sample run_first
        run_end = run_first + len(run[0])
        for first, counts in blocks[1:]:
            if first != run_end:
                self._write(run_first, run[0] if len(run) == 1 else np.concatenate(run))
                run_first, run = first, []
            run.append(counts)
            run_end = first + len(counts)
        self._write(run_first, run[0] if len(run) == 1 else np.concatenate(run))

    def _write(self, first_idx: int, counts: np.ndarray) -> None:
        counts = np.asarray(counts)
        n, width = len(counts), len(self._scale)
        if counts.shape[1] != width:  # (the engine's blocks have every channel its ring keeps)
            counts = counts[:, :width]
        if n > self.capacity:  # only the newest part can be kept
            first_idx, counts, n = first_idx + n - self.capacity, counts[-self.capacity:], self.capacity
        s0 = first_idx % self.capacity
        if s0 + n <= self.capacity:  # the usual case: one contiguous stretch of the ring
            np.multiply(counts, self._scale, out=self.values[s0:s0 + n])
            self._stored_idx[s0:s0 + n] = np.arange(first_idx, first_idx + n)
        else:
            idx = np.arange(first_idx, first_idx + n)
            self.values[idx % self.capacity] = counts * self._scale
            self._stored_idx[idx % self.capacity] = idx
