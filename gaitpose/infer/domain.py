"""Is this video inside the pose model's domain? Confidence and temporal consistency vs the model's own reference.

Why: a specialised model (kind ``sppe``: the shipped student, or a clinic's model from
``gaitpose specialise``) is only as good as the people, rooms and views it was trained on; on
anything else it fails quietly (PCK@0.1 0.24 on an unseen person, with confident-looking output).
So every run with such a model measures, from its own :class:`~gaitpose.infer.track.PoseTrack`,

* **confidence**: median and 10th percentile of the per-frame mean keypoint score over the
  frames the tracker accepted, and the share of frames accepted;
* **temporal consistency**: per-frame *jitter* (median over the 21 keypoints of the second
  difference ``|p[t+k] - 2 p[t] + p[t-k]|`` divided by the body size, the longer side of the
  subject box), over runs of accepted frames only (gaps excluded). A second difference removes
  smooth motion, so a walking body contributes little and a network that jumps between answers
  contributes a lot. The stride ``k`` is the number of frames closest to :data:`JITTER_STEP_S`
  (1/30 s: one frame at 25-30 fps, two at 50-60 fps, four at 120 fps): what real motion leaves in
  a second difference grows with the square of the time step, so a reference measured on 60 fps
  recordings would otherwise call an ordinary 30 fps clinic video jittery (measured on the shared
  clips with the student: median jitter +15 % at half the frame rate, +40 % from 30 to 15 fps).
  Displacement (first difference over the same stride) is reported beside it; the share of
  frames where the legs swap sides from one frame to the next; the share of frame pairs where a
  thigh or shank changes its length by more than a third (and by more than 5 % of the body size)
  from one frame to the next (an implausible bone-length change);

and compares them with the same figures measured by the model on its own validation recordings
(:func:`domain_reference`), stored beside the model in ``meta.json`` under
``domain_reference.<model file name>`` (:func:`store_domain_reference`). A sidecar rather than
the ONNX metadata: it is added to a shipped model without re-exporting it, and it is tied to the
exact file by its sha256. The rules (:data:`RULES`, the margins are stated in each reason):

* median confidence below the reference's 10th percentile of per-frame confidence;
* share of accepted frames below half the reference's;
* median jitter above the reference's 90th percentile, or the 90th percentile of jitter above
  twice the reference's;
* share of left/right swap frames, or of implausible bone-length frames, above twice the
  reference's and at least 5 points above it.

The statistics are numpy only; :func:`domain_reference` runs the model over recordings (ONNX
Runtime, as ``gaitpose analyze`` does) and is what ``gaitpose specialise`` calls on its
validation recordings. The general model carries no reference: its runs are "unchecked".
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.skeleton import INDEX

__all__ = ["JITTER_STEP_S", "RULES", "DomainCheck", "Reference", "check_domain", "domain_reference", "domain_stats",
           "jitter_stride", "load_domain_reference", "reference_for", "reference_from_tracks",
           "store_domain_reference"]

SIDECAR = "meta.json"
BLOCK = "domain_reference"
REFERENCE_VERSION = 2  # 2: jitter and displacement over a stride of JITTER_STEP_S (1: one frame)
JITTER_STEP_S = 1.0 / 30.0
"""Time step of the jitter's second difference (see the module doc); stored in each reference block."""

RULES: dict[str, float] = {
    "confidence_median_below_ref_p10": 1.0,  # factor on the reference's p10
    "accepted_share_below_ref_x": 0.5,
    "jitter_median_above_ref_p90_x": 1.0,
    "jitter_p90_above_ref_p90_x": 2.0,
    "swap_share_above_ref_x": 2.0,
    "bone_share_above_ref_x": 2.0,
    "share_min_excess": 0.05,  # swaps / bones: and at least this much above the reference
    "min_frames": 10,  # fewer accepted frames: no verdict on confidence/jitter alone
}
"""The margins of the out-of-domain rules (also written into metrics.json's ``domain`` block)."""

_LEGS = [(INDEX[f"left_{j}"], INDEX[f"right_{j}"]) for j in ("knee", "ankle", "heel", "toe")]
_BONES = [(INDEX[f"{s}_hip"], INDEX[f"{s}_knee"]) for s in ("left", "right")] + \
         [(INDEX[f"{s}_knee"], INDEX[f"{s}_ankle"]) for s in ("left", "right")]
