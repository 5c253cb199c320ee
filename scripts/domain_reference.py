"""Measure a specialised pose model's domain reference and store it in ``meta.json`` beside the model.

Why: ``gaitpose analyze`` compares each run of a specialised model (kind ``sppe``) with what the
model showed on its own validation recordings (``gaitpose.infer.domain``) and warns, or falls
back to the general model, when a video is outside that domain. This script makes the
reference for a model that has none (the shipped student); ``gaitpose specialise`` calls
``gaitpose.infer.domain.domain_reference`` itself.

    python scripts/domain_reference.py models/student/model.onnx ../shared/data/videos/*.mp4

Prints each recording's figures and the pooled reference; ``--dry-run`` does not write.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/domain_reference.py", description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="the pose ONNX model (kind sppe)")
    ap.add_argument("videos", type=Path, nargs="+", help="validation recordings of the model (inside its domain)")
    ap.add_argument("--localizer", type=Path, default=None, help="person localiser (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-frames", type=int, default=None, help="frames per recording (default: all)")
    ap.add_argument("--dry-run", action="store_true", help="print the reference, do not write meta.json")
    a = ap.parse_args(argv)
    from gaitpose.errors import InputError
    from gaitpose.infer.domain import domain_reference, store_domain_reference

    missing = [str(v) for v in [a.model, *a.videos] if not v.is_file()]
    if missing:
        print(f"error: not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        block = domain_reference(a.model, a.videos, localizer=a.localizer, threads=a.threads,
                                 max_frames=a.max_frames)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(block, indent=2))
    if not a.dry_run:
        print(f"written to {store_domain_reference(a.model, block)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
