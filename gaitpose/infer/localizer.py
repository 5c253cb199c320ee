"""Runtime person localiser (ONNX Runtime + numpy + cv2): letterbox, run, decode peaks, undo letterbox.

The network (``gaitpose.nn.localizer``) sees the whole frame letterboxed to its input size: the
frame is resized with one scale per axis chosen so the aspect ratio is kept (``sx == sy`` up to
rounding of the resized size), centred, and padded with black. The exact per-axis scales and the
integer padding are kept so decoded boxes map back to frame pixels exactly, with the same pixel
centre convention as :mod:`gaitpose.geometry` and :mod:`gaitpose.codec`:
``u = (x + 0.5) * s - 0.5 + pad``.

Decoding follows CenterNet: a peak is a heatmap cell equal to the maximum of its 3x3
neighbourhood (max-pool NMS, done with ``cv2.dilate``) and above a score threshold; its box
size and sub-cell offset are read at that cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gaitpose.codec import heatmap_to_input
from gaitpose.errors import InputError
from gaitpose.infer.pose import _meta_from_session
from gaitpose.infer.session import make_session
from gaitpose.io.planar import ImageLike, resize_image
from gaitpose.modelmeta import ModelMeta
from gaitpose.normalise import normalise_rgb, rgb_normaliser

Detection = tuple[np.ndarray, float]  # (x, y, w, h) in frame pixels, score 0..1


@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``src_wh`` was placed in the network input of ``dst_wh``."""

    src_wh: tuple[int, int]
    dst_wh: tuple[int, int]
    new_wh: tuple[int, int]  # resized frame size inside the input
    pad: tuple[int, int]  # (left, top) padding in input pixels

    @classmethod
    def fit(cls, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> Letterbox:
        w, h = src_wh
        dw, dh = dst_wh
        scale = min(dw / w, dh / h)
        nw, nh = min(dw, max(1, round(w * scale))), min(dh, max(1, round(h * scale)))
        return cls((int(w), int(h)), (int(dw), int(dh)), (nw, nh), ((dw - nw) // 2, (dh - nh) // 2))

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.new_wh[0] / self.src_wh[0], self.new_wh[1] / self.src_wh[1]

    def apply(self, image: ImageLike) -> np.ndarray:
        """Resize and pad an image (H, W, C) into the input canvas.

        ``image`` may also be a planar frame with a ``resize(wh, interpolation)`` method
        (:class:`gaitpose.io.planar.YuvImage`), which yields the RGB thumbnail directly.
        """
        resized = resize_image(image, self.new_wh, cv2.INTER_AREA)
        canvas = np.zeros((self.dst_wh[1], self.dst_wh[0], *resized.shape[2:]), dtype=resized.dtype)
        x0, y0 = self.pad
        canvas[y0 : y0 + self.new_wh[1], x0 : x0 + self.new_wh[0]] = resized
        return canvas

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates -> input pixel coordinates."""
        sx, sy = self.scale_xy
        xy = np.asarray(xy, dtype=np.float64)
        return np.stack([(xy[..., 0] + 0.5) * sx - 0.5 + self.pad[0], (xy[..., 1] + 0.5) * sy - 0.5 + self.pad[1]], -1)

    def to_source(self, uv: np.ndarray) -> np.ndarray:
        """Input pixel coordinates -> frame pixel coordinates."""
        sx, sy = self.scale_xy
        uv = np.asarray(uv, dtype=np.float64)
        return np.stack([(uv[..., 0] - self.pad[0] + 0.5) / sx - 0.5, (uv[..., 1] - self.pad[1] + 0.5) / sy - 0.5], -1)

    def box_to_input(self, box_xywh: np.ndarray) -> np.ndarray:
        x, y, w, h = (float(v) for v in box_xywh)
        sx, sy = self.scale_xy
        cx, cy = self.to_input(np.array([x + w / 2, y + h / 2]))
        return np.array([cx - w * sx / 2, cy - h * sy / 2, w * sx, h * sy])

    def box_to_source(self, center_uv: np.ndarray, size_wh: np.ndarray) -> np.ndarray:
        sx, sy = self.scale_xy
        cx, cy = self.to_source(np.asarray(center_uv, dtype=np.float64))
        w, h = float(size_wh[0]) / sx, float(size_wh[1]) / sy
        return np.array([cx - w / 2, cy - h / 2, w, h], dtype=np.float32)


def decode_localizer(
    maps: np.ndarray,
    letterbox: Letterbox,
    stride: int,
    *,
    score_threshold: float = 0.3,
    max_detections: int = 10,
) -> list[Detection]:
    """Peaks of a (5, h, w) output (sigmoid centre, w/W, h/H, dx, dy) -> boxes in frame pixels, best first."""
    heat = np.ascontiguousarray(maps[0], dtype=np.float32)
    pooled = cv2.dilate(heat, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0.0)
    ys, xs = np.nonzero((heat >= pooled) & (heat >= score_threshold))
    if len(xs) == 0:
        return []
    scores = heat[ys, xs]
    order = np.argsort(-scores, kind="stable")[:max_detections]
    in_w, in_h = letterbox.dst_wh
    out: list[Detection] = []
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        cell = np.array([x + maps[3, y, x], y + maps[4, y, x]], dtype=np.float32)
        center_uv = heatmap_to_input(cell, stride)
        size = np.array([max(float(maps[1, y, x]), 1e-3) * in_w, max(float(maps[2, y, x]), 1e-3) * in_h])
        out.append((letterbox.box_to_source(center_uv, size), float(scores[i])))
    return out


class OnnxLocalizer:
    """Find people in full frames with an exported localiser (ModelMeta kind ``localizer``)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        threads: int | None = None,
        score_threshold: float = 0.3,
        spinning: bool | None = None,
    ) -> None:
        self.path = Path(model_path)
        if not self.path.exists():
            raise InputError(self.path, "model file does not exist")
        self.session = make_session(self.path, threads, spinning)
        self.meta: ModelMeta = _meta_from_session(self.path, self.session)
        if self.meta.kind != "localizer":
            raise InputError(self.path, f"expected a localizer model, got kind '{self.meta.kind}'")
        self.input_name = self.session.get_inputs()[0].name
        self.score_threshold = score_threshold
        self._normaliser = rgb_normaliser(self.meta)
        self.calls = 0
        self._letterbox: Letterbox | None = None

    def letterbox_for(self, image_wh: tuple[int, int]) -> Letterbox:
        lb = self._letterbox
        if lb is None or lb.src_wh != tuple(image_wh):
            lb = self._letterbox = Letterbox.fit(tuple(image_wh), self.meta.input_wh)
        return lb

    def preprocess(self, rgb: ImageLike) -> tuple[np.ndarray, Letterbox]:
        lb = self.letterbox_for((rgb.shape[1], rgb.shape[0]))
        x = normalise_rgb(lb.apply(rgb), self.meta, self._normaliser)
        # Padding is black in the image, i.e. normalised black, exactly as in training.
        return x[None], lb

    def raw(self, rgb: ImageLike) -> tuple[np.ndarray, Letterbox]:
        x, lb = self.preprocess(rgb)
        return self.session.run(None, {self.input_name: x})[0][0], lb

    def detect(self, rgb: ImageLike, max_detections: int = 10) -> list[Detection]:
        """People in one RGB frame as ((x, y, w, h) frame pixels, score), best score first."""
        self.calls += 1
        maps, lb = self.raw(rgb)
        return decode_localizer(
            maps, lb, self.meta.stride, score_threshold=self.score_threshold, max_detections=max_detections
        )
