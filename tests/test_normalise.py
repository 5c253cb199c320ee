"""Crop normalisation (gaitpose.normalise): the uint8 lookup path gives the arithmetic path's bits."""

from __future__ import annotations

import numpy as np

from gaitpose.modelmeta import ModelMeta
from gaitpose.normalise import normalise_rgb, rgb_normaliser


def test_lookup_path_is_bit_identical_to_the_multiply_add() -> None:
    meta = ModelMeta(kind="sppe", input_size=(192, 144), in_channels=3, stride=4, padding=1.25,
                     mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    patch = frame[10:202:1, 20:164]  # a view, as crops of a decoded frame can be
    got = normalise_rgb(patch, meta)
    scale, offset = rgb_normaliser(meta)
    want = patch.transpose(2, 0, 1).astype(np.float32) * scale + offset
    assert got.dtype == np.float32 and got.shape == (3, 192, 144) and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, want)
    # every uint8 value of every channel maps as the arithmetic does (the whole table)
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    table = ramp.transpose(2, 0, 1).astype(np.float32) * scale + offset
    np.testing.assert_array_equal(normalise_rgb(ramp, meta), table)
    # float input keeps the arithmetic path
    np.testing.assert_allclose(normalise_rgb(patch.astype(np.float32), meta), want, rtol=1e-6)
