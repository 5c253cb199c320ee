"""The ``gaitpose`` command. Sub-commands live beside the code they drive and register here.

Each command module exposes ``register(app)`` and imports heavy dependencies (torch, onnx)
inside the command bodies, so ``gaitpose analyze`` works on an edge box without torch.
"""

from __future__ import annotations

from gaitpose.cliutil import make_app

COMMAND_MODULES = (
    "gaitpose.train.cli",  # train, evaluate
    "gaitpose.prune.cli",  # prune
    "gaitpose.export.cli",  # export, quantize
    "gaitpose.analyze_cli",  # analyze, train-localizer
    "gaitpose.bench_cli",  # bench
    "gaitpose.gait_cli",  # gait (keypoints/TRC/C3D files)
    "gaitpose.specialise_cli",  # specialise
)

app = make_app(
    "gaitpose", "Train, compress and run a compact gait keypoint model; analyse gait videos.", COMMAND_MODULES
)


def main() -> None:
    app()
