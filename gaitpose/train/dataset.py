"""Training/validation dataset: labelled records -> normalised crops + Gaussian heatmap targets.

Records are parsed once (``gaitpose.labels.load_records``); ``__getitem__`` only reads pixels
and crops them with the same numpy geometry (``gaitpose.geometry``), normalisation
(``ModelMeta`` mean/std, depth in mm) and targets (``gaitpose.codec.encode_heatmaps``) that
inference and evaluation use, so train and serve cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from gaitpose.codec import encode_heatmaps, flip_keypoints
from gaitpose.eval.evaluate import read_depth_mm, read_rgb
from gaitpose.geometry import affine_points, box_to_center_size, crop
from gaitpose.labels import PoseRecord
from gaitpose.modelmeta import ModelMeta
from gaitpose.normalise import normalise_depth, normalise_rgb
from gaitpose.skeleton import FLIP_INDEX
from gaitpose.train.augment import border_cut, colour_jitter, compose, flip_matrix, sample_crop
from gaitpose.train.config import AugConfig


class PoseDataset(Dataset):
    """Top-down crops of labelled people with heatmap targets weighted by teacher confidence."""

    def __init__(
        self,
        records: Sequence[PoseRecord],
        input_size: tuple[int, int],
        stride: int = 4,
        sigma: float = 2.0,
        augment: bool = False,
        in_channels: int = 3,
        aug: AugConfig | None = None,
        padding: float = 1.25,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        if in_channels not in (3, 4):
            raise ValueError(f"in_channels must be 3 (RGB) or 4 (RGB + depth), got {in_channels}")
        self.records = list(records)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.stride = int(stride)
        self.sigma = float(sigma)
        self.augment = bool(augment)
        self.in_channels = int(in_channels)
        self.aug = aug or AugConfig()
        self.seed = int(seed)
        self.meta = ModelMeta(
            input_size=self.input_size, in_channels=self.in_channels, stride=self.stride, padding=float(padding)
        )
        self.heatmap_wh = (self.input_size[1] // self.stride, self.input_size[0] // self.stride)
        self._rng = np.random.default_rng([self.seed, 0])
        # Optional in-memory cache of a region around each subject, decoded once. Full HD JPEG
        # decoding dominated CPU training time; the region (2.2x the crop, at most ~3x the network
        # resolution) covers every scale/rotation augmentation, so crops from it match crops from
        # the full frame up to resampling. Filled before DataLoader workers fork, so they share it.
        self._regions: list[tuple[np.ndarray, np.ndarray]] | None = None
        if cache and self.in_channels == 3:
            self._regions = [self._region(rec) for rec in self.records]

    def _region(self, rec: PoseRecord) -> tuple[np.ndarray, np.ndarray]:
        """(patch, 2x3 matrix frame -> patch) for one record."""
        image = read_rgb(rec.image_path)
        center, size = box_to_center_size(rec.bbox, self.meta.aspect_ratio, self.meta.padding)
        region = size * 2.2
        s = float(min(1.0, 3.0 * self.input_size[1] / region[0]))
        x0, y0 = center - region / 2
        matrix = np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]], dtype=np.float64)
        out_wh = (int(np.ceil(region[0] * s)), int(np.ceil(region[1] * s)))
        patch = cv2.warpAffine(image, matrix, out_wh, flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return patch, matrix

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Reseed augmentation for an epoch, so a resumed run sees the same samples (workers=0)."""
        self._rng = np.random.default_rng([self.seed, int(epoch)])

    def reseed(self, seed: int) -> None:
        """Called in each DataLoader worker with torch's per-worker seed (which follows the loader's generator)."""
        self._rng = np.random.default_rng(int(seed) % (2**32))

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        meta = self.meta
        input_wh = meta.input_wh
        keypoints = rec.keypoints.astype(np.float32)
        weights = rec.scores.astype(np.float32)
        bbox = rec.bbox
        to_image = None  # frame -> cached region, when cached
        if self._regions is not None:
            image, to_image = self._regions[index]
            keypoints = affine_points(keypoints, to_image)
            s = to_image[0, 0]
            bbox = np.array([bbox[0] * s + to_image[0, 2], bbox[1] * s + to_image[1, 2], bbox[2] * s, bbox[3] * s],
                            dtype=np.float32)
        else:
            image = read_rgb(rec.image_path)
        rotation, flip = 0.0, False
        if self.augment:
            center, size, rotation, flip = sample_crop(
                bbox, keypoints, weights, meta.aspect_ratio, meta.padding, self.aug, self._rng
            )
        else:
            center, size = box_to_center_size(bbox, meta.aspect_ratio, meta.padding)
        patch, matrix = crop(image, center, size, input_wh, rotation)
        kp_crop = affine_points(keypoints, matrix)
        if to_image is not None:
            matrix = compose(matrix, to_image)
        if flip:
            patch = np.ascontiguousarray(patch[:, ::-1])
            kp_crop = flip_keypoints(kp_crop, input_wh[0])
            weights = weights[FLIP_INDEX]
            matrix = compose(flip_matrix(input_wh[0]), matrix)
        if self.augment:
            patch = colour_jitter(patch, self.aug, self._rng)
            patch, weights = border_cut(patch, kp_crop, weights, self.aug, self._rng)
        x = normalise_rgb(patch, meta)
        if self.in_channels == 4:
            d = np.zeros((1, *x.shape[1:]), dtype=np.float32)
            drop = self.augment and self._rng.random() < self.aug.depth_dropout_prob
            if rec.depth_path is not None and not drop:
                depth = read_depth_mm(rec.depth_path)
                dpatch, _ = crop(depth, center, size, input_wh, rotation, interpolation=cv2.INTER_NEAREST)
                if flip:
                    dpatch = dpatch[:, ::-1]
                d = normalise_depth(dpatch, meta)
            x = np.concatenate([x, d], axis=0)
        heatmaps, target_weight = encode_heatmaps(kp_crop, weights, self.heatmap_wh, self.stride, self.sigma)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "heatmaps": torch.from_numpy(heatmaps),
            "target_weight": torch.from_numpy(target_weight),
            "matrix": torch.from_numpy(np.asarray(matrix, dtype=np.float32)),
            "index": index,
        }


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: per-worker augmentation seed derived from torch's."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, PoseDataset):
        info.dataset.reseed(info.seed)
