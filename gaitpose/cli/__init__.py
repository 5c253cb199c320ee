"""The ``gaitpose`` command: every sub-command of the library lives in this package.

Each module here exposes ``register(app)`` and imports heavy dependencies (torch, onnx) inside the
command bodies, so ``gaitpose analyze`` works on an edge box without torch. Commands from outside
the library plug in through the ``gaitpose.commands`` entry-point group (``gaitpose bench`` comes
from the ``benchmarks`` package that way), so the library itself never imports them.
"""

from __future__ import annotations

import functools
from typing import Any

COMMAND_MODULES = (
    "gaitpose.cli.train",  # train, evaluate
    "gaitpose.cli.prune",  # prune
    "gaitpose.cli.export",  # export, quantize
    "gaitpose.cli.analyze",  # analyze, train-localizer
    "gaitpose.cli.gait",  # gait (keypoints/TRC/C3D files)
    "gaitpose.cli.specialise",  # specialise
)
PLUGIN_GROUP = "gaitpose.commands"


@functools.cache
def build_app() -> Any:
    """The ``gaitpose`` typer app, built on first use (importing ``gaitpose.cli.util`` alone stays cheap)."""
    from gaitpose.cli.util import make_app

    return make_app(
        "gaitpose", "Train, compress and run a compact gait keypoint model; analyse gait videos.", COMMAND_MODULES,
        plugin_group=PLUGIN_GROUP,
    )


def __getattr__(name: str) -> Any:
    if name == "app":
        return build_app()
    raise AttributeError(f"module 'gaitpose.cli' has no attribute {name!r}")


def main() -> None:
    build_app()()
