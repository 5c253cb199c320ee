"""Colour/depth synchronisation: nearest-timestamp pairing and depth-to-colour registration.

Why not pair by index: colour and depth run on their own rates (30 vs 15 fps is common) and drop
frames independently, so frame *i* of one stream is rarely frame *i* of the other. Each colour frame
gets the depth frame nearest in time, within a tolerance (default half the slower stream's frame
period, so a depth frame is never used for a colour frame closer to another depth frame's slot).

Clock offset convention: ``clock_offset_ms`` is added to depth times to put them on the colour
clock (``t_depth_on_colour = t_depth + clock_offset_ms``).

Registration re-projects every depth pixel into the colour camera (unproject with the depth
intrinsics, rigid transform, project with the colour intrinsics) and keeps the nearest surface per
colour pixel, as the vendor SDKs' align functions do. Pinhole model only (no lens distortion).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class SyncReport:
    """How well two streams paired: counts and the pairing-error distribution (ms)."""

    n_color: int = 0  # colour frames considered
    n_depth: int = 0  # depth frames available
    matched: int = 0  # colour frames that got a depth frame
    dropped: int = 0  # colour frames with no depth frame within tolerance
    reused: int = 0  # extra uses of depth frames already paired with an earlier colour frame
    unused_depth: int = 0  # depth frames that no colour frame used
    tolerance_ms: float = 0.0
    clock_offset_ms: float = 0.0
    error_median_ms: float = 0.0
    error_p95_ms: float = 0.0
    error_max_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.matched}/{self.n_color} colour frames paired ({self.dropped} dropped, {self.reused} depth reuses, "
            f"{self.unused_depth} depth unused); |error| median {self.error_median_ms:.1f} ms, "
            f"p95 {self.error_p95_ms:.1f} ms, max {self.error_max_ms:.1f} ms (tolerance {self.tolerance_ms:.1f} ms)"
        )


def frame_period_ms(times_ms: np.ndarray) -> float:
    """Typical frame period of a stream (median spacing); 0 if fewer than two frames."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size < 2:
        return 0.0
    d = np.diff(np.sort(t))
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


def default_tolerance_ms(color_period_ms: float, depth_period_ms: float) -> float:
    """Half the slower stream's frame period (plus a hair so exact half-way ties still pair)."""
    slower = max(color_period_ms, depth_period_ms)
    return 0.5 * slower + 1e-6 if slower > 0 else float("inf")


class NearestPairer:
    """Streaming nearest-timestamp pairing: feed colour times one by one, read the report at the end.

    The extractor decodes colour frames as a stream; depth times are known up front (they come
    from a demux pass or the bag index), so each colour frame can be paired on arrival and the
    (non-decreasing) depth indices served from one forward pass over the depth frames.
    """

    def __init__(
        self,
        depth_times_ms: np.ndarray,
        tolerance_ms: float | None = None,
        clock_offset_ms: float = 0.0,
        color_period_ms: float = 0.0,
    ) -> None:
        t = np.asarray(depth_times_ms, dtype=np.float64) + float(clock_offset_ms)
        if t.size > 1 and np.any(np.diff(t) < 0):
            raise ValueError("depth timestamps must be ascending")
        self.depth_t = t
        self.clock_offset_ms = float(clock_offset_ms)
        if tolerance_ms is None:
            tolerance_ms = default_tolerance_ms(color_period_ms, frame_period_ms(t))
        self.tolerance_ms = float(tolerance_ms)
        self._errors: list[float] = []
        self._uses = np.zeros(t.size, dtype=np.int64)
        self._n_color = 0

    def match(self, t_color_ms: float) -> tuple[int | None, float | None]:
        """(depth index, signed error t_depth - t_colour in ms) or (None, None) when nothing is close enough."""
        self._n_color += 1
        t = self.depth_t
        if t.size == 0:
            return None, None
        j = int(np.searchsorted(t, t_color_ms))
        best = None
        for k in (j - 1, j):
            if 0 <= k < t.size and (best is None or abs(t[k] - t_color_ms) < abs(t[best] - t_color_ms)):
                best = k
        assert best is not None
        err = float(t[best] - t_color_ms)
        if abs(err) > self.tolerance_ms:
            return None, None
        self._uses[best] += 1
        self._errors.append(err)
        return best, err

    def report(self) -> SyncReport:
        e = np.abs(np.asarray(self._errors, dtype=np.float64))
        return SyncReport(
            n_color=self._n_color,
            n_depth=int(self.depth_t.size),
            matched=int(e.size),
            dropped=self._n_color - int(e.size),
            reused=int(np.maximum(self._uses - 1, 0).sum()),
            unused_depth=int((self._uses == 0).sum()),
            tolerance_ms=self.tolerance_ms,
            clock_offset_ms=self.clock_offset_ms,
            error_median_ms=float(np.median(e)) if e.size else 0.0,
            error_p95_ms=float(np.percentile(e, 95)) if e.size else 0.0,
            error_max_ms=float(e.max()) if e.size else 0.0,
        )


