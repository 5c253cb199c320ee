"""Decoded YUV 4:2:0 frames kept planar, converted to RGB only where a model looks.

Why: a gait video is stored as YUV 4:2:0, and turning every full frame into RGB costs about as
much as the pose model itself (1768x994: ~1 ms for the conversion, ~4 ms for the localiser's area
resize of the RGB frame). The pose model needs one 192x144 crop and the localiser one 320x192
thumbnail, so :class:`YuvImage` warps or resizes the Y, U and V planes straight to that size and
converts only those pixels. Colour conversion is linear, so "warp then convert" equals "convert
then warp" up to rounding and the chroma upsampling filter.

The YUV -> RGB matrix follows the frame's own colour space and range (BT.601 when unspecified,
BT.709, BT.2020; limited or full range), as FFmpeg's converter does, so crops match what
``frame.to_ndarray(format="rgb24")`` would have given. Chroma samples are taken as centred
between their four luma samples.

numpy + cv2 only: shared by the training-free runtime path.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

__all__ = ["ImageLike", "YuvImage", "area_resize", "resize_image", "yuv_to_rgb_matrix"]

# (Kr, Kb) luma weights per FFmpeg AVColorSpace code; anything else (2 = unspecified) is BT.601.
_LUMA_WEIGHTS = {1: (0.2126, 0.0722), 7: (0.212, 0.087), 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
_BT601 = (0.299, 0.114)
_FULL_RANGE = 2  # AVColorRange: 1 = MPEG (limited), 2 = JPEG (full), 0 = unspecified (limited)


def yuv_to_rgb_matrix(colorspace: int = 2, color_range: int = 0) -> np.ndarray:
    """3x4 matrix M with [R, G, B] = M @ [Y, U, V, 1] for 8-bit samples."""
    kr, kb = _LUMA_WEIGHTS.get(int(colorspace), _BT601)
    kg = 1.0 - kr - kb
    if int(color_range) == _FULL_RANGE:
        ys, yo, cs = 1.0, 0.0, 1.0
    else:
        ys, yo, cs = 255.0 / 219.0, 16.0, 255.0 / 224.0
    # R = Y' + 2(1-Kr) Cr;  B = Y' + 2(1-Kb) Cb;  G = Y' - (2 Kb (1-Kb) Cb + 2 Kr (1-Kr) Cr) / Kg
    m = np.array(
        [
            [ys, 0.0, 2 * (1 - kr) * cs],
            [ys, -2 * kb * (1 - kb) / kg * cs, -2 * kr * (1 - kr) / kg * cs],
            [ys, 2 * (1 - kb) * cs, 0.0],
        ]
    )
    offset = -m @ np.array([yo, 128.0, 128.0])
    return np.concatenate([m, offset[:, None]], axis=1)


class YuvImage:
    """One 4:2:0 frame as three planes; ``shape`` mimics the (H, W, 3) RGB array it stands for.

    ``owner`` keeps the decoder's frame alive when the planes are zero-copy views of its buffers.
    """

    __slots__ = ("_inverse", "matrix", "owner", "u", "v", "y")

    def __init__(
        self,
        y: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        matrix: np.ndarray | None = None,
        owner: Any = None,
    ) -> None:
        h, w = y.shape
        if u.shape != v.shape or u.shape != ((h + 1) // 2, (w + 1) // 2):
            raise ValueError(f"chroma planes {u.shape}/{v.shape} do not fit a 4:2:0 frame of {w}x{h}")
        self.y, self.u, self.v = y, u, v
        self.matrix = (yuv_to_rgb_matrix() if matrix is None else np.asarray(matrix, np.float64)).astype(np.float32)
        self._inverse: np.ndarray | None = None
        self.owner = owner

    @classmethod
    def from_av_frame(cls, frame: Any) -> YuvImage:
        """Zero-copy planes of a PyAV ``yuv420p``/``yuvj420p`` frame (the frame is kept alive)."""
        planes = []
        for plane in frame.planes[:3]:
            buf = np.frombuffer(plane, np.uint8)
            rows = buf.reshape(plane.height, -1)  # rows padded to plane.line_size
            planes.append(rows[:, : plane.width])
        full = 2 if frame.format.name == "yuvj420p" else int(getattr(frame, "color_range", 0) or 0)
        matrix = yuv_to_rgb_matrix(int(getattr(frame, "colorspace", 2) or 2), full)
        return cls(*planes, matrix=matrix, owner=frame)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> YuvImage:
        """Limited-range BT.601 4:2:0 encoding of an RGB image (tests and synthetic frames)."""
        h, w = rgb.shape[:2]
        m = yuv_to_rgb_matrix()
        inv = np.linalg.inv(np.vstack([m, [0, 0, 0, 1]]))[:3]
        yuv = cv2.transform(rgb.astype(np.float32), inv.astype(np.float32))
        y = np.clip(np.rint(yuv[..., 0]), 0, 255).astype(np.uint8)
        uv = cv2.resize(yuv[..., 1:], ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        uv = np.clip(np.rint(uv), 0, 255).astype(np.uint8)
        return cls(y, np.ascontiguousarray(uv[..., 0]), np.ascontiguousarray(uv[..., 1]), matrix=m)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (int(self.y.shape[0]), int(self.y.shape[1]), 3)

    def _yuv_of(self, rgb: tuple[float, ...]) -> tuple[float, float, float]:
        if self._inverse is None:
            self._inverse = np.linalg.inv(np.vstack([self.matrix.astype(np.float64), [0, 0, 0, 1]]))[:3]
        y, u, v = self._inverse @ np.array([*rgb, 1.0])
        return float(y), float(u), float(v)

    def _to_rgb(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Same-size Y, U, V planes -> uint8 RGB (saturated, rounded)."""
        return cv2.transform(cv2.merge([y, u, v]), self.matrix)

    def to_rgb(self) -> np.ndarray:
        """The whole frame in RGB (chroma upsampled bilinearly)."""
        h, w = self.y.shape
        u = cv2.resize(self.u, (w, h), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(self.v, (w, h), interpolation=cv2.INTER_LINEAR)
        return self._to_rgb(self.y, u, v)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        rgb = self.to_rgb()
        return rgb if dtype is None else rgb.astype(dtype)

    def warp(
        self,
        matrix: np.ndarray,
        output_wh: tuple[int, int],
        *,
        interpolation: int = cv2.INTER_LINEAR,
        border_value: float | tuple[float, ...] = 0,
        border_mode: int = cv2.BORDER_CONSTANT,
    ) -> np.ndarray:
        """``cv2.warpAffine`` of the RGB frame by the 2x3 ``matrix``, computed on the planes."""
        wh = (int(output_wh[0]), int(output_wh[1]))
        border = border_value if isinstance(border_value, tuple) else (float(border_value),) * 3
        by, bu, bv = self._yuv_of(tuple(float(b) for b in border[:3]))
        m = np.asarray(matrix, np.float64)
        # A chroma sample (i, j) sits at luma position (2i + 0.5, 2j + 0.5).
        m_c = m @ np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
        kw = {"flags": interpolation, "borderMode": border_mode}
        y = cv2.warpAffine(self.y, m, wh, borderValue=by, **kw)
        u = cv2.warpAffine(self.u, m_c, wh, borderValue=bu, **kw)
        v = cv2.warpAffine(self.v, m_c, wh, borderValue=bv, **kw)
        return self._to_rgb(y, u, v)

    def resize(self, output_wh: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        """``cv2.resize`` of the RGB frame, computed on the planes (area: :func:`area_resize`)."""
        wh = (int(output_wh[0]), int(output_wh[1]))
        y, u, v = (_resize(p, wh, interpolation) for p in (self.y, self.u, self.v))
        return self._to_rgb(y, u, v)


ImageLike = np.ndarray | YuvImage
"""What the pose runtime crops from: an RGB array or a planar frame."""


def area_resize(image: np.ndarray, output_wh: tuple[int, int]) -> np.ndarray:
    """Area-style downscale, fast: bilinear to output x 2^k (a factor of at most 2), then k 2x area steps.

    Why: ``cv2.INTER_AREA`` at a non-integer factor takes its slow general path (3.1-3.4 ms for the Y
    plane of a 1768x994 frame to the localiser's 320x180, as long as the student network on a crop,
    every time the localiser runs). Halving by area is OpenCV's fast path, and bilinear does not alias
    at factors up to 2; together 0.57 ms, within 0.3-0.6 grey levels of INTER_AREA on average on the
    project's clips. Upscales and factors up to 2 use INTER_AREA itself.
    """
    w, h = int(output_wh[0]), int(output_wh[1])
    k = 0
    while image.shape[1] > (w << (k + 1)) and image.shape[0] > (h << (k + 1)):
        k += 1
    if k:
        image = cv2.resize(image, (w << k, h << k), interpolation=cv2.INTER_LINEAR)
        for j in range(k - 1, 0, -1):
            image = cv2.resize(image, (w << j, h << j), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def _resize(image: np.ndarray, wh: tuple[int, int], interpolation: int) -> np.ndarray:
    if interpolation == cv2.INTER_AREA:
        return area_resize(image, wh)
    return cv2.resize(image, wh, interpolation=interpolation)


def resize_image(image: ImageLike, output_wh: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """``cv2.resize`` of an RGB array or a planar frame, RGB out (the planar one never converted whole).

    ``cv2.INTER_AREA`` goes through :func:`area_resize`, for arrays and planes alike, so a model
    trained on thumbnails made here sees the same pixels when serving.
    """
    if isinstance(image, np.ndarray):
        return _resize(image, (int(output_wh[0]), int(output_wh[1])), interpolation)
    return image.resize(output_wh, interpolation)
