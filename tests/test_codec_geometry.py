"""Heatmap codec and crop geometry: the conventions training, evaluation and serving share."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.codec import decode_heatmaps, encode_heatmaps, flip_back, flip_keypoints
from gaitpose.geometry import affine_points, box_to_center_size, crop, get_affine_transform, invert_affine
from gaitpose.skeleton import FLIP_INDEX, INDEX, NUM_KEYPOINTS


def test_encode_decode_round_trip_subpixel() -> None:
    rng = np.random.default_rng(0)
    input_wh, stride = (192, 256), 4
    kp = np.stack([rng.uniform(24, 168, NUM_KEYPOINTS), rng.uniform(24, 232, NUM_KEYPOINTS)], axis=1)
    kp = kp.astype(np.float32)
    hm, w = encode_heatmaps(kp, np.ones(NUM_KEYPOINTS), (input_wh[0] // stride, input_wh[1] // stride), stride, 2.0)
    assert hm.shape == (NUM_KEYPOINTS, 64, 48) and (w == 1).all()
    coords, scores = decode_heatmaps(hm, stride)
    err = np.linalg.norm(coords - kp, axis=1)
    assert err.max() < 0.5, err.max()
    assert (scores > 0.9).all()


def test_batched_decode_matches_one_map_at_a_time_including_edges_and_empty_maps() -> None:
    rng = np.random.default_rng(1)
    kp = np.stack([rng.uniform(0, 191, NUM_KEYPOINTS), rng.uniform(0, 255, NUM_KEYPOINTS)], axis=1)
    kp[0] = (0.0, 0.0)  # peak in the corner: the Newton step must use edge-padded neighbours
    hm, _ = encode_heatmaps(kp.astype(np.float32), np.ones(NUM_KEYPOINTS), (48, 64), 4, 2.0)
    hm[5] = 0.0  # an empty map decodes to its argmax (0, 0) with score 0, no refinement
    batch = np.stack([hm, hm[:, ::-1].copy(), hm * 0.5])
    coords, scores = decode_heatmaps(batch, 4)
    assert coords.shape == (3, NUM_KEYPOINTS, 2) and scores.shape == (3, NUM_KEYPOINTS)
    for b in range(3):
        c1, s1 = decode_heatmaps(batch[b], 4)
        np.testing.assert_allclose(coords[b], c1, atol=1e-4)
        np.testing.assert_array_equal(scores[b], s1)
    assert scores[0, 5] == 0.0 and np.allclose(coords[0, 5], decode_heatmaps(np.zeros((1, 48, 64)), 4)[0][0])
    # halving a map's height does not move its decoded peak (DARK works in log space)
    np.testing.assert_allclose(coords[2], coords[0], atol=1e-3)
    assert np.linalg.norm(coords[0, 0] - kp[0]) < 4.0  # within one heatmap cell at the corner


def test_encode_marks_missing_and_off_map_joints() -> None:
    kp = np.full((NUM_KEYPOINTS, 2), 50.0, np.float32)
    kp[0] = (-100.0, 50.0)  # far off the crop
    weights = np.ones(NUM_KEYPOINTS, np.float32)
    weights[1] = 0.0  # dropped by the teacher
    hm, w = encode_heatmaps(kp, weights, (24, 32), 4, 2.0)
    assert w[0] == 0 and w[1] == 0 and (w[2:] == 1).all()
    assert hm[0].max() == 0 and hm[1].max() == 0 and hm[2].max() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("rotation", [0.0, 27.0, -40.0])
def test_crop_inverse_round_trip(rotation: float) -> None:
    center, size = box_to_center_size([100, 40, 80, 300], aspect_ratio=0.75, padding=1.25)
    assert size[0] / size[1] == pytest.approx(0.75, rel=1e-5)
    fwd = get_affine_transform(center, size, rotation, (192, 256))
    inv = get_affine_transform(center, size, rotation, (192, 256), inverse=True)
    pts = np.array([[110.0, 50.0], [150.3, 300.7], [170.0, 200.0]], np.float32)
    back = affine_points(affine_points(pts, fwd), inv)
    np.testing.assert_allclose(back, pts, atol=1e-3)
    np.testing.assert_allclose(invert_affine(fwd), inv, atol=1e-6)


def test_crop_moves_pixels_where_the_matrix_says() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[300:304, 200:204] = 255  # a bright 4x4 square centred at (201.5, 301.5)
    center, size = box_to_center_size([150, 200, 120, 200], 0.75)
    patch, matrix = crop(image, center, size, (96, 128), rotation_deg=15.0)
    ys, xs = np.nonzero(patch[..., 0] > 60)
    found = np.array([xs.mean(), ys.mean()])
    expected = affine_points(np.array([[201.5, 301.5]], np.float32), matrix)[0]
    assert np.linalg.norm(found - expected) < 0.6


def test_flip_back_is_an_involution() -> None:
    rng = np.random.default_rng(1)
    hm = rng.random((2, NUM_KEYPOINTS, 16, 12)).astype(np.float32)
    np.testing.assert_array_equal(flip_back(flip_back(hm)), hm)
    assert (FLIP_INDEX[FLIP_INDEX] == np.arange(NUM_KEYPOINTS)).all()
    assert FLIP_INDEX[INDEX["left_heel"]] == INDEX["right_heel"]


def test_flipped_image_targets_flip_back_to_original() -> None:
    """Heatmaps of a mirrored crop, flipped back, decode to the original keypoints (no shift)."""
    rng = np.random.default_rng(2)
    width, height, stride = 96, 128, 4
    kp = np.stack([rng.uniform(10, 86, NUM_KEYPOINTS), rng.uniform(10, 118, NUM_KEYPOINTS)], axis=1).astype(np.float32)
    hm_wh = (width // stride, height // stride)
    flipped_kp = flip_keypoints(kp, width)
    hm_flipped, _ = encode_heatmaps(flipped_kp, np.ones(NUM_KEYPOINTS), hm_wh, stride, 2.0)
    coords, _ = decode_heatmaps(flip_back(hm_flipped), stride)
    assert np.abs(coords - kp).max() < 0.5
    hm, _ = encode_heatmaps(kp, np.ones(NUM_KEYPOINTS), hm_wh, stride, 2.0)
    np.testing.assert_allclose(flip_back(hm_flipped), hm, atol=1e-5)
