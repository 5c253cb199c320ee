"""``gaitpose.gait.dsp`` against SciPy on the signals the gait code feeds it (SciPy is a test-only reference)."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.gait import dsp

signal = pytest.importorskip("scipy.signal")
ndimage = pytest.importorskip("scipy.ndimage")


@pytest.mark.parametrize(("order", "wn"), [(4, 0.4), (4, 0.05), (2, 0.2), (3, 0.3), (5, 0.7)])
def test_butterworth_sections_filter_like_scipy(order: int, wn: float) -> None:
    ref = signal.butter(order, wn, btype="low", output="sos")
    mine = dsp.butter_lowpass_sos(order, wn)
    assert mine.shape == ref.shape
    # same transfer function (section order may differ in rounding only)
    _, h_ref = signal.sosfreqz(ref, worN=256)
    _, h_mine = signal.sosfreqz(mine, worN=256)
    np.testing.assert_allclose(np.abs(h_mine), np.abs(h_ref), atol=1e-10)
    rng = np.random.default_rng(order)
    x = np.cumsum(rng.normal(size=230)) + 5 * np.sin(np.arange(230) / 7)
    for padlen in (None, 0, 5, 229):
        got = dsp.sosfiltfilt(mine, x, padlen=padlen)
        want = signal.sosfiltfilt(ref, x, padlen=padlen) if padlen is not None else signal.sosfiltfilt(ref, x)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("size", [1, 2, 3, 8, 15, 16])
def test_sliding_filters_match_scipy_ndimage(size: int) -> None:
    x = np.random.default_rng(size).normal(size=57)
    for name in ("uniform_filter1d", "maximum_filter1d", "minimum_filter1d"):
        np.testing.assert_allclose(getattr(dsp, name)(x, size, mode="nearest"),
                                   getattr(ndimage, name)(x, size, mode="nearest"), atol=1e-12, err_msg=name)


def test_find_peaks_matches_scipy_including_plateaus_and_ties() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(300) / 30.0
    cases = [
        np.sin(2 * np.pi * 0.9 * t) + 0.3 * rng.normal(size=t.size),
        np.round(np.sin(2 * np.pi * 1.1 * t) * 4) / 4,  # flat tops and equal heights
        np.array([0, 1, 1, 1, 0, 2, 2, 0, 2, 0, 1, 0], dtype=float),
        np.zeros(10),
    ]
    for x in cases:
        for prominence, distance in ((None, None), (0.5, None), (None, 12), (0.25, 12), (1.5, 3)):
            want, wprops = signal.find_peaks(x, prominence=prominence, distance=distance)
            got, props = dsp.find_peaks(x, prominence=prominence, distance=distance)
            np.testing.assert_array_equal(got, want)
            if prominence is not None:
                np.testing.assert_allclose(props["prominences"], wprops["prominences"])


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError):
        dsp.butter_lowpass_sos(4, 1.0)
    with pytest.raises(ValueError):
        dsp.sosfiltfilt(dsp.butter_lowpass_sos(4, 0.3), np.ones(10))  # shorter than the default pad (27)
