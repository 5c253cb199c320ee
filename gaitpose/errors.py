"""Errors that carry a one-line, user-facing message naming the file and the reason."""

from __future__ import annotations

import os


class GaitposeError(Exception):
    """Base class: ``str(err)`` is a single line fit for a terminal or an API response."""


class InputError(GaitposeError):
    """Bad input file: unreadable, wrong format, corrupt, inconsistent."""

    def __init__(self, path: str | os.PathLike[str] | None, reason: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = reason.replace("\n", " ").strip()
        super().__init__(f"{self.path}: {self.reason}" if self.path else self.reason)


class NoPersonError(InputError):
    """No person could be found in the recording."""


class NoWalkingError(InputError):
    """A person was found but no walking (no gait cycles) could be detected."""
