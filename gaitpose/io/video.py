"""PyAV readers: plain colour video (mp4/mov/avi/mkv, any codec FFmpeg decodes) and
Azure-Kinect / Orbbec-Femto style MKV with a 16-bit depth track.

Why PyAV and not cv2.VideoCapture: we need true presentation timestamps (``pts * time_base``) for
colour/depth pairing and variable-frame-rate phone clips, access to several tracks and their tags,
and the 16-bit depth track, none of which cv2 exposes.

A first demux pass (packets only, no decoding) validates the file, yields every frame time and
detects truncation (fewer packets than the container's index announces) before anything is
decoded, so a broken file is rejected before an extractor writes a single frame.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.io.base import ColorFrame, DepthFrame, PlanarColorFrame, Recording, camera_dict, require_file

log = logging.getLogger(__name__)

DEPTH_TITLES = ("DEPTH", "K4A_DEPTH_TRACK")
IR_TITLES = ("IR", "K4A_IR_TRACK")
GRAY16 = ("gray16be", "gray16le", "gray16")
GRAY8 = ("gray", "gray8", "y8")
PLANAR_420 = ("yuv420p", "yuvj420p")  # kept planar for the pose runtime (gaitpose.io.planar)


def _av_error_types() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, OSError, ValueError)


def _open_container(path: os.PathLike[str] | str) -> Any:
    import av

    try:
        return av.open(os.fspath(path))
    except _av_error_types() as exc:
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError:
            head = b""
        if head[4:8] == b"ftyp":  # an MP4/MOV that starts right but cannot be indexed
            raise InputError(path, f"corrupt or truncated MP4/MOV ({_short(exc)})") from None
        raise InputError(path, f"not a readable video ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    # PyAV messages carry "[Errno N]" and repeat the file name; keep only the reason.
    msg = re.sub(r"\[Errno -?\d+\]\s*", "", str(msg).replace("\n", " ")).strip()
    msg = re.sub(r":\s*'[^']*'$", "", msg)
    return msg or exc.__class__.__name__


def _tags(stream: Any) -> dict[str, str]:
    return {str(k).upper(): str(v) for k, v in (stream.metadata or {}).items()}


def _role(stream: Any) -> str:
    """'color', 'depth', 'ir' or 'other' from track title/tags, falling back to the pixel format."""
    tags = _tags(stream)
    title = tags.get("TITLE", "").upper()
    if title in DEPTH_TITLES or "K4A_DEPTH_TRACK" in tags or "DEPTH" in title:
        return "depth"
    if title in IR_TITLES or "K4A_IR_TRACK" in tags or title.startswith("IR"):
        return "ir"
    if title in ("COLOR", "COLOUR", "K4A_COLOR_TRACK") or "K4A_COLOR_TRACK" in tags:
        return "color"
    pix = stream.codec_context.pix_fmt or ""
    tag = str(getattr(stream.codec_context, "codec_tag", "") or "").lower()
    if pix in GRAY16 or tag == "b16g":
        return "depth"
    return "color"


def _time_ms(pts: int | None, time_base: Fraction | None) -> float | None:
    if pts is None or time_base is None:
        return None
    return float(pts * time_base * 1000)


class VideoRecording(Recording):
    """Colour video, optionally with a 16-bit depth track (Kinect-style MKV)."""

    def __init__(self, path: str | os.PathLike[str], decode_depth_track: bool = True) -> None:
        super().__init__(require_file(path))
        container = _open_container(self.path)
        try:
            videos = list(container.streams.video)
            if not videos:
                raise InputError(self.path, "no video track")
            roles = {s.index: _role(s) for s in videos}
            colors = [s for s in videos if roles[s.index] == "color"]
            depths = [s for s in videos if roles[s.index] == "depth"] if decode_depth_track else []
            if not colors:
                raise InputError(self.path, "no colour video track (only depth/IR tracks)")
            self._color_index = colors[0].index
            self._depth_index = depths[0].index if depths else None
            cs = colors[0]
            self.size = (int(cs.codec_context.width), int(cs.codec_context.height))
            self.codec = str(cs.codec_context.name or "")
            if self.size[0] <= 0 or self.size[1] <= 0:
                raise InputError(self.path, "colour track has no frame size")
            rate = cs.average_rate or cs.guessed_rate or cs.base_rate
            self.fps = float(rate) if rate else 0.0
            self._expected = {cs.index: int(cs.frames or 0)}
            ctags = {str(k).upper(): str(v) for k, v in (container.metadata or {}).items()}
            self.start_offset_ns = int(ctags.get("K4A_START_OFFSET_NS", "0") or 0)
            self.depth_delay_ns = int(ctags.get("K4A_DEPTH_DELAY_NS", "0") or 0)
            if self._depth_index is not None:
                ds = container.streams[self._depth_index]
                pix = ds.codec_context.pix_fmt or ""
                if pix in GRAY8 or (pix and pix not in GRAY16 and not pix.startswith("gray16")):
                    raise InputError(self.path, f"depth track is {pix or 'unknown format'}; depth must be 16-bit")
                self.depth_size = (int(ds.codec_context.width), int(ds.codec_context.height))
                self._expected[ds.index] = int(ds.frames or 0)
            self._read_calibration(container, ctags)
            # Container duration (Matroska writes it in the header) catches truncated files whose
            # tracks carry no frame count; audio can outlast video, so only for video-only files.
            has_audio = bool(list(container.streams.audio))
            end_us = (container.start_time or 0) + (container.duration or 0)
            self._container_ms = None if has_audio or not container.duration else end_us / 1000.0
            self._scan(container)
        except _av_error_types() as exc:
            raise InputError(self.path, f"cannot read video ({_short(exc)})") from None
        finally:
            container.close()

    # -- validation and timestamps -------------------------------------------------------------

    def _scan(self, container: Any) -> None:
        """Demux every packet once: frame times per track, and truncation before any decoding."""
        wanted = [container.streams[self._color_index]]
        if self._depth_index is not None:
            wanted.append(container.streams[self._depth_index])
        pts: dict[int, list[float]] = {s.index: [] for s in wanted}
        try:
            for packet in container.demux(wanted):
                if packet.size == 0:
                    continue
                t = _time_ms(packet.pts, packet.time_base)
                if t is None:
                    t = _time_ms(packet.dts, packet.time_base)
                pts[packet.stream.index].append(np.nan if t is None else t)
        except _av_error_types() as exc:
            raise InputError(self.path, f"corrupt or truncated video ({_short(exc)})") from None
        for idx, times in pts.items():
            expected = self._expected.get(idx, 0)
            name = "depth" if idx == self._depth_index else "colour"
            if not times:
                raise InputError(self.path, f"{name} track has no frames")
            if expected and len(times) < expected:
                raise InputError(self.path, f"truncated: {name} track has {len(times)} of {expected} frames")
        if self._container_ms is not None and not self._expected.get(self._color_index):
            last = max(float(np.nanmax(np.asarray(t, dtype=np.float64))) for t in pts.values())
            slack = 3 * 1000.0 / (self.fps or 15.0) + 50.0
            if last + slack < self._container_ms:
                raise InputError(
                    self.path, f"truncated: frames end at {last / 1000:.2f} s of {self._container_ms / 1000:.2f} s"
                )
        ct = np.asarray(pts[self._color_index], dtype=np.float64)
        if np.isnan(ct).any():
            ct = np.arange(len(ct)) * (1000.0 / (self.fps or 30.0))
        self._color_times = np.sort(ct)
        self.num_frames = len(ct)
        if self.fps <= 0 and len(ct) > 1:
            self.fps = 1000.0 / float(np.median(np.diff(self._color_times)))
        if self._depth_index is not None:
            dt = np.asarray(pts[self._depth_index], dtype=np.float64)
            if np.isnan(dt).any():
                raise InputError(self.path, "depth track has frames without timestamps")
            self._depth_times = np.sort(dt)
        else:
            self._depth_times = np.zeros(0)

    def color_timestamps(self) -> np.ndarray:
        return self._color_times.copy()

    def depth_timestamps(self) -> np.ndarray:
        return self._depth_times.copy()

    # -- calibration ----------------------------------------------------------------------------

    def _read_calibration(self, container: Any, ctags: dict[str, str]) -> None:
        name = ctags.get("K4A_CALIBRATION_FILE", "")
        for s in container.streams:
            if s.type != "attachment":
                continue
            fname = str(getattr(s, "name", "") or (s.metadata or {}).get("filename", ""))
            if (name and fname == name) or fname.lower().endswith(".json"):
                try:
                    calib = json.loads(bytes(s.data).decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    log.warning("%s: calibration attachment %s is not JSON (%s)", self.path, fname, exc)
                    continue
                intr = parse_k4a_calibration(calib, self.size, self.depth_size)
                if intr:
                    self.intrinsics = intr
                    return

    # -- frames ---------------------------------------------------------------------------------

    def _decode(self, stream_index: int, threads: int | None = None) -> Iterator[Any]:
        container = _open_container(self.path)
        try:
            stream = container.streams[stream_index]
            stream.thread_type = "AUTO"
            if threads:
                stream.codec_context.thread_count = int(threads)
            yield from container.decode(stream)
        except _av_error_types() as exc:
            raise InputError(self.path, f"decode error ({_short(exc)})") from None
        finally:
            container.close()

    def color_frames(self) -> Iterator[ColorFrame]:
        yield from self._color(planar=False)  # type: ignore[misc]

    def color_images(self, decode_threads: int | None = None) -> Iterator[ColorFrame | PlanarColorFrame]:
        """Frames left in 4:2:0 planes (zero-copy views of the decoder's buffers) when the track is
        ``yuv420p``/``yuvj420p``, the usual case; any other pixel format is converted to RGB."""
        return self._color(planar=True, threads=decode_threads)

    def _color(self, planar: bool, threads: int | None = None) -> Iterator[ColorFrame | PlanarColorFrame]:
        from gaitpose.io.planar import YuvImage

        n = 0
        period = 1000.0 / (self.fps or 30.0)
        for frame in self._decode(self._color_index, threads):
            t = _time_ms(frame.pts, frame.time_base)
            t_ms = n * period if t is None else t
            if planar and frame.format.name in PLANAR_420:
                yield PlanarColorFrame(index=n, t_ms=t_ms, image=YuvImage.from_av_frame(frame))
            else:
                yield ColorFrame(index=n, t_ms=t_ms, rgb=frame.to_ndarray(format="rgb24"))
            n += 1
        if n < self.num_frames:
            raise InputError(self.path, f"truncated: decoded {n} of {self.num_frames} colour frames")

    def depth_frames(self) -> Iterator[DepthFrame]:
        if self._depth_index is None:
            raise InputError(self.path, "this recording has no depth track")
        for n, frame in enumerate(self._decode(self._depth_index)):
            t = _time_ms(frame.pts, frame.time_base)
            if frame.format.name not in GRAY16:
                raise InputError(self.path, f"depth frame is {frame.format.name}; depth must be 16-bit")
            depth = frame.to_ndarray()
            if depth.dtype != np.uint16:
                depth = depth.astype(np.uint16)
            yield DepthFrame(index=n, t_ms=float(self._depth_times[n]) if t is None else t, depth=depth)


def parse_k4a_calibration(
    calib: dict[str, Any], color_size: tuple[int, int] | None, depth_size: tuple[int, int] | None
) -> dict[str, Any]:
    """Intrinsics/extrinsics from an Azure Kinect factory calibration JSON (``CalibrationInformation``).

    The file stores per-sensor intrinsics normalised by the full sensor size (cx, cy, fx, fy first of
    ``ModelParameters``) and each camera's ``Rt`` as the transform from the depth camera to that camera
    (metres). A recording's streams are crops/binnings of the sensor; the depth modes use the SDK's
    fixed crops, colour 16:9 modes a centred vertical crop of the 4:3 sensor. Lens distortion is not
    applied (pinhole only): fine for keypoint depth lookup, off by a few pixels at the image border.
    """
    info = calib.get("CalibrationInformation", calib)
    cams = info.get("Cameras") if isinstance(info, dict) else None
    if not isinstance(cams, list):
        return {}
    out: dict[str, Any] = {}
    rts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for cam in cams:
        purpose = str(cam.get("Purpose", ""))
        key = "depth" if "Depth" in purpose else "color" if "PhotoVideo" in purpose else None
        if key is None or key in out:
            continue
        size = depth_size if key == "depth" else color_size
        try:
            p = [float(x) for x in cam["Intrinsics"]["ModelParameters"][:4]]
            sw, sh = int(cam["SensorWidth"]), int(cam["SensorHeight"])
            rot = np.asarray(cam["Rt"]["Rotation"], dtype=np.float64).reshape(3, 3)
            tr = np.asarray(cam["Rt"]["Translation"], dtype=np.float64).reshape(3)
        except (KeyError, TypeError, ValueError):
            continue
        cx, cy, fx, fy = p[0] * sw, p[1] * sh, p[2] * sw, p[3] * sh
        if size is None:
            size = (sw, sh)
        w, h = size
        ox, oy, scale = _k4a_crop(key, (sw, sh), (w, h))
        out[key] = camera_dict(fx * scale, fy * scale, (cx - ox) * scale - 0.5, (cy - oy) * scale - 0.5, w, h)
        rts[key] = (rot, tr)
    if "color" in rts and "depth" in rts:
        (rc, tc), (rd, td) = rts["color"], rts["depth"]
        r = rc @ rd.T
        t = tc - r @ td
        out["depth_to_color"] = {"rotation": r.tolist(), "translation_m": t.tolist()}
    if out:
        out["depth_scale_mm"] = 1.0
    return out


def _k4a_crop(kind: str, sensor: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float]:
    """(x offset, y offset, scale) mapping sensor pixels to a stream's pixels."""
    sw, sh = sensor
    w, h = size
    if kind == "depth" and (sw, sh) == (1024, 1024):
        if (w, h) in ((640, 576), (320, 288)):  # NFOV unbinned / binned
            return 192.0, 180.0, w / 640.0
        return 0.0, 0.0, w / 1024.0  # WFOV unbinned / binned, passive IR
    # Colour: crop the sensor to the stream's aspect ratio (centred), then scale.
    if w / h > sw / sh:
        ch = sw * h / w
        return 0.0, (sh - ch) / 2.0, w / sw
    cw = sh * w / h
    return (sw - cw) / 2.0, 0.0, h / sh
