"""The few signal-processing routines the gait analysis uses, in numpy, numerically equal to SciPy's.

Why not SciPy: importing ``scipy.signal`` pulls in ``scipy.stats`` and costs about 0.7 s of CPU
(``scipy.ndimage`` another 0.2 s), more than the whole gait analysis of a short clip and a sizeable
part of ``gaitpose analyze``'s whole job. The gait code needs only a Butterworth low-pass run
forwards and backwards, ``find_peaks`` with a prominence and a distance, and three 1-D sliding
filters, on signals of a few hundred to a few thousand samples. Each function below follows SciPy's
algorithm step by step (same padding, same initial conditions, same tie rules), and
``tests/test_gait_dsp.py`` checks them against SciPy to 1e-9 where SciPy is installed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "butter_lowpass_sos",
    "find_peaks",
    "maximum_filter1d",
    "minimum_filter1d",
    "sosfiltfilt",
    "uniform_filter1d",
]


# --- Butterworth low-pass, forward-backward -----------------------------------------------------


def butter_lowpass_sos(order: int, wn: float) -> np.ndarray:
    """Second-order sections of a digital Butterworth low-pass (``scipy.signal.butter(order, wn, output="sos")``).

    ``wn`` is the cutoff as a fraction of Nyquist (0 < wn < 1). Analog prototype poles, pre-warped
    cutoff, bilinear transform; zeros all at z = -1; the overall gain goes into the first section.
    """
    if order < 1 or not 0.0 < wn < 1.0:
        raise ValueError(f"butter_lowpass_sos: need order >= 1 and 0 < wn < 1 (got {order}, {wn})")
    fs2 = 4.0  # 2 * fs with fs = 2 (wn is relative to Nyquist)
    warped = 4.0 * math.tan(math.pi * wn / 2.0)
    m = np.arange(-order + 1, order, 2)
    p = -np.exp(1j * np.pi * m / (2 * order)) * warped  # analog prototype, scaled to the cutoff
    k = warped**order
    pz = (fs2 + p) / (fs2 - p)
    kz = float(np.real(k / np.prod(fs2 - p)))
    # Conjugate pairs, the pole nearest the unit circle last (as scipy's zpk2sos orders them).
    upper = sorted((q for q in pz if q.imag > 1e-14), key=lambda q: abs(q))
    real = [q for q in pz if abs(q.imag) <= 1e-14]
    sos: list[list[float]] = []
    if real:
        sos.append([1.0, 1.0, 0.0, 1.0, -float(real[0].real), 0.0])
    for q in upper:
        sos.append([1.0, 2.0, 1.0, 1.0, -2.0 * float(q.real), float(abs(q) ** 2)])
    out = np.asarray(sos, dtype=np.float64)
    out[0, :3] *= kz
    return out


def _sosfilt_zi(sos: np.ndarray) -> np.ndarray:
    """Steady-state initial conditions of each section for a unit step (``scipy.signal.sosfilt_zi``)."""
    zi = np.zeros((len(sos), 2))
    scale = 1.0
    for s, sec in enumerate(sos):
        b, a = sec[:3] / sec[3], sec[3:] / sec[3]
        i_minus_a = np.array([[1.0 + a[1], -1.0], [a[2], 1.0]])
        zi[s] = scale * np.linalg.solve(i_minus_a, b[1:] - a[1:] * b[0])
        scale *= b.sum() / a.sum()
    return zi


def _sosfilt(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> np.ndarray:
    """Cascade of direct-form-II-transposed biquads over a 1-D signal, from state ``zi``."""
    y = np.array(x, dtype=np.float64)
    for (b0, b1, b2, _a0, a1, a2), (z0, z1) in zip(sos, zi, strict=True):
        out = np.empty_like(y)
        for n, xn in enumerate(y.tolist()):
            yn = b0 * xn + z0
            z0 = b1 * xn - a1 * yn + z1
            z1 = b2 * xn - a2 * yn
            out[n] = yn
        y = out
    return y


def sosfiltfilt(sos: np.ndarray, x: np.ndarray, padlen: int | None = None) -> np.ndarray:
    """Zero-phase forward-backward filtering of a 1-D signal (``scipy.signal.sosfiltfilt``, odd padding)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if padlen is None:
        padlen = 3 * (2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum())))
    if n <= padlen:
        raise ValueError(f"sosfiltfilt: the signal ({n} samples) must be longer than padlen ({padlen})")
    if padlen > 0:
        left = 2.0 * x[0] - x[padlen:0:-1]
        right = 2.0 * x[-1] - x[-2 : -(padlen + 2) : -1]
        ext = np.concatenate([left, x, right])
    else:
        ext = x
    zi = _sosfilt_zi(sos)
    y = _sosfilt(sos, ext, zi * ext[0])
    y = _sosfilt(sos, y[::-1], zi * y[-1])[::-1]
    return y[padlen:-padlen] if padlen > 0 else y


