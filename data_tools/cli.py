"""The ``gaitpose-data`` command: extract, label, split. Sub-commands register themselves here."""

from __future__ import annotations

import importlib
import logging

import typer

COMMAND_MODULES = (
    "data_tools.extract_cli",  # extract
    "data_tools.label_cli",  # label
    "data_tools.split",  # split
)

app = typer.Typer(
    name="gaitpose-data",
    help="Extract frames from colour/depth recordings, pseudo-label them with a teacher, split by recording.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("data_tools"):
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    app()