def pair_nearest(
    color_times_ms: np.ndarray,
    depth_times_ms: np.ndarray,
    tolerance_ms: float | None = None,
    clock_offset_ms: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, SyncReport]:
    """Pair every colour time with the nearest depth time.

    Returns ``(depth_index, error_ms, report)``: ``depth_index[i]`` is -1 and ``error_ms[i]`` NaN
    where colour frame ``i`` has no depth frame within the tolerance.
    """
    ct = np.asarray(color_times_ms, dtype=np.float64)
    pairer = NearestPairer(
        np.asarray(depth_times_ms, dtype=np.float64),
        tolerance_ms=tolerance_ms,
        clock_offset_ms=clock_offset_ms,
        color_period_ms=frame_period_ms(ct),
    )
    idx = np.full(ct.size, -1, dtype=np.int64)
    err = np.full(ct.size, np.nan)
    for i, t in enumerate(ct):
        j, e = pairer.match(float(t))
        if j is not None:
            idx[i], err[i] = j, e
    return idx, err, pairer.report()


def _k(cam: dict[str, Any]) -> tuple[float, float, float, float]:
    return float(cam["fx"]), float(cam["fy"]), float(cam["cx"]), float(cam["cy"])


def register_depth(
    depth_mm: np.ndarray,
    depth_cam: dict[str, Any],
    color_cam: dict[str, Any],
    rotation: np.ndarray | list[list[float]] | None = None,
    translation_m: np.ndarray | list[float] | None = None,
    splat: bool = True,
) -> np.ndarray:
    """Depth image re-projected into the colour camera: uint16 mm, colour ``height x width``, 0 = no reading.

    ``rotation``/``translation_m`` map a point from the depth camera frame to the colour camera frame
    (``X_c = R X_d + t``, metres). Where several depth pixels land on one colour pixel the nearest
    (smallest colour-frame Z) wins, so foreground is not hidden behind background. Colour pixels that
    no depth pixel reaches stay 0 (the caller's depth lookup must ignore zeros anyway). With ``splat``
    each depth pixel fills its footprint in the (higher resolution) colour image.
    """
    d = np.asarray(depth_mm)
    if d.ndim != 2:
        raise ValueError(f"depth must be HxW, got {d.shape}")
    h, w = d.shape
    if (w, h) != (int(depth_cam["width"]), int(depth_cam["height"])):
        raise ValueError(f"depth image is {w}x{h} but depth intrinsics are {depth_cam['width']}x{depth_cam['height']}")
    fx, fy, cx, cy = _k(depth_cam)
    fxc, fyc, cxc, cyc = _k(color_cam)
    wc, hc = int(color_cam["width"]), int(color_cam["height"])
    r = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    t = np.zeros(3) if translation_m is None else np.asarray(translation_m, dtype=np.float64).reshape(3)
    v, u = np.nonzero(d)
    z = d[v, u].astype(np.float64) / 1000.0
    pts = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=0)
    pc = r @ pts + t[:, None]
    zc = pc[2]
    ok = zc > 1e-6
    ucf = fxc * pc[0, ok] / zc[ok] + cxc
    vcf = fyc * pc[1, ok] / zc[ok] + cyc
    zmm = np.rint(zc[ok] * 1000.0)
    # A depth pixel covers about (f_colour / f_depth) * (Z_depth / Z_colour) colour pixels per axis;
    # with ``splat`` it fills every colour pixel whose centre lies in that footprint, so a
    # low-resolution depth map leaves no grid of holes (nearest-wins keeps edges honest, at the cost
    # of fattening foreground edges by under a footprint). Without it, only the nearest pixel.
    if splat:
        zr = z[ok] / zc[ok]
        hu = np.maximum(0.5, 0.5 * fxc / fx * zr)
        hv = np.maximum(0.5, 0.5 * fyc / fy * zr)
    else:
        hu = hv = np.full(ucf.shape, 0.5)
    u0 = np.ceil(ucf - hu)
    v0 = np.ceil(vcf - hv)
    ku = int(np.ceil(2 * hu.max())) + 1 if hu.size else 1
    kv = int(np.ceil(2 * hv.max())) + 1 if hv.size else 1
    us, vs, zs = [], [], []
    for dy in range(kv):
        vv = v0 + dy
        vin = vv < vcf + hv
        for dx in range(ku):
            uu = u0 + dx
            m = vin & (uu < ucf + hu)
            us.append(uu[m])
            vs.append(vv[m])
            zs.append(zmm[m])
    uc = np.concatenate(us).astype(np.int64)
    vc = np.concatenate(vs).astype(np.int64)
    zmm = np.concatenate(zs)
    inside = (uc >= 0) & (uc < wc) & (vc >= 0) & (vc < hc) & (zmm > 0) & (zmm <= 65535)
    pix = vc[inside] * wc + uc[inside]
    zmm = zmm[inside]
    out = np.zeros(hc * wc, dtype=np.uint16)
    if pix.size:
        # One int64 sort on (pixel, depth) keys: the first key of each pixel is its nearest surface.
        key = np.sort((pix << 16) | zmm.astype(np.int64))
        kp = key >> 16
        first = np.ones(key.size, dtype=bool)
        first[1:] = kp[1:] != kp[:-1]
        out[kp[first]] = (key[first] & 0xFFFF).astype(np.uint16)
    return out.reshape(hc, wc)


def can_register(intrinsics: dict[str, Any]) -> bool:
    """True when the recording says enough (both cameras + extrinsics) to re-project depth into colour."""
    return all(k in intrinsics for k in ("color", "depth", "depth_to_color"))
