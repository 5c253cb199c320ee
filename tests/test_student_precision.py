"""Heatmap decoder options and the input-size study's graph edit (benchmarks.student_precision).

The decoders are judged on synthetic maps with known sub-pixel peaks: each refinement must beat
plain argmax by a margin that argmax cannot meet. The free-size copy of the shipped student must
give the shipped network's output at the trained size and run at a larger one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gaitpose.codec import DECODE_METHODS, decode_heatmaps, encode_heatmaps
from gaitpose.skeleton import NUM_KEYPOINTS

REPO = Path(__file__).resolve().parents[1]
STUDENT = REPO / "models" / "student" / "model.onnx"


def _subpixel_maps(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1, 48, 36) stride-4 Gaussian maps (sigma 2 cells, as training encodes them) and their
    true peaks in input pixels, kept away from the edges and off the cell centres."""
    rng = np.random.default_rng(seed)
    pts = np.stack([rng.uniform(24, 120, n), rng.uniform(24, 168, n)], axis=1).astype(np.float32)
    maps = np.stack([encode_heatmaps(p[None], np.ones(1), (36, 48), 4)[0] for p in pts])
    return maps, pts


def _errors(maps: np.ndarray, pts: np.ndarray, **kw: object) -> np.ndarray:
    coords, scores = decode_heatmaps(maps, 4, **kw)
    assert coords.shape == (len(pts), 1, 2) and scores.shape == (len(pts), 1)
    return np.linalg.norm(coords[:, 0] - pts, axis=1)


def test_every_refinement_recovers_subpixel_peaks_better_than_argmax() -> None:
    maps, pts = _subpixel_maps()
    argmax = _errors(maps, pts, method="argmax")
    # argmax sits on cell centres: up to half a cell (2 px) per axis off
    assert argmax.max() > 1.5 and argmax.mean() > 1.0
    dark = _errors(maps, pts)  # the default
    assert dark.max() < 0.05
    soft = _errors(maps, pts, method="soft", window=9)
    assert soft.max() < 0.6 and soft.mean() < 0.3
    quarter = _errors(maps, pts, method="quarter")
    assert quarter.max() <= np.hypot(1.0, 1.0) + 1e-4  # at most a quarter cell (1 px) per axis
    assert quarter.mean() < 0.7 * argmax.mean()
    # a small soft-argmax window is biased towards the argmax cell, a larger one less so
    assert _errors(maps, pts, method="soft", window=3).mean() > soft.mean()


def test_decoders_share_scores_and_handle_edges_and_empty_maps() -> None:
    rng = np.random.default_rng(1)
    kp = np.stack([rng.uniform(0, 143, NUM_KEYPOINTS), rng.uniform(0, 191, NUM_KEYPOINTS)], axis=1)
    kp[0] = (0.0, 0.0)  # peak in a corner: windows and neighbours fall off the map
    hm, _ = encode_heatmaps(kp.astype(np.float32), np.ones(NUM_KEYPOINTS), (36, 48), 4)
    hm[3] = 0.0
    ref_c, ref_s = decode_heatmaps(hm, 4)
    for method in DECODE_METHODS:
        c, s = decode_heatmaps(hm, 4, method=method)
        np.testing.assert_array_equal(s, ref_s)
        assert np.isfinite(c).all()
        # the corner peak's map is cut by the edge, which pulls a soft-argmax window inwards
        assert np.linalg.norm(c[0] - kp[0]) < (8.0 if method == "soft" else 3.0)
        np.testing.assert_allclose(c[3], ref_c[3])  # an empty map stays at its argmax cell
    with pytest.raises(ValueError, match="unknown heatmap decoder"):
        decode_heatmaps(hm, 4, method="simcc")


@pytest.mark.skipif(not STUDENT.exists(), reason="shipped student model not present")
def test_free_size_copy_matches_the_shipped_student_and_runs_larger(tmp_path: Path) -> None:
    import onnxruntime as ort

    from benchmarks.student_precision import free_hw_copy

    copy = free_hw_copy(STUDENT, tmp_path / "free.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    shipped = ort.InferenceSession(str(STUDENT), opts, providers=["CPUExecutionProvider"])
    free = ort.InferenceSession(str(copy), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, 3, 192, 144)).astype(np.float32)
    np.testing.assert_array_equal(free.run(None, {"input": x})[0], shipped.run(None, {"input": x})[0])
    big = free.run(None, {"input": np.zeros((1, 3, 256, 192), np.float32)})[0]
    assert big.shape == (1, NUM_KEYPOINTS, 64, 48)
    with pytest.raises(Exception, match=r"(?i)dimension"):  # the shipped graph is pinned to its trained size
        shipped.run(None, {"input": np.zeros((1, 3, 256, 192), np.float32)})


def test_local_dark_blur_equals_whole_map_blur_with_edge_padding() -> None:
    """DARK blurs only the 3 x 3 cells around each argmax; they must be the whole-map blur's values
    (OpenCV, zero border) with neighbours off the map clamped to the edge, as before."""
    import cv2

    from gaitpose.codec import _local_log_blur

    rng = np.random.default_rng(3)
    maps = rng.random((12, 48, 36)).astype(np.float32)
    py = np.array([0, 47, 0, 47, 10, 20, 1, 46, 5, 30, 0, 24])
    px = np.array([0, 35, 35, 0, 1, 34, 17, 18, 0, 35, 10, 20])
    for kernel in (1, 3, 5, 7, 11):
        got = _local_log_blur(maps, px, py, kernel)
        for i in range(len(maps)):
            whole = maps[i] if kernel == 1 else cv2.GaussianBlur(maps[i], (kernel, kernel), 0,
                                                                  borderType=cv2.BORDER_CONSTANT)
            logm = np.pad(np.log(np.maximum(whole, 1e-10)), 1, mode="edge")
            np.testing.assert_allclose(got[i], logm[py[i] : py[i] + 3, px[i] : px[i] + 3], atol=2e-5)
    with pytest.raises(ValueError, match="odd"):
        _local_log_blur(maps, px, py, 4)
