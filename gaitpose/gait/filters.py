"""Temporal processing of keypoint trajectories: gap filling, outlier rejection, zero-lag smoothing.

Gait events and angles are derivatives of positions, so frame-to-frame jitter and one-frame
detector glitches dominate them unless removed. The pipeline follows what validated 2D gait
studies do (Stenum et al. 2021; Sports2D): drop low-confidence points, reject outliers with a
Hampel filter, fill only *short* gaps (<= 0.12 s) by interpolation, then low-pass with a zero-lag
Butterworth (filtfilt), so that event timing is not delayed. Long gaps stay NaN: inventing a
whole step would invent a gait event.

All functions work along axis 0 (time) and accept any trailing shape.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from gaitpose.gait.dsp import butter_lowpass_sos, sosfiltfilt

__all__ = [
    "OneEuroFilter",
    "butter_lowpass",
    "clean_trajectories",
    "fill_gaps",
    "finite_runs",
    "hampel",
]


def finite_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Start/end (end exclusive) of each run of True in a 1-D boolean array."""
    v = np.asarray(valid, dtype=bool).astype(np.int8)
    if v.size == 0:
        return []
    d = np.diff(np.concatenate([[0], v, [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=False))


def _as_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    return x.reshape(shape[0], -1) if x.ndim != 1 else x.reshape(-1, 1), shape


def fill_gaps(x: np.ndarray, max_gap: int, method: str = "linear") -> np.ndarray:
    """Interpolate interior NaN runs of at most ``max_gap`` frames, per column.

    Gaps at the start or end and gaps longer than ``max_gap`` are left NaN: extrapolation and
    long interpolations fabricate motion. ``method`` is "linear" or "cubic" (a cubic spline
    through all valid samples of the column, used only inside short gaps).
    """
    if method not in ("linear", "cubic"):
        raise ValueError(f"fill_gaps: unknown method {method!r} (use 'linear' or 'cubic')")
    x2, shape = _as_2d(x)
    out = x2.copy()
    t = np.arange(x2.shape[0], dtype=np.float64)
    for c in range(x2.shape[1]):
        col = x2[:, c]
        ok = np.isfinite(col)
        if ok.all() or ok.sum() < 2:
            continue
        fill = np.zeros_like(ok)
        for s, e in finite_runs(~ok):
            if s > 0 and e < len(col) and (e - s) <= max_gap:
                fill[s:e] = True
        if not fill.any():
            continue
        if method == "cubic" and ok.sum() >= 4:
            from scipy.interpolate import CubicSpline  # only here: scipy is off the analysis path

            out[fill, c] = CubicSpline(t[ok], col[ok])(t[fill])
        else:
            out[fill, c] = np.interp(t[fill], t[ok], col[ok])
    return out.reshape(shape)


def hampel(
    x: np.ndarray,
    window: int = 3,
    n_sigmas: float = 3.0,
    *,
    min_dev: float = 0.0,
    replace: str = "median",
    detrend: bool = True,
) -> np.ndarray:
    """Hampel outlier filter along time, per column, NaN-aware.

    A sample is an outlier when it differs from the robust centre of the ``2*window+1`` samples
    around it by more than ``n_sigmas`` robust standard deviations (1.4826 * MAD) and by more
    than ``min_dev`` (a floor that keeps smooth signals, whose MAD is ~0, from flagging their own
    curvature). With ``detrend`` (default) the window's robust linear trend (median slope) is
    removed first: a foot in swing moves ~10 px per frame, which inflates the plain MAD so much
    that a 60 px glitch would pass; ``detrend=False`` is the classic filter. Outliers are replaced
    by the window's robust centre, or by NaN with ``replace="nan"`` so that a later
    interpolation can fill them.
    """
    if replace not in ("median", "nan"):
        raise ValueError(f"hampel: unknown replace {replace!r} (use 'median' or 'nan')")
    x2, shape = _as_2d(x)
    n = x2.shape[0]
    if n == 0 or window < 1:
        return x2.reshape(shape).copy()
    pad = np.full((window, x2.shape[1]), np.nan)
    padded = np.concatenate([pad, x2, pad], axis=0)
    win = sliding_window_view(padded, 2 * window + 1, axis=0)  # (n, C, W)
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        if detrend:
            slope = np.nanmedian(np.diff(win, axis=-1), axis=-1)
            slope = np.where(np.isfinite(slope), slope, 0.0)
            offs = np.arange(-window, window + 1, dtype=np.float64)
            win = win - slope[..., None] * offs
        med = np.nanmedian(win, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(win - med[..., None]), axis=-1)
    dev = np.abs(x2 - med)
    outlier = np.isfinite(dev) & (dev > n_sigmas * mad) & (dev > min_dev)
    out = x2.copy()
    out[outlier] = med[outlier] if replace == "median" else np.nan
    return out.reshape(shape)


class _quiet_nan_warnings:
    """Silence numpy's 'All-NaN slice' RuntimeWarning: all-NaN windows are expected here."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def butter_lowpass(x: np.ndarray, fs: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth low-pass (forward-backward, second-order sections) along time.

    NaN-aware: each run of finite samples is filtered on its own, so a dropout neither spreads
    NaN nor drags neighbouring samples towards a fill value. Runs shorter than the filter's
    default padding are filtered with a shorter pad; runs of fewer than ``order + 2`` samples are
    returned unfiltered (no filter can be applied meaningfully to them). A cutoff at or above
    Nyquist returns a copy.
    """
    x2, shape = _as_2d(x)
    out = x2.copy()
    if fs <= 0 or cutoff_hz <= 0:
        raise ValueError(f"butter_lowpass: fs and cutoff_hz must be positive (got {fs}, {cutoff_hz})")
    wn = cutoff_hz / (fs / 2.0)
    if wn >= 1.0:
        return out.reshape(shape)
    sos = butter_lowpass_sos(order, wn)
    default_pad = 3 * (2 * len(sos) + 1)
    for c in range(x2.shape[1]):
        col = x2[:, c]
        for s, e in finite_runs(np.isfinite(col)):
            n = e - s
            if n < order + 2:
                continue
            out[s:e, c] = sosfiltfilt(sos, col[s:e], padlen=min(default_pad, n - 1))
    return out.reshape(shape)


class OneEuroFilter:
    """One-euro filter (Casiez et al., CHI 2012) for streaming keypoints.

    Why: in the live path there is no future to filter forwards-backwards with; the one-euro
    filter adapts its cutoff to speed (``min_cutoff + beta * |velocity|``), so it removes jitter
    when the point is still and keeps lag small when it moves. Works on arrays of any shape,
    element-wise; NaN inputs give NaN outputs and leave that element's state untouched, so a
    dropout does not reset the filter.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget all state (e.g. when the tracked person changes)."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray | float, t: float) -> np.ndarray:
        """Filter one sample ``x`` taken at time ``t`` seconds; returns the filtered sample."""
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        if self._x is None or self._t is None or self._x.shape != x.shape:
            self._x = np.where(finite, x, np.nan)
            self._dx = np.zeros_like(x)
            self._t = float(t)
            return self._x.copy()
        dt = float(t) - self._t
        if dt <= 0:
            dt = 1e-6
        self._t = float(t)
        first = finite & ~np.isfinite(self._x)  # element seen for the first time
        upd = finite & ~first
        dx = np.zeros_like(x)
        dx[upd] = (x[upd] - self._x[upd]) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = self._alpha(cutoff, dt)
        new_x = self._x.copy()
        new_x[upd] = (a * x + (1 - a) * self._x)[upd]
        new_x[first] = x[first]
        self._dx = np.where(upd, dx_hat, self._dx)
        self._x = new_x
        return np.where(finite, new_x, np.nan)


def clean_trajectories(
    kpts: np.ndarray,
    scores: np.ndarray,
    fps: float,
    *,
    min_score: float = 0.3,
    max_gap_s: float = 0.12,
    cutoff_hz: float = 6.0,
    hampel_window_s: float = 0.1,
    hampel_sigmas: float = 3.0,
    hampel_min_dev_px: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask low-confidence points, reject outliers, fill short gaps, low-pass; (T,K,2) -> cleaned, valid.

    Order matters: outliers are removed *before* filling and filtering, otherwise the low-pass
    would smear a glitch over several frames. Returns the cleaned keypoints (NaN where no
    trustworthy value exists) and ``valid_mask`` (T, K): True where the cleaned value is finite.
    """
    k = np.array(kpts, dtype=np.float64, copy=True)
    if k.ndim != 3 or k.shape[-1] != 2:
        raise ValueError(f"clean_trajectories: kpts must be (T, K, 2), got {k.shape}")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != k.shape[:2]:
        raise ValueError(f"clean_trajectories: scores must be {k.shape[:2]}, got {s.shape}")
    low = ~(s >= min_score)
    k[low] = np.nan
    window = max(2, round(hampel_window_s * fps))
    k = hampel(k, window, hampel_sigmas, min_dev=hampel_min_dev_px, replace="nan")
    k = fill_gaps(k, max(1, round(max_gap_s * fps)))
    k = butter_lowpass(k, fps, cutoff_hz)
    valid = np.isfinite(k).all(axis=-1)
    k[~valid] = np.nan
    return k, valid
