"""The common reader interface: every recording format yields the same numpy frames.

The extractor (``gaitpose-data extract``) and the edge analyser (``gaitpose analyze``) both read
recordings through this interface, so it must stay free of torch and of heavy optional imports
(``rosbags`` is imported only when a ``.bag`` is opened).

Conventions shared by all readers:
  * ``t_ms`` is the frame's presentation time in milliseconds on the recording's own clock
    (colour and depth of one recording share that clock, up to a known offset handled by
    :mod:`gaitpose.io.sync`). Frames come out in increasing time order.
  * ``DepthFrame.index`` is the frame's position in :meth:`Recording.depth_timestamps`, so a
    pairing computed on timestamps can be served from a single forward pass over the frames.
  * Depth is ``uint16`` millimetres, 0 = no reading.
  * ``intrinsics`` follows the manifest contract: ``{"color": {fx, fy, cx, cy, width, height},
    "depth": {...}, "depth_to_color": {"rotation": 3x3 rows, "translation_m": [x, y, z]},
    "depth_scale_mm": 1.0}``; any key may be missing when the recording does not say.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError


@dataclass(frozen=True)
class ColorFrame:
    index: int  # position in the colour stream (0-based, presentation order)
    t_ms: float
    rgb: np.ndarray  # uint8 HxWx3, RGB order


    @property
    def image(self) -> np.ndarray:
        """What the pose runtime reads pixels from (see :class:`PlanarColorFrame`)."""
        return self.rgb


@dataclass(frozen=True)
class PlanarColorFrame:
    """A colour frame still in the decoder's YUV 4:2:0 planes; RGB is computed only where needed.

    ``image`` warps and resizes like an RGB array (:class:`gaitpose.io.planar.YuvImage`), so the
    pose runtime crops it without converting the whole frame; ``rgb`` converts the whole frame.
    """

    index: int
    t_ms: float
    image: Any  # gaitpose.io.planar.YuvImage

    @property
    def rgb(self) -> np.ndarray:
        return self.image.to_rgb()


@dataclass(frozen=True)
class DepthFrame:
    index: int  # position in Recording.depth_timestamps()
    t_ms: float
    depth: np.ndarray  # uint16 HxW millimetres, 0 = no reading


@dataclass
class VideoInfo:
    """What a caller needs to plan work before decoding a single frame."""

    path: str
    fps: float
    width: int
    height: int
    num_frames: int  # exact when the container says so, else estimated from the duration
    duration_s: float
    has_depth: bool
    depth_size: tuple[int, int] | None = None  # (width, height)
    extra: dict[str, Any] = field(default_factory=dict)


class Recording:
    """Base class for all readers. Subclasses fill the attributes and implement the iterators."""

    path: Path
    fps: float = 0.0
    size: tuple[int, int] = (0, 0)  # colour (width, height)
    num_frames: int = 0  # colour frames (may be an estimate)
    depth_size: tuple[int, int] | None = None
    intrinsics: dict[str, Any]

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.intrinsics = {}

    @property
    def has_depth(self) -> bool:
        return self.depth_size is not None

    def color_frames(self) -> Iterator[ColorFrame]:
        raise InputError(self.path, "this recording has no colour stream")

    def color_images(self, decode_threads: int | None = None) -> Iterator[ColorFrame | PlanarColorFrame]:
        """Colour frames for the pose runtime: planar (unconverted) where the reader can, else RGB.

        Consumers use ``frame.image`` (crop / resize it) and ``frame.rgb`` only when they need the
        whole RGB frame. Readers without a planar path yield their :meth:`color_frames`.
        ``decode_threads`` caps the video decoder's threads (None: FFmpeg's own choice); one is
        best when another thread runs the models on a two-core machine.
        """
        return self.color_frames()

    def depth_frames(self) -> Iterator[DepthFrame]:
        raise InputError(self.path, "this recording has no depth stream")

    def depth_timestamps(self) -> np.ndarray:
        """Times (ms, ascending) of all depth frames; empty when there is no depth."""
        return np.zeros(0, dtype=np.float64)

    def info(self) -> VideoInfo:
        w, h = self.size
        return VideoInfo(
            path=str(self.path),
            fps=self.fps,
            width=w,
            height=h,
            num_frames=self.num_frames,
            duration_s=self.num_frames / self.fps if self.fps else 0.0,
            has_depth=self.has_depth,
            depth_size=self.depth_size,
        )

    def close(self) -> None:
        """Release file handles. Iterators open their own handles, so this is usually a no-op."""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_depth_array(path: str | os.PathLike[str], depth: np.ndarray, what: str = "depth") -> np.ndarray:
    """Reject anything that is not 16-bit single-channel depth: 8-bit 'depth' is a visualisation, not data."""
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise InputError(path, f"{what} must be single-channel, got shape {tuple(depth.shape)}")
    if depth.dtype == np.uint8 or depth.dtype == np.int8:
        raise InputError(path, f"{what} is 8-bit; depth must be 16-bit millimetres")
    if depth.dtype != np.uint16:
        if np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer):
            if depth.size and (np.nanmin(depth) < 0 or np.nanmax(depth) > 65535):
                raise InputError(path, f"{what} values outside 0..65535 mm")
            depth = np.nan_to_num(depth.astype(np.float64)).round().astype(np.uint16)
        else:
            raise InputError(path, f"{what} has unsupported dtype {depth.dtype}")
    return depth


def camera_dict(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> dict[str, float | int]:
    return {
        "fx": float(fx),
        "fy": float(fy),
        "cx": float(cx),
        "cy": float(cy),
        "width": int(width),
        "height": int(height),
    }


def scale_camera(cam: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """Intrinsics of the same camera after resizing its image to ``width`` x ``height``.

    Pixel centres map as (u + 0.5) * s - 0.5, the same convention as :mod:`gaitpose.geometry`.
    """
    sx = width / cam["width"]
    sy = height / cam["height"]
    return camera_dict(
        cam["fx"] * sx, cam["fy"] * sy, (cam["cx"] + 0.5) * sx - 0.5, (cam["cy"] + 0.5) * sy - 0.5, width, height
    )


def require_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_file() and p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)")
    return p
