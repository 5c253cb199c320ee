"""Top-down pose inference: preprocess (affine crop) -> ONNX Runtime -> decode, in numpy/cv2.

Everything model-specific (input size, mean/std, channels, stride, keypoint names) is read
from the metadata embedded in the ONNX file, so one class serves every exported student.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitpose.codec import decode_heatmaps, flip_back
from gaitpose.errors import InputError
from gaitpose.geometry import affine_points, box_to_center_size, crop, invert_affine
from gaitpose.infer.session import make_session
from gaitpose.io.planar import ImageLike
from gaitpose.modelmeta import META_KEY, ModelMeta
from gaitpose.normalise import normalise_depth, normalise_rgb, rgb_normaliser


@dataclass
class PoseResult:
    """Keypoints of one person in full-image pixels."""

    keypoints: np.ndarray  # (K, 2)
    scores: np.ndarray  # (K,)
    box: np.ndarray  # (4,) the x, y, w, h box the crop was taken from


def load_onnx_meta(path: str | os.PathLike[str]) -> ModelMeta:
    """Read gaitpose metadata from an ONNX file without building an inference session."""
    path = Path(path)
    return _meta_from_session(path, make_session(path, 1))


def _meta_from_session(path: Path, sess) -> ModelMeta:
    custom = sess.get_modelmeta().custom_metadata_map
    if META_KEY not in custom:
        raise InputError(path, f"ONNX model has no '{META_KEY}' metadata; export it with `gaitpose export`")
    return ModelMeta.from_json(custom[META_KEY])


class OnnxPoseEstimator:
    """Run an exported gaitpose SPPE on person boxes in full images."""

    def __init__(
        self, model_path: str | os.PathLike[str], threads: int | None = None, spinning: bool | None = None
    ) -> None:
        self.path = Path(model_path)
        if not self.path.exists():
            raise InputError(self.path, "model file does not exist")
        self.session = make_session(self.path, threads, spinning)
        self.meta = _meta_from_session(self.path, self.session)
        if self.meta.kind != "sppe":
            raise InputError(self.path, f"expected a pose (sppe) model, got kind '{self.meta.kind}'")
        self.input_name = self.session.get_inputs()[0].name
        self._normaliser = rgb_normaliser(self.meta)

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        return self.meta.keypoint_names

    def preprocess(
        self, image_rgb: ImageLike, box_xywh: np.ndarray, depth_mm: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Crop and normalise one person: returns (CHW float32 tensor, 2x3 crop matrix)."""
        center, size = box_to_center_size(box_xywh, self.meta.aspect_ratio, self.meta.padding)
        patch, matrix = crop(image_rgb, center, size, self.meta.input_wh)
        x = normalise_rgb(patch, self.meta, self._normaliser)
        if self.meta.in_channels == 4:
            if depth_mm is None:
                d = np.zeros((1, *x.shape[1:]), dtype=np.float32)
            else:
                dpatch, _ = crop(depth_mm.astype(np.float32), center, size, self.meta.input_wh,
                                 interpolation=0)
                d = normalise_depth(dpatch, self.meta)
            x = np.concatenate([x, d], axis=0)
        return x.astype(np.float32, copy=False), matrix

    def run_heatmaps(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output for an (N, C, H, W) batch."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def predict_crops(self, batch: np.ndarray, flip_test: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints in crop pixels (N, K, 2) and scores (N, K) for preprocessed crops."""
        if flip_test:  # one run over crops + mirrored crops
            n = len(batch)
            both = self.run_heatmaps(np.concatenate([batch, batch[..., ::-1]]))
            heatmaps = 0.5 * (both[:n] + flip_back(both[n:]))
        else:
            heatmaps = self.run_heatmaps(batch)
        return decode_heatmaps(heatmaps, self.meta.stride)

    def predict(
        self,
        image_rgb: ImageLike,
        boxes: Sequence[np.ndarray],
        depth_mm: np.ndarray | None = None,
        flip_test: bool = False,
    ) -> list[PoseResult]:
        """Keypoints in full-image pixels for each box (x, y, w, h) in one RGB image or planar frame."""
        if len(boxes) == 0:
            return []
        crops, mats = zip(*(self.preprocess(image_rgb, b, depth_mm) for b in boxes), strict=True)
        batch = crops[0][None] if len(crops) == 1 else np.stack(crops)  # one subject per frame: no copy
        coords, scores = self.predict_crops(batch, flip_test=flip_test)
        out = []
        for b, m, c, s in zip(boxes, mats, coords, scores, strict=True):
            out.append(PoseResult(affine_points(c, invert_affine(m)), s, np.asarray(b, dtype=np.float32)))
        return out