BONE_JUMP = 1.5  # largest plausible ratio of a thigh's or shank's lengths in two consecutive frames
_STAT_KEYS = ("confidence_median", "confidence_p10", "accepted_share", "jitter_median", "jitter_p90",
              "swap_share", "bone_share")


def _pct(x: np.ndarray, q: float) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if x.size else None


def jitter_stride(times_s: np.ndarray, step_s: float | None) -> int:
    """Frames per jitter step: the whole number of frames closest to ``step_s`` (None: one frame)."""
    t = np.asarray(times_s, np.float64)
    if step_s is None or t.size < 2:
        return 1
    dt = float(np.median(np.diff(t)))
    return max(1, round(float(step_s) / dt)) if dt > 0 else 1


def _per_frame(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray, accepted: np.ndarray,
               times_s: np.ndarray, step_s: float | None = JITTER_STEP_S) -> dict[str, np.ndarray]:
    """Per-frame series of one track: confidence, jitter, displacement, swap and bone flags (NaN: not measured).

    Jitter and displacement are taken over :func:`jitter_stride` frames; swaps and bone lengths
    from one frame to the next.
    """
    kp = np.asarray(keypoints, np.float64)
    acc = np.asarray(accepted, bool) & np.isfinite(kp).all(axis=(1, 2))
    n = len(acc)
    conf = np.where(acc, np.asarray(scores, np.float64).mean(axis=1), np.nan)
    b = np.asarray(boxes, np.float64)
    size = np.where(acc, np.maximum(b[:, 2], b[:, 3]) if n else np.zeros(0), np.nan)
    size = np.where(size > 1.0, size, np.nan)
    # regular steps only: a dropped frame (a gap in the timestamps) is not motion of the network
    t = np.asarray(times_s, np.float64)
    dt = np.diff(t) if n > 1 else np.zeros(0)
    step = float(np.median(dt)) if dt.size else 0.0
    regular = np.abs(dt - step) <= 0.5 * step if step > 0 else np.ones(dt.shape, bool)
    pair = acc[1:] & acc[:-1] & regular  # frames t, t+1 both accepted, one step apart
    disp = np.full(n, np.nan)
    swap = np.full(n, np.nan)
    jit = np.full(n, np.nan)
    k = jitter_stride(t, step_s)
    # frames t and t+k both accepted, k regular steps apart (gaps between them excluded too)
    pair_k = np.zeros(max(n - k, 0), bool)
    if n > k:
        pair_k = np.convolve(pair.astype(np.int64), np.ones(k, np.int64), mode="valid") == k
        d1 = np.linalg.norm(kp[k:] - kp[:-k], axis=2)  # (n-k, K)
        disp[k:] = np.where(pair_k, np.median(d1, axis=1) / size[k:], np.nan)
    if n > 1:
        left, right = [a for a, _ in _LEGS], [r for _, r in _LEGS]
        same = (np.linalg.norm(kp[1:, left] - kp[:-1, left], axis=2)
                + np.linalg.norm(kp[1:, right] - kp[:-1, right], axis=2)).sum(axis=1)
        cross = (np.linalg.norm(kp[1:, left] - kp[:-1, right], axis=2)
                 + np.linalg.norm(kp[1:, right] - kp[:-1, left], axis=2)).sum(axis=1)
        # a swap: the crossed assignment explains the new frame far better than the straight one,
        # and the legs really moved (crossing legs in a side view are close either way)
        swapped = (cross < 0.5 * same) & (same / size[1:] > 0.1 * len(_LEGS))
        swap[1:] = np.where(pair, swapped.astype(np.float64), np.nan)
    if n > 2 * k:
        d2 = np.linalg.norm(kp[2 * k:] - 2.0 * kp[k:-k] + kp[: -2 * k], axis=2)  # centred on frames k .. n-k-1
        triple = pair_k[k:] & pair_k[:-k]
        jit[k:-k] = np.where(triple, np.median(d2, axis=1) / size[k:-k], np.nan)
    bone = np.full(n, np.nan)
    if n > 1:
        # a bone cannot change its (projected) length by a third between two frames: foreshortening
        # of a bending or turning leg is gradual, a network that mistakes a joint is not
        lengths = np.stack([np.linalg.norm(kp[:, i] - kp[:, j], axis=1) for i, j in _BONES], axis=1)
        a, b = lengths[1:], lengths[:-1]
        change = np.abs(a - b)
        # by more than a third of the longer length, and by more than 5 % of the body size (a short,
        # foreshortened shank in a front view changes by a third with a few pixels of noise)
        bad = ((change > (1.0 - 1.0 / BONE_JUMP) * np.maximum(a, b)) & (change > 0.05 * size[1:, None])).any(axis=1)
        bone[1:] = np.where(pair, bad.astype(np.float64), np.nan)
    return {"confidence": conf, "jitter": jit, "displacement": disp, "swap": swap, "bone": bone,
            "accepted": acc.astype(np.float64)}


