"""Frame extraction: recordings (colour video, Kinect MKV, RealSense bag, video + depth sequence)
into a frame store (``<recording>/color/NNNNNN.jpg``, ``<recording>/depth/NNNNNN.png``, ``manifest.jsonl``).

Why it is built this way:
  * crash safety: every image is written under a temporary name and renamed into place, and its
    manifest row is appended only afterwards, so the manifest never points at a partial file;
  * resumability: frames already in the manifest are skipped, so an interrupted or repeated run
    only does the missing work (and a recording whose frames are all present is not even decoded);
  * the inputs are opened read-only and never touched;
  * colour/depth are paired by timestamp (:mod:`gaitpose.io.sync`), never by index, and depth is
    registered into the colour image when the recording says how (intrinsics + extrinsics).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from data_tools.extract_run import (  # callers also import these from here
    ExtractOptions,
    ExtractSummary,
    check_output_dir,
    read_subjects_csv,
    recording_ids,
)
from gaitpose.errors import InputError
from gaitpose.fsutil import write_bytes_atomic
from gaitpose.io import DepthFrame, Recording, open_recording, scale_camera
from gaitpose.io.sync import NearestPairer, can_register, register_depth
from gaitpose.manifest import ManifestWriter, read_manifest

log = logging.getLogger(__name__)

WRITE_WORKERS = 4
EXPECTED = (InputError, FileNotFoundError, PermissionError, ValueError, OSError)


class _DepthCursor:
    """Serves depth frames by non-decreasing index from one forward pass (pairing is monotonic)."""

    def __init__(self, rec: Recording) -> None:
        self._it: Iterator[DepthFrame] = rec.depth_frames()
        self._cur: DepthFrame | None = None

    def get(self, index: int) -> DepthFrame:
        while self._cur is None or self._cur.index < index:
            self._cur = next(self._it)
        if self._cur.index != index:
            raise RuntimeError(f"depth frame {index} requested after {self._cur.index}")
        return self._cur


def _clean_stray_parts(rec_dir: Path) -> int:
    """Remove temporary files an interrupted run left behind (they never have a manifest row)."""
    n = 0
    for sub in ("color", "depth"):
        d = rec_dir / sub
        if d.is_dir():
            for f in d.glob(".*.part*"):
                f.unlink(missing_ok=True)
                n += 1
    return n


def _target_size(size: tuple[int, int], max_size: int | None) -> tuple[int, int]:
    w, h = size
    if not max_size or max(w, h) <= max_size:
        return w, h
    s = max_size / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _write_images(jobs: list[tuple[Path, str, np.ndarray, list[int]]]) -> None:
    for path, ext, img, params in jobs:
        write_bytes_atomic(path, _encode(ext, img, params, path))


def _encode(ext: str, img: np.ndarray, params: list[int], path: Path) -> bytes:
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise OSError(f"could not encode {path}")
    return buf.tobytes()


def extract_recording(
    path: str | os.PathLike[str],
    frames_dir: str | os.PathLike[str],
    *,
    recording_id: str | None = None,
    subject: str | None = None,
    depth: str | os.PathLike[str] | None = None,
    timestamps: str | os.PathLike[str] | None = None,
    options: ExtractOptions | None = None,
    manifest: ManifestWriter | None = None,
    done: set[tuple[str, int]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExtractSummary:
    """Extract one recording into ``frames_dir``; raises :class:`InputError` for a bad input.

    Frames written before a mid-file decode error stay valid (their rows are in the manifest);
    the error is raised after them. ``done`` holds (recording, frame_index) pairs to skip; when
    omitted it is read from the existing manifest.
    """
    opts = options or ExtractOptions()
    opts.validate()
    src = Path(path)
    rid = recording_id or src.stem
    subj = subject if subject is not None else rid
    out = Path(frames_dir)
    if done is None:
        done = {(r["recording"], int(r["frame_index"])) for r in read_manifest(out)}
    t_start = time.perf_counter()
    summary = ExtractSummary(recording=rid, source=src.name, subject=subj)

    rec = open_recording(src, depth=depth, timestamps=timestamps)
    try:
        intr = dict(rec.intrinsics)
        cw, ch = rec.size
        tw, th = _target_size(rec.size, opts.max_size)
        registered = False
        row_intr: dict[str, Any] | None = None
        if rec.has_depth:
            assert rec.depth_size is not None
            summary.has_depth = True
            if can_register(intr) and opts.register:
                registered = True
            elif rec.depth_size != rec.size and not can_register(intr):
                dw, dh = rec.depth_size
                raise InputError(
                    src, f"depth {dw}x{dh} differs from colour {cw}x{ch} and no intrinsics/extrinsics to register it"
                )
            summary.registered = registered
        if "color" in intr:
            color_cam = scale_camera(intr["color"], tw, th)
            row_intr = {"color": color_cam}
            if rec.has_depth:
                if registered or (rec.depth_size == rec.size and "depth_to_color" not in intr):
                    # depth lies in the colour image (registered here or recorded aligned)
                    row_intr["depth"] = dict(color_cam)
                    row_intr["depth_aligned_to_color"] = True
                else:
                    if "depth" in intr:
                        row_intr["depth"] = dict(intr["depth"])
                    if "depth_to_color" in intr:
                        row_intr["depth_to_color"] = intr["depth_to_color"]
                    row_intr["depth_aligned_to_color"] = False
                row_intr["depth_scale_mm"] = 1.0

        # Which colour frames: stride on the source index, time window, max count.
        def selected(index: int, t_ms: float) -> bool:
            if index % opts.stride:
                return False
            if opts.start_s is not None and t_ms < opts.start_s * 1000.0:
                return False
            return not (opts.end_s is not None and t_ms >= opts.end_s * 1000.0)

        color_times = rec.color_timestamps() if hasattr(rec, "color_timestamps") else None
        if color_times is not None:
            plan = [i for i, t in enumerate(color_times) if selected(i, float(t))]
            if opts.max_frames is not None:
                plan = plan[: opts.max_frames]
            summary.frames_selected = len(plan)
            if plan and all((rid, i) in done for i in plan):
                summary.frames_skipped = len(plan)
                summary.seconds = time.perf_counter() - t_start
                if progress:
                    progress(len(plan))
                return summary  # nothing to do: do not even decode

        pairer: NearestPairer | None = None
        cursor: _DepthCursor | None = None
        if rec.has_depth:
            pairer = NearestPairer(
                rec.depth_timestamps(),
                tolerance_ms=opts.tolerance_ms,
                clock_offset_ms=opts.clock_offset_ms,
                color_period_ms=1000.0 / rec.fps if rec.fps else 0.0,
            )
            cursor = _DepthCursor(rec)

        rec_dir = out / rid
        if _clean_stray_parts(rec_dir):
            log.info("%s: removed temporary files left by an interrupted run", rid)
        own_manifest = manifest is None
        writer = manifest or ManifestWriter(out)
        n_sel = 0
        cached: tuple[int, np.ndarray] | None = None
        jpg_params = [cv2.IMWRITE_JPEG_QUALITY, int(opts.jpeg_quality)]
        png_params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
        # Encoding and fsync run in worker threads (both release the GIL); rows are appended in
        # frame order, each only after its images are durably in place.
        pool = ThreadPoolExecutor(max_workers=WRITE_WORKERS)
        pending: deque[tuple[Future[None], dict[str, Any]]] = deque()

        def flush(keep: int) -> None:
            while len(pending) > keep:
                fut, row = pending.popleft()
                fut.result()
                writer.append(row)
                done.add((rid, int(row["frame_index"])))
                summary.frames_written += 1
                if progress:
                    progress(1)

        ok = False
        try:
            for frame in rec.color_frames():
                if opts.end_s is not None and frame.t_ms >= opts.end_s * 1000.0:
                    break
                if not selected(frame.index, frame.t_ms):
                    continue
                if opts.max_frames is not None and n_sel >= opts.max_frames:
                    break
                n_sel += 1
                j, err = pairer.match(frame.t_ms) if pairer is not None else (None, None)
                if (rid, frame.index) in done:
                    summary.frames_skipped += 1
                    if progress:
                        progress(1)
                    continue
                name = f"{frame.index:06d}"
                rgb = frame.rgb
                if (tw, th) != (rgb.shape[1], rgb.shape[0]):
                    rgb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
                color_rel = f"{rid}/color/{name}.jpg"
                jobs = [(out / color_rel, ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), jpg_params)]
                row: dict[str, Any] = {
                    "recording": rid,
                    "subject": subj,
                    "frame_index": frame.index,
                    "t_color_ms": round(frame.t_ms, 3),
                    "color_path": color_rel,
                    "width": tw,
                    "height": th,
                }
                if j is not None and cursor is not None:
                    dframe = cursor.get(j)
                    if cached is not None and cached[0] == j:
                        d = cached[1]  # a slower depth stream serves several colour frames
                    else:
                        d = dframe.depth
                        if registered:
                            d = register_depth(
                                d,
                                intr["depth"],
                                intr["color"],
                                intr["depth_to_color"]["rotation"],
                                intr["depth_to_color"]["translation_m"],
                            )
                        if (registered or rec.depth_size == rec.size) and (d.shape[1], d.shape[0]) != (tw, th):
                            d = cv2.resize(d, (tw, th), interpolation=cv2.INTER_NEAREST)
                        cached = (j, d)
                    depth_rel = f"{rid}/depth/{name}.png"
                    jobs.append((out / depth_rel, ".png", d, png_params))
                    row.update(
                        t_depth_ms=round(dframe.t_ms, 3), depth_path=depth_rel, pair_error_ms=round(err or 0.0, 3)
                    )
                if row_intr is not None:
                    row["intrinsics"] = row_intr
                pending.append((pool.submit(_write_images, jobs), row))
                flush(keep=2 * WRITE_WORKERS)
            flush(keep=0)
            ok = True
        finally:
            if not ok:
                # Keep the rows of frames whose images did get written, in order, up to the first failure.
                try:
                    flush(keep=0)
                except Exception:  # the original error is the one to report
                    log.debug("write failed while stopping", exc_info=True)
            pool.shutdown(wait=True)
            if own_manifest:
                writer.close()
            if pairer is not None:
                summary.sync = pairer.report()
            summary.seconds = time.perf_counter() - t_start
        summary.frames_selected = max(summary.frames_selected, n_sel)
        return summary
    finally:
        rec.close()


def extract_many(
    inputs: Sequence[str | os.PathLike[str]],
    frames_dir: str | os.PathLike[str],
    *,
    subject: str | None = None,
    subjects_csv: str | os.PathLike[str] | None = None,
    depth: str | os.PathLike[str] | None = None,
    timestamps: str | os.PathLike[str] | None = None,
    options: ExtractOptions | None = None,
    progress_bar: bool = True,
    recording_id: str | None = None,
) -> list[ExtractSummary]:
    """Extract several recordings; a bad one is recorded in its summary's ``error`` and the rest go on.

    ``recording_id`` names a single input's recording explicitly, e.g. to store two time ranges
    of one long clip as separate recordings that a split can put on different sides.
    """
    if not inputs:
        raise ValueError("no input recordings given")
    if depth is not None and len(inputs) != 1:
        raise ValueError("--depth/--timestamps pair one colour video with one depth sequence; give one INPUT")
    opts = options or ExtractOptions()
    opts.validate()
    subjects = read_subjects_csv(subjects_csv) if subjects_csv else {}
    out = check_output_dir(frames_dir)
    done = {(r["recording"], int(r["frame_index"])) for r in read_manifest(out)}
    if recording_id is not None and len(inputs) != 1:
        raise ValueError("--recording-id names one recording; give one INPUT")
    ids = [recording_id] if recording_id is not None else recording_ids(inputs)
    summaries: list[ExtractSummary] = []
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(unit="frame", desc="extract", leave=False)
    try:
        with ManifestWriter(out) as writer:
            for path, rid in zip(inputs, ids, strict=True):
                p = Path(path)
                subj = subject or subjects.get(rid) or subjects.get(p.stem) or subjects.get(p.name) or rid
                if bar is not None:
                    bar.set_description(rid)
                try:
                    s = extract_recording(
                        p,
                        out,
                        recording_id=rid,
                        subject=subj,
                        depth=depth,
                        timestamps=timestamps,
                        options=opts,
                        manifest=writer,
                        done=done,
                        progress=bar.update if bar is not None else None,
                    )
                except EXPECTED as exc:
                    msg = str(exc).replace("\n", " ").strip()
                    if not isinstance(exc, InputError) and str(p) not in msg:
                        msg = f"{p}: {msg}"
                    s = ExtractSummary(recording=rid, source=p.name, subject=subj, error=msg)
                    log.debug("extract failed for %s", p, exc_info=True)
                summaries.append(s)
    finally:
        if bar is not None:
            bar.close()
    return summaries
