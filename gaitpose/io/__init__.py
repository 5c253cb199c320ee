"""Recording readers with one interface, numpy out, no torch.

>>> rec = open_recording("walk.mkv")              # colour (+ depth track if present)
>>> rec = open_recording("walk.bag")              # RealSense bag (needs rosbags)
>>> rec = open_recording("walk.mp4", depth="depth_pngs/", timestamps="times.csv")
>>> for f in rec.color_frames(): f.index, f.t_ms, f.rgb   # uint8 HxWx3 RGB
>>> for d in rec.depth_frames(): d.index, d.t_ms, d.depth  # uint16 HxW millimetres
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError
from gaitpose.io.base import (
    ColorFrame,
    DepthFrame,
    Recording,
    VideoInfo,
    camera_dict,
    check_depth_array,
    require_file,
    scale_camera,
)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".mjpeg", ".mjpg")
BAG_SUFFIXES = (".bag",)

__all__ = [
    "BAG_SUFFIXES",
    "VIDEO_SUFFIXES",
    "ColorFrame",
    "DepthFrame",
    "Recording",
    "VideoInfo",
    "camera_dict",
    "check_depth_array",
    "open_recording",
    "read_video_info",
    "scale_camera",
]


def open_recording(
    path: str | os.PathLike[str],
    depth: str | os.PathLike[str] | None = None,
    timestamps: str | os.PathLike[str] | None = None,
    intrinsics: dict[str, Any] | None = None,
) -> Recording:
    """Open any supported recording; raises :class:`InputError` (one line, names the file) if it cannot.

    ``depth``/``timestamps`` pair a plain colour video with a separately stored depth sequence.
    ``intrinsics`` overrides what the recording itself says (manifest layout).
    """
    p = require_file(path)
    if p.is_dir():
        raise InputError(p, "is a folder, expected a video or .bag file")
    if p.suffix.lower() in BAG_SUFFIXES:
        if depth is not None:
            raise InputError(p, "a .bag carries its own depth; --depth is only for plain videos")
        from gaitpose.io.bag import BagRecording

        rec: Recording = BagRecording(p)
    elif depth is not None:
        from gaitpose.io.sequence import SequenceRecording

        if not Path(depth).exists():
            raise InputError(depth, "depth path not found")
        rec = SequenceRecording(p, depth, timestamps, intrinsics)
    else:
        from gaitpose.io.video import VideoRecording

        if timestamps is not None:
            raise InputError(timestamps, "--timestamps needs --depth (a separately stored depth sequence)")
        rec = VideoRecording(p)
    if intrinsics:
        rec.intrinsics = dict(intrinsics)
    return rec


def read_video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """fps, size, frame count and whether depth is present, without decoding frames."""
    rec = open_recording(path)
    try:
        return rec.info()
    finally:
        rec.close()