def _summarise(series: dict[str, np.ndarray], frames: int) -> dict[str, Any]:
    conf, jit, disp = series["confidence"], series["jitter"], series["displacement"]
    swap, bone = series["swap"], series["bone"]
    acc = int(np.nansum(series["accepted"]))
    return {
        "frames": int(frames), "accepted_frames": acc, "accepted_share": acc / frames if frames else None,
        "confidence_median": _pct(conf, 50), "confidence_p10": _pct(conf, 10),
        "jitter_frames": int(np.isfinite(jit).sum()), "jitter_median": _pct(jit, 50), "jitter_p90": _pct(jit, 90),
        "displacement_median": _pct(disp, 50), "displacement_p90": _pct(disp, 90),
        "swap_share": float(np.nanmean(swap)) if np.isfinite(swap).any() else None,
        "bone_share": float(np.nanmean(bone)) if np.isfinite(bone).any() else None,
    }


def domain_stats(track: Any, step_s: float | None = JITTER_STEP_S) -> dict[str, Any]:
    """The domain statistics of one run (a ``PoseTrack``): confidence, jitter, swaps, bone lengths.

    Keys: ``frames``, ``accepted_frames``, ``accepted_share``, ``confidence_median`` /
    ``confidence_p10`` (per-frame mean keypoint score over accepted frames), ``jitter_frames``,
    ``jitter_median`` / ``jitter_p90`` (second difference / body size), ``displacement_median`` /
    ``displacement_p90`` (first difference / body size), ``swap_share``, ``bone_share``.
    A figure that could not be measured (too few consecutive frames) is None. ``step_s``: the
    jitter's time step; pass the reference's own (:attr:`Reference.step_s`) when checking a run.
    """
    series = _per_frame(track.keypoints, track.scores, track.boxes, track.accepted, track.times_s, step_s)
    return _summarise(series, int(track.n_frames))


def reference_from_tracks(tracks: Sequence[Any], names: Sequence[str], model_path: str | os.PathLike[str],
                          ) -> dict[str, Any]:
    """The reference block of a model from its runs over validation recordings (frames pooled).

    Percentiles are over the pooled frames of all recordings; ``recordings`` keeps each one's own
    statistics so a reader can see the spread.
    """
    from gaitpose.fsutil import file_sha256

    if not tracks:
        raise ValueError("a domain reference needs at least one recording")
    per = [_per_frame(t.keypoints, t.scores, t.boxes, t.accepted, t.times_s) for t in tracks]
    pooled = {k: np.concatenate([p[k] for p in per]) for k in per[0]}
    frames = sum(int(t.n_frames) for t in tracks)
    stats = _summarise(pooled, frames)
    fps = [1.0 / float(np.median(np.diff(t.times_s))) for t in tracks if t.n_frames > 1]
    path = Path(model_path)
    return {
        "version": REFERENCE_VERSION, "model_file": path.name, "model_sha256": file_sha256(path),
        "stats": stats, "fps_median": float(np.median(fps)) if fps else None, "jitter_step_s": JITTER_STEP_S,
        "recordings": {name: _summarise(p, int(t.n_frames)) for name, p, t in zip(names, per, tracks, strict=True)},
    }


def _run_track(video: Path, estimator: Any, localizer: Any, threads: int | None, max_frames: int | None) -> Any:
    """The frame loop exactly as ``gaitpose analyze`` runs it (decode thread, tracker, look-back)."""
    from itertools import islice

    from gaitpose.infer.track import default_decode_threads, track_video
    from gaitpose.io import open_recording
    from gaitpose.io.prefetch import prefetch

    if hasattr(estimator, "reset"):
        estimator.reset()
    with open_recording(video) as rec:
        frames = rec.color_images(default_decode_threads())
        if max_frames:
            frames = islice(frames, max_frames)
        return track_video(prefetch(frames, depth=4), estimator, localizer, total_frames=rec.num_frames)


