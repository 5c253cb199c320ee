"""Left/right leg swap detection and correction.

In a side view the far leg is half hidden and 2D detectors often label the legs the wrong way
round for a few frames. A swap is catastrophic for gait analysis (it creates a fake heel strike
and flips the stance/swing phases), and smoothing does not remove it. We track the two leg
chains (knee, ankle, heel, toe; the hips overlap in a side view and carry no left/right cue)
over the whole sequence and pick, per frame, "as detected" or "exchanged" so that the leg
trajectories are as smooth as possible (least total acceleration), with a small cost for every
exchange so the detector is trusted when nothing says otherwise. A first attempt -- a greedy
frame-to-frame tracker with a constant-velocity prediction -- failed on the real side-view clip
(tests/data/sports2d_walk.mp4): noisy labels at a leg crossing made it swap 14 correct frames.

Single-frame glitches (a knee thrown half a leg away for one frame, as the general model does
at some leg crossings) are left out of the cost before the search: a glitch costs the same
acceleration whichever way the legs are labelled around it, but at a crossing, where both
labellings are close, it can tip the balance and flip a whole correct half-stride (seen on the
Sports2D walk with the general model: frames 60-77 flipped although the raw ankle tracks showed
one stance foot and one swing foot throughout). A point is a glitch when it lies far from the
midpoint of its neighbours under every left/right pairing of them, so the test does not depend
on the labels it is meant to check.

Assumes the detector is right most of the time: a swap that lasts the whole recording cannot
be seen from motion alone.
"""

from __future__ import annotations

import numpy as np

from gaitpose.gait.filters import fill_gaps
from gaitpose.skeleton import INDEX

__all__ = ["LEG_CHAIN", "fix_left_right_swaps", "glitch_mask", "leg_length_px", "swap_scores"]

LEG_CHAIN: tuple[str, ...] = ("knee", "ankle", "heel", "toe")
_LEFT = np.array([INDEX["left_" + j] for j in LEG_CHAIN])
_RIGHT = np.array([INDEX["right_" + j] for j in LEG_CHAIN])


def leg_length_px(kpts: np.ndarray) -> float:
    """Median hip-knee + knee-ankle length over frames and sides (pixels, or nan)."""
    k = np.asarray(kpts, dtype=np.float64)
    vals = []
    for side in ("left", "right"):
        h, kn, a = k[:, INDEX[f"{side}_hip"]], k[:, INDEX[f"{side}_knee"]], k[:, INDEX[f"{side}_ankle"]]
        vals.append(np.linalg.norm(kn - h, axis=-1) + np.linalg.norm(a - kn, axis=-1))
    v = np.concatenate(vals)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else float("nan")


def glitch_mask(legs: np.ndarray, scale: float, max_dev: float = 0.3) -> np.ndarray:
    """(T, 2, n) mask of one-frame glitches in leg chains ``legs`` (T, 2 sides, n joints, 2).

    A point at frame t is a glitch when it lies more than ``max_dev`` * ``scale`` (leg lengths)
    from the midpoint of the same joint at t-1 and t+1, for all four pairings of the
    neighbours' sides (left-left, right-right, left-right, right-left): smooth motion, a heel
    strike (half its one-frame velocity change) and a label swap between the neighbours all
    stay close to one of those midpoints, an isolated jump does not. End frames and points
    with a missing neighbour are never glitches.
    """
    x = np.asarray(legs, dtype=np.float64)
    mask = np.zeros(x.shape[:3], dtype=bool)
    if x.shape[0] < 3:
        return mask
    prev, cur, nxt = x[:-2], x[1:-1], x[2:]
    best = np.full(cur.shape[:3], np.inf)
    for a in (0, 1):
        for b in (0, 1):
            mid = 0.5 * (prev[:, [a, 1 - a]] + nxt[:, [b, 1 - b]])  # pairing per side of cur
            with np.errstate(invalid="ignore"):
                d = np.linalg.norm(cur - mid, axis=-1)
            best = np.fmin(best, d)
    with np.errstate(invalid="ignore"):
        mask[1:-1] = np.isfinite(best) & (best > max_dev * scale)
    return mask


