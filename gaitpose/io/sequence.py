"""Colour video + separate depth sequence (folder of 16-bit PNGs, or a .npy/.npz stack) + timestamps.

Lab set-ups that record colour and depth with different tools end up with this layout. Frame
times must come from the recording, never from frame indices, so a timestamps CSV is required
(or a ``t_ms`` array inside the .npz). CSV formats (header row required, times in milliseconds
on the colour video's clock, ``frame`` = 0-based position in the sorted sequence):

* ``frame,t_ms``                      one row per DEPTH frame; colour times come from the video;
* ``frame,t_color_ms,t_depth_ms``     colour and depth times per index (blank cell = no frame);
* ``stream,frame,t_ms``               ``stream`` is ``color`` or ``depth``.

Depth PNGs are sorted by the numbers in their names (``depth_2.png`` before ``depth_10.png``).
Optional ``intrinsics.json`` in the depth folder (or ``<stem>.intrinsics.json`` beside a stack)
uses the manifest's intrinsics layout.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.io.base import (
    ColorFrame,
    DepthFrame,
    PlanarColorFrame,
    Recording,
    check_depth_array,
    require_file,
)
from gaitpose.io.video import VideoRecording

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def _natural_key(p: Path) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def read_timestamps_csv(path: str | os.PathLike[str]) -> tuple[dict[int, float], dict[int, float]]:
    """(colour index -> t_ms, depth index -> t_ms) from one of the documented CSV layouts."""
    p = require_file(path)
    color: dict[int, float] = {}
    depth: dict[int, float] = {}
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip().lower() for c in (reader.fieldnames or [])]
            reader.fieldnames = cols
            if "frame" not in cols:
                raise InputError(p, f"timestamps CSV needs a 'frame' column, has {cols}")
            for lineno, row in enumerate(reader, 2):
                try:
                    idx = int(row["frame"])
                    if "stream" in cols and "t_ms" in cols:
                        stream = row["stream"].strip().lower()
                        target = depth if stream == "depth" else color if stream in ("color", "colour") else None
                        if target is None:
                            raise ValueError(f"unknown stream {row['stream']!r}")
                        target[idx] = float(row["t_ms"])
                    elif "t_color_ms" in cols or "t_depth_ms" in cols:
                        if (row.get("t_color_ms") or "").strip():
                            color[idx] = float(row["t_color_ms"])
                        if (row.get("t_depth_ms") or "").strip():
                            depth[idx] = float(row["t_depth_ms"])
                    elif "t_ms" in cols:
                        depth[idx] = float(row["t_ms"])
                    else:
                        raise InputError(p, f"timestamps CSV needs t_ms or t_color_ms/t_depth_ms columns, has {cols}")
                except (TypeError, ValueError) as exc:
                    raise InputError(p, f"line {lineno}: bad timestamp row ({exc})") from None
    except UnicodeDecodeError:
        raise InputError(p, "timestamps CSV is not UTF-8 text") from None
    return color, depth


class DepthSequence:
    """Depth frames from a PNG folder or a .npy/.npz stack, accessed by index."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.times: np.ndarray | None = None
        self.intrinsics: dict[str, Any] = {}
        if self.path.is_dir():
            self.files = sorted(
                (f for f in self.path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key
            )
            if not self.files:
                raise InputError(self.path, "depth folder has no PNG/TIFF images")
            self._stack = None
            first = self._read_file(self.files[0])
            self.size = (first.shape[1], first.shape[0])
            self.count = len(self.files)
            sidecar = self.path / "intrinsics.json"
        else:
            require_file(self.path)
            self.files = []
            try:
                if self.path.suffix.lower() == ".npz":
                    with np.load(self.path) as z:
                        key = "depth" if "depth" in z.files else z.files[0]
                        stack = z[key]
                        if "t_ms" in z.files:
                            self.times = np.asarray(z["t_ms"], dtype=np.float64)
                elif self.path.suffix.lower() == ".npy":
                    stack = np.load(self.path, mmap_mode="r")
                else:
                    raise InputError(self.path, "depth must be a folder of 16-bit PNGs or a .npy/.npz stack")
            except (OSError, ValueError, IndexError) as exc:
                raise InputError(self.path, f"cannot read depth stack ({exc})") from None
            if stack.ndim == 2:
                stack = stack[None]
            if stack.ndim != 3:
                raise InputError(self.path, f"depth stack must be N x H x W, got shape {tuple(stack.shape)}")
            check_depth_array(self.path, np.asarray(stack[0]))
            self._stack = stack
            self.size = (stack.shape[2], stack.shape[1])
            self.count = stack.shape[0]
            sidecar = self.path.with_suffix(".intrinsics.json")
        if sidecar.exists():
            try:
                self.intrinsics = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(sidecar, f"not valid JSON ({exc})") from None

    def _read_file(self, f: Path) -> np.ndarray:
        import cv2

        img = cv2.imread(os.fspath(f), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f, "cannot decode depth image")
        return check_depth_array(f, img)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._stack is not None:
            return check_depth_array(self.path, np.asarray(self._stack[i]))
        img = self._read_file(self.files[i])
        if (img.shape[1], img.shape[0]) != self.size:
            raise InputError(
                self.files[i], f"depth image is {img.shape[1]}x{img.shape[0]}, others {self.size[0]}x{self.size[1]}"
            )
        return img


class SequenceRecording(Recording):
    """A colour video plus a separately stored depth sequence with explicit timestamps."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        depth: str | os.PathLike[str],
        timestamps: str | os.PathLike[str] | None = None,
        intrinsics: dict[str, Any] | None = None,
    ) -> None:
        self.video = VideoRecording(path, decode_depth_track=False)
        super().__init__(self.video.path)
        self.depth_seq = DepthSequence(depth)
        self.fps, self.size, self.num_frames = self.video.fps, self.video.size, self.video.num_frames
        self.depth_size = self.depth_seq.size
        color_t: dict[int, float] = {}
        if timestamps is not None:
            color_t, depth_t = read_timestamps_csv(timestamps)
        elif self.depth_seq.times is not None:
            depth_t = {i: float(t) for i, t in enumerate(self.depth_seq.times)}
        else:
            raise InputError(depth, "depth sequence needs a timestamps CSV (--timestamps) or a t_ms array in the .npz")
        src = timestamps if timestamps is not None else depth
        missing = [i for i in range(self.depth_seq.count) if i not in depth_t]
        if missing:
            raise InputError(src, f"no timestamp for depth frame(s) {missing[:5]} of {self.depth_seq.count}")
        extra = [i for i in depth_t if i >= self.depth_seq.count or i < 0]
        if extra:
            raise InputError(
                src, f"timestamps for depth frame(s) {extra[:5]} but the sequence has {self.depth_seq.count}"
            )
        dt = np.asarray([depth_t[i] for i in range(self.depth_seq.count)], dtype=np.float64)
        if dt.size > 1 and np.any(np.diff(dt) < 0):
            raise InputError(src, "depth timestamps go backwards")
        self._depth_times = dt
        self._color_override = color_t
        self.intrinsics = dict(intrinsics or self.depth_seq.intrinsics or self.video.intrinsics)

    def color_timestamps(self) -> np.ndarray:
        t = self.video.color_timestamps()
        for i, v in self._color_override.items():
            if 0 <= i < len(t):
                t[i] = v
        return t

    def depth_timestamps(self) -> np.ndarray:
        return self._depth_times.copy()

    def color_frames(self) -> Iterator[ColorFrame]:
        yield from self._retimed(self.video.color_frames())  # type: ignore[misc]

    def color_images(self, decode_threads: int | None = None) -> Iterator[ColorFrame | PlanarColorFrame]:
        return self._retimed(self.video.color_images(decode_threads))

    def _retimed(self, frames: Iterator[ColorFrame | PlanarColorFrame]) -> Iterator[ColorFrame | PlanarColorFrame]:
        """Frames with the timestamps CSV's colour times where it gives them."""
        for f in frames:
            t = self._color_override.get(f.index)
            yield f if t is None else dataclasses.replace(f, t_ms=t)

    def depth_frames(self) -> Iterator[DepthFrame]:
        for i in range(self.depth_seq.count):
            yield DepthFrame(index=i, t_ms=float(self._depth_times[i]), depth=self.depth_seq[i])