# --- 1-D sliding filters (scipy.ndimage, mode="nearest") --------------------------------------


def _windows(x: np.ndarray, size: int) -> np.ndarray:
    """Edge-padded windows of ``size`` samples centred as scipy.ndimage centres them (origin 0)."""
    x = np.asarray(x, dtype=np.float64)
    if size < 1:
        raise ValueError(f"filter size must be >= 1, got {size}")
    before = size // 2
    padded = np.pad(x, (before, size - 1 - before), mode="edge")
    return sliding_window_view(padded, size)


def uniform_filter1d(x: np.ndarray, size: int, mode: str = "nearest") -> np.ndarray:
    """Moving average over ``size`` samples, edges repeated (``scipy.ndimage.uniform_filter1d``)."""
    if mode != "nearest":
        raise ValueError("only mode='nearest' is implemented")
    return _windows(x, int(size)).mean(axis=1)


def maximum_filter1d(x: np.ndarray, size: int, mode: str = "nearest") -> np.ndarray:
    """Moving maximum (``scipy.ndimage.maximum_filter1d``, mode="nearest")."""
    if mode != "nearest":
        raise ValueError("only mode='nearest' is implemented")
    return _windows(x, int(size)).max(axis=1)


def minimum_filter1d(x: np.ndarray, size: int, mode: str = "nearest") -> np.ndarray:
    """Moving minimum (``scipy.ndimage.minimum_filter1d``, mode="nearest")."""
    if mode != "nearest":
        raise ValueError("only mode='nearest' is implemented")
    return _windows(x, int(size)).min(axis=1)


# --- peaks ------------------------------------------------------------------------------------


def _local_maxima(x: list[float]) -> list[int]:
    """Local maxima; a flat top counts once, at its middle (rounded down), as in scipy."""
    peaks = []
    i, i_max = 1, len(x) - 1
    while i < i_max:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < i_max and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    return peaks


def _select_by_distance(peaks: np.ndarray, priority: np.ndarray, distance: float) -> np.ndarray:
    """Keep the highest peaks, dropping lower ones closer than ``distance`` samples."""
    keep = np.ones(len(peaks), dtype=bool)
    dist = math.ceil(distance)
    order = np.argsort(priority)
    for i in range(len(peaks) - 1, -1, -1):
        j = order[i]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < dist:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < len(peaks) and peaks[k] - peaks[j] < dist:
            keep[k] = False
            k += 1
    return keep


def _prominence(x: list[float], peak: int) -> float:
    top = x[peak]
    left_min = right_min = top
    i = peak
    while i >= 0 and x[i] <= top:
        left_min = min(left_min, x[i])
        i -= 1
    i = peak
    while i < len(x) and x[i] <= top:
        right_min = min(right_min, x[i])
        i += 1
    return top - max(left_min, right_min)


def find_peaks(
    x: np.ndarray, prominence: float | None = None, distance: float | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Peaks of a 1-D signal (``scipy.signal.find_peaks`` with ``distance`` then a minimum ``prominence``).

    Returns ``(indices, properties)``; properties holds ``prominences`` when asked for.
    """
    xs = np.asarray(x, dtype=np.float64)
    if xs.ndim != 1:
        raise ValueError("find_peaks: x must be 1-D")
    values = xs.tolist()
    peaks = np.asarray(_local_maxima(values), dtype=np.intp)
    props: dict[str, np.ndarray] = {}
    if distance is not None and len(peaks):
        if distance < 1:
            raise ValueError("find_peaks: distance must be >= 1")
        peaks = peaks[_select_by_distance(peaks, xs[peaks], distance)]
    if prominence is not None:
        prom = np.asarray([_prominence(values, int(p)) for p in peaks], dtype=np.float64)
        keep = prom >= prominence
        peaks, props["prominences"] = peaks[keep], prom[keep]
    return peaks, props
