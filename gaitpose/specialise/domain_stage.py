"""The domain stage: what the specialised model's own output looks like on the clinic's recordings.

``gaitpose analyze`` checks every run of a specialised model against this reference (confidence,
jitter, left/right swaps, bone-length jumps; :mod:`gaitpose.infer.domain`) and warns, or falls back
to the general model, when a video is outside it. Without it a clinic's model would run unchecked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaitpose.specialise.context import RunContext
from gaitpose.specialise.options import REFERENCE_MAX_FRAMES


class DomainStage(RunContext):
    """Stage 10: ``domain``."""

    def _domain(self) -> dict[str, Any]:
        """The chosen model's domain reference over every labelled recording given to the run.

        Why all of them, held-out ones included: they are the clinic's own rooms and cameras, which is
        what "inside the domain" means here; on its training recordings alone the model looks more
        confident and steadier than on any new video of the same room, and the check would cry wolf.
        """
        from gaitpose.infer.domain import domain_reference

        chosen = Path(self.results["evaluate"]["chosen"])
        failed = set(self.results["label"].get("failed") or {})
        videos = [p for p, rid in zip(self.inputs.paths, self.inputs.ids, strict=True) if rid not in failed]
        block = domain_reference(chosen, videos, threads=self.opts.threads, max_frames=REFERENCE_MAX_FRAMES)
        st = block["stats"]
        self.say(f"  reference on {len(block['recordings'])} recording(s): confidence median "
                 f"{st['confidence_median']:.2f}, jitter median {st['jitter_median']:.4f}")
        return {"reference": block}