def fix_left_right_swaps(
    kpts: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    swap_penalty: float = 0.005,
    fill_frames: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (kpts with leg chains un-swapped, indices of frames that were swapped).

    Every frame is either kept or has its two leg chains exchanged; the labelling of the whole
    sequence is chosen by dynamic programming (Viterbi, :func:`_best_labelling`) to
    minimise the total acceleration of the knee/ankle/heel/toe trajectories, plus
    ``swap_penalty`` leg lengths per swapped joint-frame so the detector's labels win ties.
    Acceleration, not position, is what tells legs that cross (mid-swing, where the swing foot
    passes the stance foot at a very different speed) from legs that bounce off each other,
    and a global optimum does not get lost at a noisy crossing the way a frame-by-frame tracker
    does. ``scores`` (T, K), if given, mark points with score <= 0 as missing; they are not
    modified (see :func:`swap_scores`). Short gaps (<= ``fill_frames``) are bridged for the cost.
    """
    k = np.array(kpts, dtype=np.float64, copy=True)
    if k.ndim != 3 or k.shape[1] <= int(max(_LEFT.max(), _RIGHT.max())) or k.shape[2] != 2:
        raise ValueError(f"fix_left_right_swaps: kpts must be (T, 21, 2), got {k.shape}")
    k_eval = k.copy()
    if scores is not None:
        k_eval[~(np.asarray(scores, dtype=np.float64) > 0)] = np.nan
    T = k.shape[0]
    scale = leg_length_px(k_eval)
    if T < 5 or not np.isfinite(scale) or scale <= 0:
        return k, np.zeros(0, dtype=np.int64)
    legs = np.stack([k_eval[:, _LEFT], k_eval[:, _RIGHT]], axis=1)  # (T, 2, n, 2)
    legs[glitch_mask(legs, scale)] = np.nan
    legs = fill_gaps(legs, fill_frames)
    opts = np.stack([legs, legs[:, ::-1]], axis=1)  # (T, state, chain, n, 2): state 1 = swapped
    n_valid = np.isfinite(legs).all(-1).sum(axis=(1, 2))  # joints seen per frame
    penalty = swap_penalty * scale * n_valid
    states = _best_labelling(opts, penalty)
    swapped = np.flatnonzero(states == 1)
    if swapped.size:
        left, right = k[np.ix_(swapped, _LEFT)].copy(), k[np.ix_(swapped, _RIGHT)].copy()
        k[np.ix_(swapped, _LEFT)], k[np.ix_(swapped, _RIGHT)] = right, left
    return k, swapped.astype(np.int64)


def _accel(opts: np.ndarray, lag: int) -> np.ndarray:
    """Summed acceleration norms at lag ``lag`` for every labelling of the frames t-2lag, t-lag, t.

    Returns (T - 2*lag, 2, 2, 2); a term with a missing point counts 0.
    """
    x0 = opts[: -2 * lag, :, None, None]
    x1 = opts[lag:-lag, None, :, None]
    x2 = opts[2 * lag:, None, None, :]
    with np.errstate(invalid="ignore"):
        acc = np.linalg.norm(x2 - 2 * x1 + x0, axis=-1)
    return np.where(np.isfinite(acc), acc, 0.0).sum(axis=(-1, -2))


def _best_labelling(opts: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Per-frame labels (0 as detected, 1 exchanged) of least cost, by Viterbi over 4-frame states.

    Cost of frame t: the mean of the acceleration at lag 1 (frames t-2, t-1, t) and at lag 2
    (t-4, t-2, t), plus ``penalty[t]`` when exchanged. The lag-2 term averages out the detector's
    frame-to-frame jitter of a fast swing foot, which at a leg crossing is as large as the
    one-frame evidence itself; with lag 1 alone a noisy crossing flipped a correct half-stride.
    """
    T = opts.shape[0]
    a1, a2 = _accel(opts, 1), _accel(opts, 2)  # (T-2, l2, l3, l4), (T-4, l0, l2, l4)
    # step[t-4][l0, l1, l2, l3, l4] for labels of frames t-4 .. t
    step = 0.5 * (a1[2:, None, None, :, :, :] + a2[:, :, None, :, None, :])
    pen = np.array([0.0, 1.0])
    b = pen[:, None, None, None]  # label axes for the first four frames
    dp = (penalty[0] * b + penalty[1] * b.transpose(1, 0, 2, 3) + penalty[2] * b.transpose(2, 1, 0, 3)
          + penalty[3] * b.transpose(3, 1, 2, 0))
    dp = dp + a1[0][:, :, :, None] + a1[1][None, :, :, :]  # lag-1 terms of frames 2 and 3
    back = np.zeros((T, 2, 2, 2, 2), dtype=np.int8)
    for t in range(4, T):
        cand = dp[..., None] + step[t - 4] + penalty[t] * pen
        back[t] = np.argmin(cand, axis=0)
        dp = cand.min(axis=0)
    states = np.zeros(T, dtype=np.int8)
    states[T - 4:] = np.unravel_index(int(np.argmin(dp)), dp.shape)
    for t in range(T - 1, 3, -1):
        states[t - 4] = back[t][tuple(states[t - 3:t + 1])]
    return states


def swap_scores(scores: np.ndarray, swapped_frames: np.ndarray) -> np.ndarray:
    """Apply the leg-chain swaps found by :func:`fix_left_right_swaps` to a (T, K) score array."""
    s = np.array(scores, copy=True)
    f = np.asarray(swapped_frames, dtype=np.int64)
    if f.size:
        left, right = s[np.ix_(f, _LEFT)].copy(), s[np.ix_(f, _RIGHT)].copy()
        s[np.ix_(f, _LEFT)], s[np.ix_(f, _RIGHT)] = right, left
    return s
