"""File writers of an analysis: keypoints (JSON and CSV), events (CSV) and metrics (JSON).

Each file is written atomically (temporary name, then rename) through ``gaitpose.fsutil`` and
every JSON file through the one encoder, ``gaitpose.jsonutil`` (NaN -> null). ``keypoints.json``
is COCO results style, one entry per frame with the subject, in video pixels with the frame's
time: enough for a web page to draw the skeleton over the original video itself.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gaitpose.fsutil import write_json_atomic, write_text_atomic
from gaitpose.skeleton import KEYPOINTS, NUM_KEYPOINTS

if TYPE_CHECKING:
    from gaitpose.infer.track import PoseTrack

__all__ = ["write_events_csv", "write_json", "write_keypoints_csv", "write_keypoints_json"]


def write_json(path: str | Path, obj: Any, indent: int | None = None) -> None:
    """Strict JSON (NaN -> null, numpy -> plain) written atomically (``fsutil.write_json_atomic``)."""
    write_json_atomic(path, obj, indent=indent)


def write_keypoints_json(path: Path, track: PoseTrack) -> None:
    """COCO results style: one entry per frame where the subject was found."""
    out = []
    for t in range(track.n_frames):
        if not np.isfinite(track.boxes[t]).all():
            continue
        kp = np.concatenate([track.keypoints[t], track.scores[t][:, None]], axis=1)
        out.append({
            "image_id": t,
            "category_id": 1,
            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
            "score": round(float(track.scores[t].mean()), 4),
            "time_s": round(float(track.times_s[t]), 4),
            "box": [round(float(v), 1) for v in track.boxes[t]],
        })
    write_json(path, out)


def write_keypoints_csv(path: Path, track: PoseTrack) -> None:
    """One row per video frame (empty cells where a keypoint is unknown), for spreadsheets."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["frame", "time_s", *[f"{n}_{c}" for n in KEYPOINTS for c in ("x", "y", "score")]])
    for t in range(track.n_frames):
        row: list[Any] = [t, f"{track.times_s[t]:.4f}"]
        for k in range(NUM_KEYPOINTS):
            x, y = track.keypoints[t, k]
            if np.isfinite(x) and np.isfinite(y):
                row += [f"{x:.2f}", f"{y:.2f}", f"{track.scores[t, k]:.3f}"]
            else:
                row += ["", "", ""]
        w.writerow(row)
    write_text_atomic(path, buf.getvalue())


def write_events_csv(path: Path, events: Sequence[Any]) -> None:
    """Heel strikes and toe-offs in time order as detected: foot, event, frame, time."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["foot", "event", "frame", "time_s"])
    for e in events:
        w.writerow([e.foot, e.event, int(e.frame), f"{float(e.time_s):.4f}"])
    write_text_atomic(path, buf.getvalue())