def domain_reference(model: str | os.PathLike[str], videos: Sequence[str | os.PathLike[str]], *,
                     localizer: str | os.PathLike[str] | None = None, threads: int | None = None,
                     max_frames: int | None = None) -> dict[str, Any]:
    """Measure a pose model's domain reference on its validation recordings (what ``specialise`` calls).

    Runs ``model`` over each video the way ``gaitpose analyze`` does (same tracker and localiser,
    ``localizer`` default the shipped one) and returns the block to store with
    :func:`store_domain_reference` (or under ``meta["domain_reference"][model file name]`` of a
    ``meta.json`` written beside the model). Use recordings the model was validated on: the
    reference says what "inside its domain" looks like, so it must come from inside it.
    """
    from gaitpose.infer.blazepose import load_pose_estimator
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.registry import LOCALIZER_MODEL, resolve_model

    model_path = Path(model)
    loc_path = resolve_model(localizer, LOCALIZER_MODEL, "localizer", "--localizer")
    est = load_pose_estimator(model_path, threads=threads, spinning=False)
    loc = OnnxLocalizer(loc_path, threads=threads, spinning=False)
    tracks, names = [], []
    for v in videos:
        tr = _run_track(Path(v), est, loc, threads, max_frames)
        if tr.accepted.any():
            tracks.append(tr)
            names.append(Path(v).stem)
    if not tracks:
        raise InputError(None, "no person found in any of the domain reference recordings")
    return reference_from_tracks(tracks, names, model_path)


def _sidecar(model_path: Path) -> Path:
    return model_path.parent / SIDECAR


def store_domain_reference(model: str | os.PathLike[str], block: dict[str, Any]) -> Path:
    """Write ``block`` into ``meta.json`` beside ``model`` (other keys kept); returns the sidecar's path."""
    from gaitpose.fsutil import write_json_atomic

    model_path = Path(model)
    side = _sidecar(model_path)
    meta: dict[str, Any] = {}
    if side.exists():
        meta = json.loads(side.read_text())
    meta.setdefault(BLOCK, {})[model_path.name] = block
    write_json_atomic(side, meta, indent=2)
    return side


@dataclass
class Reference:
    """The reference statistics of one model file, or why there are none (``stats`` None).

    ``stale``: a reference exists but was measured on another file (the check is skipped, and the
    run says so, since a re-exported model must be re-measured). ``step_s``: the jitter time step the
    reference was measured with (None: one frame, as references of version 1 were), so a run is
    measured the same way.
    """

    stats: dict[str, Any] | None
    note: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    stale: bool = False
    step_s: float | None = JITTER_STEP_S


def reference_for(model: str | os.PathLike[str], estimator: Any) -> Reference:
    """The domain reference to check a run against: none for the general model (kind ``blazepose``:
    it has no narrow domain), the sidecar's for a specialised one (see :func:`load_domain_reference`)."""
    kind = getattr(getattr(estimator, "meta", None), "kind", "sppe")
    if kind != "sppe":
        return Reference(None, f"{Path(model).name} is a general model (kind '{kind}'): no domain check")
    return load_domain_reference(model)


def load_domain_reference(model: str | os.PathLike[str]) -> Reference:
    """The model's domain reference from ``meta.json`` beside it.

    No sidecar or no block for this file: ``stats`` None with a note (the run is "unchecked").
    A block measured on another file (sha256 differs): None with a note saying so. A sidecar that
    is not JSON or a block without the figures: :class:`InputError` naming ``meta.json`` (one line),
    raised before any frame is decoded.
    """
    from gaitpose.fsutil import file_sha256

    model_path = Path(model)
    side = _sidecar(model_path)
    if not side.is_file():
        return Reference(None, f"no {SIDECAR} with a domain reference beside {model_path.name}")
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(side, f"model sidecar is not readable JSON ({str(exc).splitlines()[0]})") from None
    block = meta.get(BLOCK) if isinstance(meta, dict) else None
    if block is None:
        return Reference(None, f"{SIDECAR} beside {model_path.name} has no domain reference")
    entry = block.get(model_path.name) if isinstance(block, dict) else None
    if entry is None:
        return Reference(None, f"{SIDECAR} has no domain reference for {model_path.name}")
    stats = entry.get("stats") if isinstance(entry, dict) else None
    bad = [k for k in _STAT_KEYS if not isinstance((stats or {}).get(k), (int, float)) or isinstance(
        (stats or {}).get(k), bool)]
    if bad or not isinstance(entry.get("model_sha256"), str):
        what = ", ".join(bad) if bad else "model_sha256"
        raise InputError(side, f"broken domain reference for {model_path.name}: missing or non-numeric {what}")
    if entry["model_sha256"] != file_sha256(model_path):
        return Reference(None, f"the domain reference in {SIDECAR} was measured on another {model_path.name} "
                               "(sha256 differs): re-measure it (scripts/domain_reference.py)", stale=True)
    source = {k: entry.get(k) for k in ("model_file", "model_sha256", "fps_median", "jitter_step_s") if k in entry}
    source["recordings"] = sorted((entry.get("recordings") or {}).keys())
    step = entry.get("jitter_step_s")
    return Reference(dict(stats), "", source, step_s=float(step) if isinstance(step, (int, float)) else None)


