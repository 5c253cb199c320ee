"""Turn a video into a frame store (JPEGs + ``manifest.jsonl``) for tests, per ``gaitpose.manifest``.

Tests of labelling, splitting and batching need frame stores made from the real clips in
``tests/data``; this builds one with cv2 only, independent of ``gaitpose-data extract`` so those
tests do not fail for reasons outside their area.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from gaitpose.manifest import ManifestWriter


def video_to_frame_store(
    video: str | Path,
    frames_dir: str | Path,
    recording: str,
    subject: str | None = None,
    stride: int = 1,
    start: int = 0,
    stop: int | None = None,
    jpeg_quality: int = 92,
) -> Path:
    """Decode ``video`` and append every ``stride``-th frame in [start, stop) to the store at ``frames_dir``.

    Frame indices and timestamps are those of the source video, so strided stores still say
    which original frame each JPEG is. Returns ``frames_dir``.
    """
    frames_dir = Path(frames_dir)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"{video}: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out_dir = frames_dir / recording
    out_dir.mkdir(parents=True, exist_ok=True)
    with ManifestWriter(frames_dir) as writer:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or (stop is not None and index >= stop):
                break
            if index >= start and (index - start) % stride == 0:
                rel = f"{recording}/{index:06d}.jpg"
                cv2.imwrite(str(frames_dir / rel), frame, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                row = {
                    "recording": recording,
                    "subject": subject,
                    "frame_index": index,
                    "t_color_ms": round(index * 1000.0 / fps, 3),
                    "color_path": rel,
                    "width": int(frame.shape[1]),
                    "height": int(frame.shape[0]),
                }
                writer.append(row)
            index += 1
    cap.release()
    return frames_dir


def synthetic_frame_store(
    frames_dir: str | Path, recording: str, n_frames: int = 12, size_wh: tuple[int, int] = (320, 240), seed: int = 0
) -> Path:
    """A frame store with no person in it: smoothed noise over a flat colour."""
    frames_dir = Path(frames_dir)
    rng = np.random.default_rng(seed)
    (frames_dir / recording).mkdir(parents=True, exist_ok=True)
    w, h = size_wh
    with ManifestWriter(frames_dir) as writer:
        for i in range(n_frames):
            img = np.full((h, w, 3), (90, 140, 60), np.uint8)
            noise = cv2.GaussianBlur(rng.integers(0, 60, (h, w, 3)).astype(np.uint8), (5, 5), 0)
            img = cv2.add(img, noise)
            rel = f"{recording}/{i:06d}.jpg"
            cv2.imwrite(str(frames_dir / rel), img)
            writer.append(
                {
                    "recording": recording,
                    "subject": None,
                    "frame_index": i,
                    "t_color_ms": round(i * 1000.0 / 30.0, 3),
                    "color_path": rel,
                    "width": w,
                    "height": h,
                }
            )
    return frames_dir
