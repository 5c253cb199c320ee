"""Every file of an analysis, from its typed result, into the staging folder ``analyze_video`` publishes.

Order matters: keypoints, events and charts first; the optional overlay video; then metrics.json and
report.html last, because they carry the run's timings. The heel-strike stills are drawn on a
second thread meanwhile (from the crops kept during the frame loop; a strike beyond them is decoded
again there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gaitpose.result import AnalysisResult

__all__ = ["write_outputs", "write_overlay_video"]


def write_outputs(
    tmp: Path,
    res: AnalysisResult,
    *,
    started: float,
    kept: Any = None,
    overlay_frames: Iterable[Any] | None = None,
    overlay_size: int | None = 960,
    prefetch_frames: int = 4,
    progress: Callable[[], None] | None = None,
) -> None:
    """Write the result files into ``tmp``; ``started``: ``time.perf_counter()`` at the job's start.

    ``overlay_frames``: the video's images again when overlay.mp4 was asked for (None: no overlay).
    ``kept``: :class:`gaitpose.report.stillcache.SubjectFrames` of the frame loop.
    """
    t_outputs = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        stills = pool.submit(_stills, res, kept)
        _write_data(tmp, res)
        if progress is not None:
            progress()
        if overlay_frames is not None:
            res.processing.overlay_frames = write_overlay_video(
                res, tmp / "overlay.mp4", frames=overlay_frames, max_side=overlay_size, prefetch_frames=prefetch_frames)
        res.processing.stage_seconds["outputs"] = time.perf_counter() - t_outputs
        res.processing.elapsed_s = time.perf_counter() - started
        _write_report(tmp, res, overlay=overlay_frames is not None, stills=stills.result())
    # mkdtemp/mkstemp create 0700/0600; results are meant to be read by other users and servers.
    for p in tmp.iterdir():
        p.chmod(0o644)
    tmp.chmod(0o755)


def write_overlay_video(res: AnalysisResult, out_path: Path, *, frames: Iterable[Any] | None = None,
                        max_side: int | None = 960, prefetch_frames: int = 4) -> int:
    """overlay.mp4 (skeleton and gait events on the video), atomically; returns frames written.

    ``frames``: the video's images when already decoding (default: decoded again from ``res.video``).
    The service worker calls this after a job's results are published.
    """
    from gaitpose.report.overlay import render_overlay

    return render_overlay(res.video, res.drawn_keypoints(), res.track.scores, res.gait.events, res.processing.fps,
                          out_path, boxes=res.track.boxes, frames=frames, max_side=max_side,
                          prefetch_frames=prefetch_frames)


def _write_data(tmp: Path, res: AnalysisResult) -> None:
    """keypoints, events and the angle charts."""
    from gaitpose.report.clinical import toe_off_pct
    from gaitpose.report.plots import plot_angle_cycles, plot_angles
    from gaitpose.report.writers import write_events_csv, write_keypoints_csv, write_keypoints_json

    gait = res.gait
    write_keypoints_json(tmp / "keypoints.json", res.track)
    write_keypoints_csv(tmp / "keypoints.csv", res.track)
    write_events_csv(tmp / "events.csv", gait.events)
    if res.validation is not None:  # --reference: inside the staged folder, so it lands with the rest
        from gaitpose.report.writers import write_json

        write_json(tmp / "validation.json", res.validation, indent=2)
    plot_angles(gait.angles, res.processing.fps, gait.events, tmp / "angles.png")
    plot_angle_cycles(gait.cycles, tmp / "angles_cycle.png", toe_off_pct=toe_off_pct(gait.metrics))


def _stills(res: AnalysisResult, kept: Any) -> list[dict[str, str]]:
    from gaitpose.report.keyframes import heel_strike_stills

    return heel_strike_stills(res.video, res.drawn_keypoints(), res.track.scores, res.gait.events, frames=kept)


def _write_report(tmp: Path, res: AnalysisResult, *, overlay: bool, stills: list[dict[str, str]]) -> None:
    """metrics.json and report.html (with clinical.json, written by the report)."""
    from gaitpose.report.html import write_report
    from gaitpose.report.writers import write_json

    gait, metrics = res.gait, res.metrics_dict()
    write_json(tmp / "metrics.json", metrics, indent=2)
    write_report(
        tmp / "report.html", video_name=res.video.name, summary=metrics["processing"], metrics=metrics,
        events=gait.events, warnings=res.warnings, model_info=metrics["model"],
        angles_png=tmp / "angles.png", cycles_png=tmp / "angles_cycle.png",
        overlay_name="overlay.mp4" if overlay else None, session={"direction": gait.direction},
        stills=stills,
    )