@dataclass
class DomainCheck:
    """Verdict of one run: ``in_domain``, ``out_of_domain`` or ``unchecked`` (no reference), with reasons."""

    model: str
    verdict: str
    stats: dict[str, Any]
    reference: dict[str, Any] | None
    reasons: list[str] = field(default_factory=list)
    note: str = ""
    fallback_to: str | None = None  # the general model's file when the video was analysed again with it

    @property
    def out_of_domain(self) -> bool:
        return self.verdict == "out_of_domain"

    def warning(self) -> str:
        """The one-line warning for the CLI, the report and the job record."""
        return (f"pose model {self.model} was outside its domain on this video ({'; '.join(self.reasons)}): "
                "its keypoints may be wrong; analyse with the general model (no --model) or use --fallback")

    def fallback_warning(self, general: str) -> str:
        """The one-line warning when the video was analysed again with the general model."""
        return (f"pose model {self.model} was outside its domain on this video ({'; '.join(self.reasons)}): "
                f"results are from the general model ({general})")

    def to_dict(self) -> dict[str, Any]:
        from gaitpose.jsonutil import to_jsonable

        return to_jsonable({"verdict": self.verdict, "model": self.model, "reasons": list(self.reasons),
                            "note": self.note, "fallback_to": self.fallback_to, "stats": self.stats,
                            "reference": self.reference, "rules": dict(RULES)})


def _f(x: float) -> str:
    return f"{x:.3g}"


def check_domain(stats: dict[str, Any], reference: Reference | None, model: str) -> DomainCheck:
    """Compare one run's :func:`domain_stats` with the model's reference (see the rules in the module doc)."""
    if reference is None or reference.stats is None:
        note = reference.note if reference is not None else "the model has no domain reference"
        return DomainCheck(model, "unchecked", stats, None, [], note)
    ref, r = reference.stats, RULES
    reasons: list[str] = []
    enough = (stats.get("accepted_frames") or 0) >= r["min_frames"]
    acc, ref_acc = stats.get("accepted_share"), ref["accepted_share"]
    if acc is not None and acc < r["accepted_share_below_ref_x"] * ref_acc:
        reasons.append(f"subject accepted in {acc:.0%} of frames, under half of the {ref_acc:.0%} on its "
                       "validation recordings")
    cm = stats.get("confidence_median")
    if enough and cm is not None and cm < r["confidence_median_below_ref_p10"] * ref["confidence_p10"]:
        reasons.append(f"median keypoint confidence {_f(cm)} is below the 10th percentile of its validation "
                       f"frames ({_f(ref['confidence_p10'])})")
    jm, jp = stats.get("jitter_median"), stats.get("jitter_p90")
    if enough and jm is not None and jm > r["jitter_median_above_ref_p90_x"] * ref["jitter_p90"]:
        reasons.append(f"median frame-to-frame jitter {_f(jm)} of the body size is above the 90th percentile "
                       f"of its validation frames ({_f(ref['jitter_p90'])})")
    elif enough and jp is not None and jp > r["jitter_p90_above_ref_p90_x"] * ref["jitter_p90"]:
        reasons.append(f"90th percentile of jitter {_f(jp)} is over {r['jitter_p90_above_ref_p90_x']:g}x "
                       f"its validation frames' ({_f(ref['jitter_p90'])})")
    for key, what, factor in (("swap_share", "frames with left/right legs swapped", r["swap_share_above_ref_x"]),
                              ("bone_share", "frames with an implausible thigh/shank length",
                               r["bone_share_above_ref_x"])):
        v = stats.get(key)
        limit = max(factor * ref[key], ref[key] + r["share_min_excess"])
        if enough and v is not None and v > limit:
            reasons.append(f"{v:.0%} {what} (validation recordings: {ref[key]:.0%})")
    verdict = "out_of_domain" if reasons else "in_domain"
    return DomainCheck(model, verdict, stats, {"stats": ref, **reference.source}, reasons)
