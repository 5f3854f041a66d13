"""Runs of consecutive True values: run-length encoding, bridging short gaps, bouts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paceline.signal.errors import InputShapeError, ParameterError
from paceline.signal.timebase import BoolArray, IntArray


@dataclass(frozen=True, slots=True)
class Runs:
    """Half-open index ranges ``[start[i], stop[i])`` of consecutive True elements."""

    start: IntArray
    stop: IntArray

    def __post_init__(self) -> None:
        """Check that starts and stops pair up."""
        if self.start.shape != self.stop.shape:
            raise InputShapeError("stop", self.start.shape[0], self.stop.shape[0])

    def __len__(self) -> int:
        """Number of runs."""
        return int(self.start.shape[0])

    @property
    def length(self) -> IntArray:
        """Length of every run, in elements."""
        return self.stop - self.start

    def longest(self) -> int:
        """Length of the longest run (0 when there is none)."""
        return int(self.length.max()) if len(self) else 0

    def total(self) -> int:
        """Number of elements covered by all runs."""
        return int(self.length.sum())

    def where(self, keep: BoolArray) -> Runs:
        """The runs selected by a boolean mask over runs."""
        return Runs(self.start[keep], self.stop[keep])

    def to_mask(self, n: int) -> BoolArray:
        """Boolean vector of length `n` that is True inside the runs."""
        edges = np.zeros(n + 1, dtype=np.int64)
        np.add.at(edges, self.start, 1)
        np.add.at(edges, self.stop, -1)
        return np.asarray(np.cumsum(edges[:-1]) > 0, dtype=np.bool_)


def true_runs(mask: BoolArray) -> Runs:
    """Run-length encode the True stretches of a boolean vector."""
    padded = np.concatenate(([0], mask.astype(np.int8, copy=False), [0]))
    step = np.diff(padded)
    return Runs(np.flatnonzero(step == 1), np.flatnonzero(step == -1))


def bridge(runs: Runs, max_gap: int) -> Runs:
    """Merge runs separated by at most `max_gap` False elements."""
    if max_gap < 0:
        raise ParameterError("max_gap", max_gap, "must be >= 0")
    if len(runs) < 2:
        return runs
    split = (runs.start[1:] - runs.stop[:-1]) > max_gap
    starts = runs.start[np.concatenate(([True], split))]
    stops = runs.stop[np.concatenate((split, [True]))]
    return Runs(starts, stops)


def bouts(mask: BoolArray, *, min_length: int, max_interruption: int = 0) -> Runs:
    """Sustained stretches of True: runs bridged over short interruptions, kept if long enough.

    Follows the bout rule of Troiano et al. (2008): a bout starts at a minute above the
    threshold, continues across interruptions of at most `max_interruption` minutes below
    it, ends at the last minute above it, and counts if it lasts at least `min_length`.

    References
    ----------
    Troiano RP et al. Physical activity in the United States measured by accelerometer.
    Med Sci Sports Exerc 2008;40(1):181-188.
    """
    if min_length < 1:
        raise ParameterError("min_length", min_length, "must be >= 1")
    merged = bridge(true_runs(mask), max_interruption)
    return merged.where(merged.length >= min_length)


__all__ = ["Runs", "bouts", "bridge", "true_runs"]
