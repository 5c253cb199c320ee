"""The frame store's ``manifest.jsonl``: one JSON object per extracted frame.

Keys (paths relative to the frame store root):
  recording, subject, frame_index, t_color_ms, color_path, width, height,
  and when depth exists: t_depth_ms, depth_path, pair_error_ms;
  optionally intrinsics: {"color": {fx, fy, cx, cy, width, height}, "depth": {...}, "depth_scale_mm": 1.0}.

Rows are appended only after the frames they point to are fully written, one ``write`` per
row, so a crash can at worst lose the last row, never leave one pointing at a partial file.
A torn last line (no trailing newline) is ignored on reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.jsonl"
REQUIRED_KEYS = ("recording", "frame_index", "t_color_ms", "color_path")


def manifest_path(frames_dir: str | os.PathLike[str]) -> Path:
    return Path(frames_dir) / MANIFEST_NAME


def read_manifest(frames_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete rows of a frame store's manifest (empty list if there is none)."""
    path = manifest_path(frames_dir)
    if not path.exists():
        return []
    return list(iter_manifest(path))


def iter_manifest(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                break  # torn final line from an interrupted run
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({exc.msg})") from None
            missing = [k for k in REQUIRED_KEYS if k not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: manifest row lacks {', '.join(missing)}")
            yield row


class ManifestWriter:
    """Appends rows durably; truncates a torn last line left by an interrupted run first."""

    def __init__(self, frames_dir: str | os.PathLike[str]) -> None:
        self.path = manifest_path(frames_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def _repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)

    def append(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
