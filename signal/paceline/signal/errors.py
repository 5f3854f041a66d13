"""Typed errors of `paceline.signal`: every one is a `SignalError`, hence a `ValueError`."""

from __future__ import annotations

from collections.abc import Iterable


class SignalError(ValueError):
    """Root of every error raised by `paceline.signal` (bad arguments or inputs)."""


class InputShapeError(SignalError):
    """Arrays that must line up (time and value, for example) do not."""

    def __init__(self, name: str, expected: int, got: int) -> None:
        self.name = name
        self.expected = expected
        self.got = got
        super().__init__(f"{name} has {got} elements, expected {expected} (one per time stamp)")


class UnsortedTimeError(SignalError):
    """Time stamps must be non-decreasing; `index` is the first one that goes back."""

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index
        super().__init__(
            f"{name} must be sorted ascending; element {index} is earlier than the one before it "
            "(sort the samples by time first, e.g. with timebase.time_order)"
        )


class TimeTypeError(SignalError):
    """Time stamps must be int64 epoch microseconds or datetime64 values."""

    def __init__(self, name: str, dtype: str) -> None:
        self.name = name
        self.dtype = dtype
        super().__init__(
            f"{name} has dtype {dtype}; pass int64 epoch microseconds or datetime64 values"
        )


class ParameterError(SignalError):
    """A parameter is outside the range where the computation means anything."""

    def __init__(self, name: str, value: object, requirement: str) -> None:
        self.name = name
        self.value = value
        self.requirement = requirement
        super().__init__(f"{name}={value!r} is invalid: {requirement}")


class UnknownMethodError(SignalError):
    """A `method=` argument names no known method; `valid` lists the ones that exist."""

    def __init__(self, argument: str, method: str, valid: Iterable[str]) -> None:
        self.argument = argument
        self.method = method
        self.valid = tuple(valid)
        super().__init__(
            f"unknown {argument} {method!r}; choose one of: {', '.join(repr(v) for v in self.valid)}"
        )


class InsufficientDataError(SignalError):
    """Too few values for the statistic to be defined (`needed` at least, `got` given)."""

    def __init__(self, what: str, needed: int, got: int) -> None:
        self.what = what
        self.needed = needed
        self.got = got
        super().__init__(f"{what} needs at least {needed} values, got {got}")


__all__ = [
    "InputShapeError",
    "InsufficientDataError",
    "ParameterError",
    "SignalError",
    "TimeTypeError",
    "UnknownMethodError",
    "UnsortedTimeError",
]
