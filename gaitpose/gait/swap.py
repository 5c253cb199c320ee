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

Assumes the detector is right most of the time: a swap that lasts the whole recording cannot
be seen from motion alone.
"""

from __future__ import annotations

import numpy as np

from gaitpose.gait.filters import fill_gaps
from gaitpose.skeleton import INDEX

__all__ = ["LEG_CHAIN", "fix_left_right_swaps", "leg_length_px", "swap_scores"]

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


def fix_left_right_swaps(
    kpts: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    swap_penalty: float = 0.005,
    fill_frames: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (kpts with leg chains un-swapped, indices of frames that were swapped).

    Every frame is either kept or has its two leg chains exchanged; the labelling of the whole
    sequence is chosen by dynamic programming (Viterbi over pairs of consecutive states) to
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
    if T < 3 or not np.isfinite(scale) or scale <= 0:
        return k, np.zeros(0, dtype=np.int64)
    legs = fill_gaps(np.stack([k_eval[:, _LEFT], k_eval[:, _RIGHT]], axis=1), fill_frames)  # (T, 2, n, 2)
    opts = np.stack([legs, legs[:, ::-1]], axis=1)  # (T, state, chain, n, 2): state 1 = swapped
    n_valid = np.isfinite(legs).all(-1).sum(axis=(1, 2))  # joints seen per frame
    penalty = swap_penalty * scale * n_valid
    # dp over (s_{t-1}, s_t); index 2*a + b
    dp = np.full(4, np.inf)
    for a in (0, 1):
        for b in (0, 1):
            vel = np.linalg.norm(opts[1, b] - opts[0, a], axis=-1)
            dp[2 * a + b] = np.nansum(vel) + penalty[0] * a + penalty[1] * b
    # acceleration cost of every (a, b, c) = (s_{t-2}, s_{t-1}, s_t) at once: (T-2, 2, 2, 2)
    x0 = opts[:-2, :, None, None]
    x1 = opts[1:-1, None, :, None]
    x2 = opts[2:, None, None, :]
    with np.errstate(invalid="ignore"):
        acc = np.linalg.norm(x2 - 2 * x1 + x0, axis=-1)
        vel = np.linalg.norm(x2 - x1 + 0 * x0, axis=-1)
    step = np.where(np.isfinite(acc), acc, np.where(np.isfinite(vel), vel, 0.0)).sum(axis=(-1, -2))
    back = np.zeros((T, 4), dtype=np.int8)
    for t in range(2, T):
        # cand[a, b, c] = dp[(a, b)] + step(a, b, c) + penalty(c)
        cand = dp.reshape(2, 2)[:, :, None] + step[t - 2] + penalty[t] * np.array([0.0, 1.0])
        back[t] = np.argmin(cand, axis=0).reshape(4)
        dp = cand.min(axis=0).reshape(4)
    states = np.zeros(T, dtype=np.int8)
    idx = int(np.argmin(dp))
    states[T - 1], states[T - 2] = idx % 2, idx // 2
    for t in range(T - 1, 1, -1):
        states[t - 2] = back[t, 2 * states[t - 1] + states[t]]
    swapped = np.flatnonzero(states == 1)
    if swapped.size:
        left, right = k[np.ix_(swapped, _LEFT)].copy(), k[np.ix_(swapped, _RIGHT)].copy()
        k[np.ix_(swapped, _LEFT)], k[np.ix_(swapped, _RIGHT)] = right, left
    return k, swapped.astype(np.int64)


def swap_scores(scores: np.ndarray, swapped_frames: np.ndarray) -> np.ndarray:
    """Apply the leg-chain swaps found by :func:`fix_left_right_swaps` to a (T, K) score array."""
    s = np.array(scores, copy=True)
    f = np.asarray(swapped_frames, dtype=np.int64)
    if f.size:
        left, right = s[np.ix_(f, _LEFT)].copy(), s[np.ix_(f, _RIGHT)].copy()
        s[np.ix_(f, _LEFT)], s[np.ix_(f, _RIGHT)] = right, left
    return s
