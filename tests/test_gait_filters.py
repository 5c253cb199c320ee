"""Temporal filters: gap filling, Hampel, zero-lag Butterworth, one-euro, the cleaning pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from gaitpose.gait.filters import OneEuroFilter, butter_lowpass, clean_trajectories, fill_gaps, hampel
from gaitpose.gait.synthetic import synthetic_walk
from gaitpose.skeleton import INDEX


def test_fill_gaps_only_short_interior_gaps() -> None:
    x = np.arange(30, dtype=float) * 2.0
    x[5:8] = np.nan  # 3 frames: filled
    x[15:22] = np.nan  # 7 frames: too long
    x[:2] = np.nan  # leading: never extrapolated
    out = fill_gaps(x, max_gap=4)
    np.testing.assert_allclose(out[5:8], [10.0, 12.0, 14.0])
    assert np.isnan(out[15:22]).all()
    assert np.isnan(out[:2]).all()
    # trailing shape kept, columns independent
    xy = np.stack([x, -x], axis=1)[:, None, :]
    out2 = fill_gaps(xy, 4)
    assert out2.shape == xy.shape
    np.testing.assert_allclose(out2[6, 0], [12.0, -12.0])


def test_fill_gaps_cubic_is_exact_on_a_cubic() -> None:
    t = np.arange(20, dtype=float)
    y = 0.01 * t**3 - 0.2 * t**2 + t
    holed = y.copy()
    holed[9:11] = np.nan
    np.testing.assert_allclose(fill_gaps(holed, 3, method="cubic")[9:11], y[9:11], atol=1e-9)
    lin = fill_gaps(holed, 3, method="linear")[9:11]
    assert np.abs(lin - y[9:11]).max() > 1e-3
    with pytest.raises(ValueError, match="unknown method"):
        fill_gaps(holed, 3, method="quadratic")


def test_hampel_removes_spikes_and_keeps_smooth_signal() -> None:
    t = np.arange(100) / 30.0
    y = 50 * np.sin(2 * np.pi * t)
    spiky = y.copy()
    spiky[[20, 55, 80]] += [40.0, -35.0, 60.0]
    spiky[30] = np.nan
    out = hampel(spiky, window=3, n_sigmas=3.0, min_dev=2.0)
    np.testing.assert_allclose(out[[20, 55, 80]], y[[20, 55, 80]], atol=5.0)  # replaced by the robust centre
    keep = np.setdiff1d(np.arange(100), [20, 30, 55, 80])
    np.testing.assert_array_equal(out[keep], spiky[keep])  # nothing else touched, peaks included
    assert np.isnan(out[30])
    as_nan = hampel(spiky, 3, 3.0, min_dev=2.0, replace="nan")
    assert np.isnan(as_nan[[20, 55, 80]]).all()


def test_butter_lowpass_zero_lag_and_nan_aware() -> None:
    fs = 30.0
    t = np.arange(300) / fs
    slow = 10 * np.sin(2 * np.pi * 1.0 * t)
    noise = 3 * np.sin(2 * np.pi * 12.0 * t)
    out = butter_lowpass(slow + noise, fs, 6.0)
    core = slice(30, 270)
    assert np.abs(out[core] - slow[core]).max() < 0.3  # 12 Hz removed, 1 Hz kept with no lag
    # a lag of even one frame would leave an error of ~2 px on this signal
    assert np.abs(out[31:271] - slow[30:270]).max() > 1.5
    holed = slow + noise
    holed[100:110] = np.nan
    holed[200:203] = 5.0  # a 3-sample island: too short to filter, returned as is
    holed[199] = holed[203] = np.nan
    out2 = butter_lowpass(holed, fs, 6.0)
    assert np.isnan(out2[100:110]).all() and np.isfinite(out2[:100]).all() and np.isfinite(out2[110:199]).all()
    np.testing.assert_array_equal(out2[200:203], 5.0)
    short = butter_lowpass(slow[:8], fs, 6.0)  # shorter than the default pad: still filtered
    assert np.isfinite(short).all()
    np.testing.assert_array_equal(butter_lowpass(slow, fs, 20.0), slow)  # above Nyquist: unchanged


def test_one_euro_filter_smooths_still_points_and_follows_motion() -> None:
    rng = np.random.default_rng(0)
    fs = 30.0
    still = 100 + rng.normal(0, 2.0, size=(300, 2))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    out = np.array([f(x, i / fs) for i, x in enumerate(still)])
    assert out[30:].std() < 0.5 * still[30:].std()
    ramp = np.arange(300) * 10.0  # 300 px/s
    lag = {}
    for beta in (0.0, 0.05):
        g = OneEuroFilter(min_cutoff=1.0, beta=beta)
        r = np.array([g(np.array([x]), i / fs)[0] for i, x in enumerate(ramp)])
        lag[beta] = ramp[-1] - r[-1]
    assert lag[0.05] < 0.2 * lag[0.0]  # the speed-adaptive cutoff removes most of the lag
    h = OneEuroFilter()
    h(np.array([1.0, 2.0]), 0.0)
    y = h(np.array([np.nan, 2.0]), 1 / fs)
    assert np.isnan(y[0]) and y[1] == pytest.approx(2.0)
    assert h(np.array([1.0, 2.0]), 2 / fs)[0] == pytest.approx(1.0)  # state survived the dropout


def test_clean_trajectories_masks_low_scores_and_fills_short_gaps() -> None:
    w = synthetic_walk(n_frames=90)
    k, s = w.kpts.copy(), w.scores.copy()
    j = INDEX["left_heel"]
    s[40:43, j] = 0.1  # 0.1 s dropout: filled
    s[60:70, j] = 0.1  # 0.33 s dropout: left missing
    k[50, j] += [60.0, -60.0]  # a glitch (a jump to the other foot or a bystander)
    clean, valid = clean_trajectories(k, s, w.fps)
    assert valid[40:43, j].all() and not valid[60:70, j].any()
    assert np.abs(clean[40:43, j] - w.kpts[40:43, j]).max() < 3.0
    reference, _ = clean_trajectories(w.kpts, w.scores, w.fps)  # same walk, no glitch
    assert np.abs(clean[45:56, j] - reference[45:56, j]).max() < 2.5  # the 60 px glitch is gone
    assert np.isnan(clean[60:70, j]).all()
    with pytest.raises(ValueError, match="scores"):
        clean_trajectories(k, s[:, :5], w.fps)
