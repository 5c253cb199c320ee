"""The typed result of one analysis: what the CLI, the service worker, the report and the API read.

Why typed: the result used to travel as hand-built dicts (metrics, processing, summary) whose
keys every reader guessed with ``.get``. :class:`AnalysisResult` holds the pose track, the gait
result, where the numbers came from (:class:`ModelInfo`) and how they were made
(:class:`Processing`); its ``metrics_dict()`` is the ``metrics.json`` layout and ``summary()`` the
short JSON summary. Importing this module costs nothing (numpy only at call time), so the HTTP
API can read :data:`OUTPUT_FILES` from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaitpose.jsonutil import to_jsonable

if TYPE_CHECKING:
    from gaitpose.gait.analysis import GaitResult
    from gaitpose.infer.track import PoseTrack

__all__ = ["OUTPUT_FILES", "AnalysisResult", "GaitMetrics", "ModelInfo", "Processing", "Sided"]

OUTPUT_FILES: tuple[str, ...] = (
    "keypoints.json", "keypoints.csv", "events.csv", "metrics.json",
    "angles.png", "angles_cycle.png", "report.html", "clinical.json", "overlay.mp4",
)
"""Every file an analysis can write, in the order they are listed to users (``overlay.mp4`` only on request)."""


@dataclass(frozen=True)
class ModelInfo:
    """Provenance: which model files (by content hash) produced the keypoints."""

    pose_model: str
    pose_model_sha256: str
    pose_model_version: str
    pose_input_size: tuple[int, int]
    pose_in_channels: int
    pose_flip_test: bool
    localizer_model: str
    localizer_sha256: str
    localizer_input_size: tuple[int, int]
    fallback_from: str | None = None  # the specialised model whose run was out of its domain (gaitpose.infer.domain)

    @classmethod
    def of(cls, model_path: Path, estimator: Any, loc_path: Path, loc: Any, flip_test: bool,
           fallback_from: str | None = None) -> ModelInfo:
        """From the model files (hashed) and the loaded estimator and localiser (their embedded metadata)."""
        from gaitpose.fsutil import file_sha256

        meta = getattr(estimator, "meta", None)
        return cls(
            pose_model=model_path.name, pose_model_sha256=file_sha256(model_path),
            pose_model_version=str(getattr(meta, "version", "")),
            pose_input_size=tuple(getattr(meta, "input_size", ())),
            pose_in_channels=int(getattr(meta, "in_channels", 3)), pose_flip_test=bool(flip_test),
            localizer_model=loc_path.name, localizer_sha256=file_sha256(loc_path),
            localizer_input_size=tuple(loc.meta.input_size), fallback_from=fallback_from,
        )

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


@dataclass(frozen=True)
class Sided:
    """A per-side measure: left, right and their mean (None where it could not be measured)."""

    left: float | None = None
    right: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, d: Any) -> Sided:
        d = d if isinstance(d, dict) else {}
        return cls(*(None if d.get(k) is None else float(d[k]) for k in ("left", "right", "mean")))


@dataclass(frozen=True)
class GaitMetrics:
    """Typed view of the spatio-temporal metrics (``GaitResult.metrics``, the top of metrics.json).

    Lengths and speed are in ``units``: metres, or leg lengths ("relative") without depth or height.
    """

    walking_found: bool
    units: str
    n_steps: int
    n_strides: int
    cadence_steps_per_min: float | None
    step_time_s: Sided
    stride_time_s: Sided
    stance_pct: Sided
    swing_pct: Sided
    double_support_pct: float | None
    step_length: Sided
    stride_length: Sided
    walking_speed: float | None

    @classmethod
    def of(cls, m: dict[str, Any], units: str) -> GaitMetrics:
        def num(k: str) -> float | None:
            return None if m.get(k) is None else float(m[k])

        return cls(
            walking_found=bool(m.get("walking_found", False)), units=units, n_steps=int(m.get("n_steps") or 0),
            n_strides=int(m.get("n_strides") or 0), cadence_steps_per_min=num("cadence_steps_per_min"),
            step_time_s=Sided.of(m.get("step_time_s")), stride_time_s=Sided.of(m.get("stride_time_s")),
            stance_pct=Sided.of(m.get("stance_pct")), swing_pct=Sided.of(m.get("swing_pct")),
            double_support_pct=num("double_support_pct"), step_length=Sided.of(m.get("step_length")),
            stride_length=Sided.of(m.get("stride_length")), walking_speed=num("walking_speed"),
        )


@dataclass
class Processing:
    """How the analysis ran: frame counts, tracker work, options and wall time per stage (seconds)."""

    frames: int
    fps: float
    frame_size: tuple[int, int]
    frames_with_pose: int
    localizer_calls: int
    backfilled_frames: int
    pose_seconds: float
    threads: int | None
    depth: bool
    height_cm: float | None
    roi: list[float] | None
    elapsed_s: float = 0.0
    overlay_frames: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def throughput_fps(self) -> float:
        """Frames per second of the frame loop (decode + tracker + pose network)."""
        return self.frames / max(self.pose_seconds, 1e-9)

    @property
    def localizer_calls_per_100_frames(self) -> float:
        return 100.0 * self.localizer_calls / max(self.frames, 1)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable({
            "frames": self.frames, "fps": self.fps, "frame_size": list(self.frame_size),
            "frames_with_pose": self.frames_with_pose, "localizer_calls": self.localizer_calls,
            "backfilled_frames": self.backfilled_frames,
            "localizer_calls_per_100_frames": self.localizer_calls_per_100_frames,
            "pose_seconds": self.pose_seconds, "throughput_fps": self.throughput_fps,
            "threads": self.threads, "elapsed_s": self.elapsed_s, "depth": self.depth,
            "height_cm": self.height_cm, "roi": self.roi, "overlay_frames": self.overlay_frames,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        })


@dataclass
class AnalysisResult:
    """One analysed video: per-frame track, gait result, provenance, processing and warnings.

    ``warnings`` are every warning of the run (depth pairing first, then the gait analysis),
    each once. ``files`` are the names written into ``out_dir`` (never absolute paths, so a
    summary can leave a server without naming its folders).
    """

    video: Path
    out_dir: Path
    track: PoseTrack
    gait: GaitResult
    model: ModelInfo
    processing: Processing
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    domain: dict[str, Any] | None = None  # gaitpose.infer.domain.DomainCheck.to_dict(): verdict, stats, reasons
    validation: dict[str, Any] | None = None  # gaitpose.gait.validation.reference_comparison (``--reference``)

    @property
    def walking_found(self) -> bool:
        return bool(self.gait.walking_found)

    @property
    def metrics(self) -> GaitMetrics:
        """The headline gait metrics, typed (the full set, angles included, is ``metrics_dict()``)."""
        return GaitMetrics.of(dict(self.gait.metrics), self.gait.units)

    def drawn_keypoints(self) -> Any:
        """What the overlay and the stills draw: the cleaned track, the raw keypoints where it has none."""
        import numpy as np

        return np.where(np.isfinite(self.gait.kpts), self.gait.kpts, self.track.keypoints)

    def metrics_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` layout: the gait metrics at top level, then units, warnings,
        event counts, video name, ``model`` (provenance) and ``processing``; ``skeleton`` names the
        keypoints and limb pairs so a page can draw ``keypoints.json`` without knowing the model."""
        from gaitpose.gait.validation import comparison_metrics
        from gaitpose.skeleton import KEYPOINTS, SKELETON

        return to_jsonable({
            **dict(self.gait.metrics),
            "units": self.gait.units,
            "warnings": list(self.warnings),
            "n_events": len(self.gait.events),
            "swapped_frames": len(self.gait.swapped_frames),
            "video": self.video.name,
            "model": self.model.to_dict(),
            "processing": self.processing.to_dict(),
            "domain": self.domain,
            "skeleton": {"keypoints": list(KEYPOINTS), "edges": [list(e) for e in SKELETON]},
            **comparison_metrics(self.validation),
        })

    def summary(self) -> dict[str, Any]:
        """Short JSON summary for the CLI's closing lines and the service's job record (no paths)."""
        m = self.metrics
        p = self.processing
        return to_jsonable({
            "video": self.video.name, "frames": p.frames, "fps": p.fps, "frames_with_pose": p.frames_with_pose,
            "localizer_calls": p.localizer_calls, "throughput_fps": p.throughput_fps, "elapsed_s": p.elapsed_s,
            "walking_found": self.walking_found, "units": self.gait.units,
            "cadence_steps_per_min": m.cadence_steps_per_min, "n_strides": m.n_strides,
            "warnings": list(self.warnings), "files": list(self.files),
            "pose_model": self.model.pose_model, "fallback_from": self.model.fallback_from,
            "domain_verdict": (self.domain or {}).get("verdict"),
        })
