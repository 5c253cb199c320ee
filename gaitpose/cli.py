"""The ``gaitpose`` command. Sub-commands live beside the code they drive and register here.

Each command module exposes ``register(app)`` and imports heavy dependencies (torch, onnx)
inside the command bodies, so ``gaitpose analyze`` works on an edge box without torch.
"""

from __future__ import annotations

import importlib
import logging

import typer

COMMAND_MODULES = (
    "gaitpose.train.cli",  # train, evaluate
    "gaitpose.prune.cli",  # prune
    "gaitpose.export.cli",  # export, quantize
    "gaitpose.analyze_cli",  # analyze
    "gaitpose.bench_cli",  # bench
)

app = typer.Typer(
    name="gaitpose",
    help="Train, compress and run a compact gait keypoint model; analyse gait videos.",
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
            if exc.name and exc.name.startswith("gaitpose"):
                continue  # command module not present in this build
            raise
        module.register(app)


_register_all()


def main() -> None:
    app()
