"""The error root of the `paceline` command's own checks (the components have their own)."""

from __future__ import annotations


class CliError(Exception):
    """A command that cannot do what was asked; `main` prints it and exits 2."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        super().__init__(reason)
