"""The state one ``gaitpose specialise`` run shares between its stages.

The stages are mixins of :class:`gaitpose.specialise.runner.Specialiser`; this base declares what they read
and write (set by the runner) and the two helpers more than one stage needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaitpose.specialise.options import REFERENCE_MAX_FRAMES, SpecialiseOptions
from gaitpose.specialise.preflight import _Inputs
from gaitpose.specialise.state import _Clock, _State


class RunContext:
    """Attributes of a run (set by ``Specialiser.__init__`` and ``run``) and helpers shared by stages."""

    opts: SpecialiseOptions
    out: Path
    work: Path
    say: Callable[[str], None]
    clock: _Clock
    timings: dict[str, float]
    results: dict[str, dict[str, Any]]
    skipped: list[str]
    inputs: _Inputs
    state: _State
    label_stride: int
    _key: str

    def _general(self) -> tuple[Path | None, str]:
        """The model the report compares against: ``--general-model``, else the shipped general model
        (``models/general/model.onnx``, the BlazePose export), else the shipped default student."""
        if self.opts.general_model is not None:
            return Path(self.opts.general_model), "the given general model"
        from gaitpose.registry import GENERAL_POSE_MODEL, default_model_dir

        general = default_model_dir() / GENERAL_POSE_MODEL
        if general.is_file():
            return general, f"the general default model (models/{GENERAL_POSE_MODEL.as_posix()})"
        p = default_model_dir() / "student" / "model.onnx"
        return (p if p.is_file() else None), "the current default model (models/student; no general model shipped)"

    def _reserve(self) -> float:
        """Seconds kept for export, INT8, evaluation and the domain reference after training and pruning.

        The domain reference runs the model over up to ``REFERENCE_MAX_FRAMES`` of each recording:
        about 5 ms a frame (decoding and the student) on the 2-core machine.
        """
        inputs = getattr(self, "inputs", None)
        ref_frames = sum(min(f or REFERENCE_MAX_FRAMES, REFERENCE_MAX_FRAMES)
                         for f in inputs.frames.values()) if inputs is not None else 0
        return 45.0 + 0.08 * self.clock.budget_s + 0.005 * ref_frames
