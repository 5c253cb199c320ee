"""The ``gaitpose-data`` command: extract, label, split. Sub-commands register themselves here."""

from __future__ import annotations

from gaitpose.cli.util import make_app

COMMAND_MODULES = (
    "data_tools.extract_cli",  # extract
    "data_tools.label_cli",  # label
    "data_tools.split",  # split
)

app = make_app(
    "gaitpose-data",
    "Extract frames from colour/depth recordings, pseudo-label them with a teacher, split by recording.",
    COMMAND_MODULES,
)


def main() -> None:
    app()
