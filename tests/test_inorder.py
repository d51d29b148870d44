"""The in-order hold (session/inorder.py) gives the analysis every sample once, in index order, in
the blocks a heap of everything held gives: its shortcut for the usual packet (the very next
samples, nothing held) changes neither what comes out nor when (#26)."""
import heapq
import random

import numpy as np
import pytest

from strideclip.session.inorder import InOrder


class _HeapOnly:
    """The hold before #26: every block through the heap (the reference)."""

    def __init__(self, *, hold_ms: int, hold_samples: int):
        self.hold_ms, self.hold_samples = hold_ms, hold_samples
        self.next_idx, self.held_samples, self._blocks, self._arrivals = None, 0, [], 0

    def add(self, first_idx: int, counts: np.ndarray, t_ms: int) -> None:
        if self.next_idx is not None and first_idx + len(counts) <= self.next_idx:
            return
        heapq.heappush(self._blocks, (first_idx, self._arrivals, t_ms, counts))
        self._arrivals += 1
        self.held_samples += len(counts)

    def take(self, now_ms: int, *, end: bool = False) -> list:
        out = []
        while self._blocks:
            first, _, seen_ms, counts = self._blocks[0]
            if self.next_idx is None:
                self.next_idx = first
            if first > self.next_idx:
                if not end and now_ms - seen_ms < self.hold_ms and self.held_samples < self.hold_samples:
                    break
                out.append((self.next_idx, None, first))
                self.next_idx = first
                continue
            heapq.heappop(self._blocks)
            self.held_samples -= len(counts)
            skip = self.next_idx - first
            if skip < len(counts):
                out.append((self.next_idx, counts[skip:], 0))
                self.next_idx = first + len(counts)
        return out


def _said(out: list) -> list:
    return [(first, None if counts is None else counts[:, 0].tolist(), gap_end) for first, counts, gap_end in out]


@pytest.mark.parametrize("seed", range(40))
def test_the_hold_gives_what_a_heap_of_every_block_gives(seed):
    """Packets in order, with gaps, repeats, late backfill and blocks from anywhere; taken after
    most packets (a session takes after each one it can read), now and then at the end."""
    rng = random.Random(seed)
    hold_ms, hold_samples = rng.choice([0, 50, 1000]), rng.choice([10, 100, 10 ** 6])
    hold, reference = InOrder(hold_ms=hold_ms, hold_samples=hold_samples), _HeapOnly(hold_ms=hold_ms,
                                                                                     hold_samples=hold_samples)
    newest, t_ms, shortcuts = 0, 0, 0
    for _ in range(300):
        t_ms += rng.randint(0, 30)
        r = rng.random()
        first = (newest if r < 0.6 else newest + rng.randint(1, 40) if r < 0.75
                 else max(0, newest - rng.randint(1, 60)) if r < 0.9 else rng.randint(0, newest + 50))
        counts = np.arange(first, first + rng.randint(1, 25))[:, None] * np.ones((1, 6), np.int64)
        shortcuts += first == hold.next_idx and hold.held_samples == 0
        hold.add(first, counts, t_ms)
        reference.add(first, counts, t_ms)
        newest = max(newest, first + len(counts))
        if rng.random() < 0.8:
            end = rng.random() < 0.05
            assert _said(hold.take(t_ms, end=end)) == _said(reference.take(t_ms, end=end))
            assert (hold.held_samples, hold.next_idx) == (reference.held_samples, reference.next_idx)
    assert _said(hold.take(t_ms, end=True)) == _said(reference.take(t_ms, end=True))
    assert shortcuts > 20  # the shortcut was taken, and often
