"""An extraction run's settings and bookkeeping: options, per-recording summary, recording ids and subjects.

Why apart from :mod:`data_tools.extract`: these are what a caller (the CLI, ``gaitpose specialise``,
the benchmarks) prepares and reads back; the extraction itself does not need them to be read.
The output folder is checked for writing before any work is done.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError
from gaitpose.io.sync import SyncReport

__all__ = ["ExtractOptions", "ExtractSummary", "check_output_dir", "read_subjects_csv", "recording_ids"]


@dataclass
class ExtractOptions:
    stride: int = 1
    start_s: float | None = None
    end_s: float | None = None
    max_frames: int | None = None  # per recording, counted over the selected frames (done or not)
    max_size: int | None = None  # longest side of the written images, pixels
    tolerance_ms: float | None = None
    clock_offset_ms: float = 0.0
    register: bool = True
    jpeg_quality: int = 95

    def validate(self) -> None:
        if self.stride < 1:
            raise ValueError("--stride must be >= 1")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("--max-frames must be >= 1")
        if self.max_size is not None and self.max_size < 16:
            raise ValueError("--max-size must be >= 16 pixels")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("--end-s must be greater than --start-s")
        if self.tolerance_ms is not None and self.tolerance_ms < 0:
            raise ValueError("--tolerance-ms must be >= 0")


@dataclass
class ExtractSummary:
    recording: str
    source: str
    subject: str | None
    frames_written: int = 0
    frames_skipped: int = 0  # already in the manifest
    frames_selected: int = 0
    has_depth: bool = False
    registered: bool = False
    sync: SyncReport | None = None
    seconds: float = 0.0
    error: str | None = None  # one line naming the file, when the recording failed
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        head = f"{self.recording}: {self.frames_written} written, {self.frames_skipped} skipped"
        if self.seconds > 0 and self.frames_written:
            head += f" ({self.frames_written / self.seconds:.1f} frames/s)"
        if self.sync is not None:
            head += f"; depth: {self.sync.summary()}"
        return head


def check_output_dir(frames_dir: str | os.PathLike[str]) -> Path:
    """Create the frame store folder and prove we can write to it, before any work is done."""
    out = Path(frames_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(out, f"output folder is not writable ({exc.strerror or exc})") from None
    return out


def read_subjects_csv(path: str | os.PathLike[str]) -> dict[str, str]:
    """``recording,subject`` rows -> mapping; ``recording`` may be the id, file stem or file name."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "subjects CSV not found")
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip().lower() for c in reader.fieldnames or []]
        reader.fieldnames = cols
        if "recording" not in cols or "subject" not in cols:
            raise InputError(p, f"subjects CSV needs columns recording,subject; has {cols}")
        return {r["recording"].strip(): r["subject"].strip() for r in reader if (r.get("recording") or "").strip()}


def recording_ids(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """File stems, made unique in input order (``walk``, ``walk_2``...) so re-runs map the same way."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for p in inputs:
        stem = Path(p).stem or "recording"
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        rid = stem if n == 1 else f"{stem}_{n}"
        while rid in ids:
            n += 1
            rid = f"{stem}_{n}"
        ids.append(rid)
    return ids
