"""Shared command-line helpers: one-line errors and non-zero exits for bad input."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

from gaitpose.errors import GaitposeError

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (GaitposeError, FileNotFoundError, ValueError, PermissionError)


@contextlib.contextmanager
def cli_errors(exit_code: int = 2) -> Iterator[None]:
    """Turn expected failures into ``error: <file>: <reason>`` on stderr and a non-zero exit.

    Unexpected exceptions keep their traceback: they are bugs, not bad input.
    """
    try:
        yield
    except EXPECTED_ERRORS as exc:
        msg = str(exc).replace("\n", " ").strip() or exc.__class__.__name__
        print(f"error: {msg}", file=sys.stderr)
        raise typer.Exit(exit_code) from None
