"""Shared command-line helpers: one-line errors and non-zero exits for bad input."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
from collections.abc import Iterator, Sequence

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


def make_app(name: str, help_text: str, command_modules: Sequence[str]) -> typer.Typer:
    """A typer app whose sub-commands live beside the code they drive.

    Each module in ``command_modules`` exposes ``register(app)`` and imports heavy dependencies
    (torch, onnx) inside its command bodies, so e.g. ``gaitpose analyze`` runs without torch.
    A module that is absent from this build (its package not shipped) is skipped.
    """
    app = typer.Typer(
        name=name, help=help_text, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )

    @app.callback()
    def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )

    top = command_modules[0].split(".")[0] if command_modules else ""
    for module_name in command_modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(top):
                continue
            raise
        module.register(app)
    return app
