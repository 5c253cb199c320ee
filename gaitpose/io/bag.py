"""Intel RealSense ``.bag`` (ROS1 bag) reader via ``rosbags`` (imported lazily: only this format needs it).

Streams are found by message type and topic: ``sensor_msgs/Image`` topics whose name contains
``Depth``/``Color`` (RealSense layout ``/device_0/sensor_0/Depth_0/image/data``), else by encoding
(``16UC1``/``mono16`` = depth). Intrinsics come from the matching ``camera_info`` topics and the
depth scale from ``.../option/Depth Units/value`` (metres per unit, usually 0.001). Frame times are
the message header stamps relative to the earliest first colour/depth stamp.

Depth->colour extrinsics are not read from the bag (RealSense stores them as per-stream tf topics
whose convention varies between recorder versions); a bag whose depth and colour differ in size is
therefore extracted only when it was recorded with aligned depth (same size) or registered later.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.io.base import ColorFrame, DepthFrame, Recording, camera_dict, require_file

log = logging.getLogger(__name__)

DEPTH_ENCODINGS = ("16uc1", "mono16", "z16")
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8uc3", "yuyv", "yuv422", "yuv422_yuy2", "uyvy")
IMAGE_TYPE = "sensor_msgs/msg/Image"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def _stamp_ns(msg: Any, bag_ns: int) -> int:
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return bag_ns
    sec = int(getattr(stamp, "sec", getattr(stamp, "secs", 0)))
    nsec = int(getattr(stamp, "nanosec", getattr(stamp, "nsecs", 0)))
    ns = sec * 1_000_000_000 + nsec
    return ns if ns > 0 else bag_ns


def _image_array(path: os.PathLike[str] | str, msg: Any, role: str) -> np.ndarray:
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    enc = str(msg.encoding).lower()
    data = np.asarray(msg.data, dtype=np.uint8)
    if data.size < h * step:
        raise InputError(path, f"{role} image message has {data.size} bytes, expected {h * step}")
    rows = data[: h * step].reshape(h, step)
    if role == "depth":
        if enc not in DEPTH_ENCODINGS:
            bits = "8-bit" if enc in ("mono8", "8uc1") else enc
            raise InputError(path, f"depth topic has {bits} images; depth must be 16-bit")
        dt = ">u2" if int(getattr(msg, "is_bigendian", 0)) else "<u2"
        return rows[:, : w * 2].copy().view(dt).astype(np.uint16)
    if enc in ("rgb8", "8uc3"):
        return rows[:, : w * 3].reshape(h, w, 3).copy()
    if enc == "bgr8":
        return rows[:, : w * 3].reshape(h, w, 3)[:, :, ::-1].copy()
    if enc == "rgba8":
        return rows[:, : w * 4].reshape(h, w, 4)[:, :, :3].copy()
    if enc == "bgra8":
        return rows[:, : w * 4].reshape(h, w, 4)[:, :, 2::-1].copy()
    if enc == "mono8":
        return np.repeat(rows[:, :w, None], 3, axis=2)
    if enc in ("yuyv", "yuv422", "yuv422_yuy2", "uyvy"):
        import cv2

        code = cv2.COLOR_YUV2RGB_UYVY if enc == "uyvy" else cv2.COLOR_YUV2RGB_YUYV
        return cv2.cvtColor(rows[:, : w * 2].reshape(h, w, 2).copy(), code)
    raise InputError(path, f"unsupported colour encoding {msg.encoding!r}")


class BagRecording(Recording):
    """RealSense / ROS1 bag with colour and (optionally) depth image topics."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(require_file(path))
        try:
            from rosbags.highlevel import AnyReader
        except ImportError as exc:  # pragma: no cover - optional dependency missing
            raise InputError(
                self.path, "reading .bag files needs the 'rosbags' package (pip install gaitpose[data])"
            ) from exc
        self._reader_cls = AnyReader
        try:
            self._scan()
        except InputError:
            raise
        except Exception as exc:  # rosbags raises its own ReaderError/… types for corrupt bags
            raise InputError(self.path, f"not a readable ROS bag ({exc.__class__.__name__}: {exc})") from None

    def _open(self) -> Any:
        reader = self._reader_cls([self.path])
        reader.open()
        return reader

    def _scan(self) -> None:
        reader = self._open()
        try:
            images = [c for c in reader.connections if c.msgtype == IMAGE_TYPE]
            color_topic = next((c.topic for c in images if "color" in c.topic.lower()), None)
            depth_topic = next((c.topic for c in images if "depth" in c.topic.lower()), None)
            if color_topic is None or depth_topic is None:
                # Fall back to the encoding of each topic's first message.
                for conn in images:
                    if conn.topic in (color_topic, depth_topic):
                        continue
                    for c, _, raw in reader.messages(connections=[conn]):
                        enc = str(reader.deserialize(raw, c.msgtype).encoding).lower()
                        if enc in DEPTH_ENCODINGS and depth_topic is None:
                            depth_topic = conn.topic
                        elif enc in COLOR_ENCODINGS and color_topic is None:
                            color_topic = conn.topic
                        break
            if color_topic is None:
                raise InputError(self.path, "bag has no colour image topic")
            self.color_topic, self.depth_topic = color_topic, depth_topic
            times: dict[str, list[int]] = {color_topic: []}
            sizes: dict[str, tuple[int, int]] = {}
            if depth_topic:
                times[depth_topic] = []
            conns = [c for c in images if c.topic in times]
            infos = [c for c in reader.connections if c.msgtype == INFO_TYPE]
            units = [c for c in reader.connections if "depth units" in c.topic.lower()]
            depth_units_m = 0.001
            cams: dict[str, dict[str, Any]] = {}
            for c, bag_ns, raw in reader.messages(connections=conns + infos + units):
                msg = reader.deserialize(raw, c.msgtype)
                if c.msgtype == IMAGE_TYPE:
                    role = "depth" if c.topic == depth_topic else "color"
                    if c.topic not in sizes:
                        _image_array(self.path, msg, role)  # validates encoding/bit depth up front
                        sizes[c.topic] = (int(msg.width), int(msg.height))
                    times[c.topic].append(_stamp_ns(msg, bag_ns))
                elif c.msgtype == INFO_TYPE:
                    key = "depth" if "depth" in c.topic.lower() else "color" if "color" in c.topic.lower() else None
                    k = np.asarray(getattr(msg, "K", getattr(msg, "k", np.zeros(9))), dtype=np.float64).reshape(-1)
                    if key and key not in cams and k.size == 9 and k[0] > 0:
                        cams[key] = camera_dict(k[0], k[4], k[2], k[5], int(msg.width), int(msg.height))
                elif hasattr(msg, "data"):
                    depth_units_m = float(msg.data)
        finally:
            reader.close()
        ct = np.asarray(times[color_topic], dtype=np.int64)
        if ct.size == 0:
            raise InputError(self.path, f"colour topic {color_topic} has no images")
        dtimes = np.asarray(times.get(depth_topic, []) if depth_topic else [], dtype=np.int64)
        if depth_topic and dtimes.size == 0:
            raise InputError(self.path, f"depth topic {depth_topic} has no images")
        for name, arr in (("colour", ct), ("depth", dtimes)):
            if arr.size > 1 and np.any(np.diff(arr) < 0):
                raise InputError(self.path, f"{name} timestamps go backwards")
        self._t0 = int(min(ct[0], dtimes[0]) if dtimes.size else ct[0])
        self._color_times = (ct - self._t0) / 1e6
        self._depth_times = (dtimes - self._t0) / 1e6
        self.size = sizes[color_topic]
        self.depth_size = sizes.get(depth_topic) if depth_topic else None
        self.num_frames = int(ct.size)
        self.fps = 1000.0 / float(np.median(np.diff(self._color_times))) if ct.size > 1 else 30.0
        self.depth_scale_mm = depth_units_m * 1000.0
        intr: dict[str, Any] = dict(cams)
        if cams and self.depth_size:
            intr["depth_scale_mm"] = 1.0  # frames are converted to millimetres on reading
        self.intrinsics = intr

    def color_timestamps(self) -> np.ndarray:
        return self._color_times.copy()

    def depth_timestamps(self) -> np.ndarray:
        return self._depth_times.copy()

    def _frames(self, topic: str) -> Iterator[tuple[int, Any]]:
        reader = self._open()
        try:
            conns = [c for c in reader.connections if c.topic == topic and c.msgtype == IMAGE_TYPE]
            for c, bag_ns, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, c.msgtype)
                yield _stamp_ns(msg, bag_ns), msg
        finally:
            reader.close()

    def color_frames(self) -> Iterator[ColorFrame]:
        for n, (ns, msg) in enumerate(self._frames(self.color_topic)):
            yield ColorFrame(index=n, t_ms=(ns - self._t0) / 1e6, rgb=_image_array(self.path, msg, "color"))

    def depth_frames(self) -> Iterator[DepthFrame]:
        if not self.depth_topic:
            raise InputError(self.path, "bag has no depth topic")
        for n, (ns, msg) in enumerate(self._frames(self.depth_topic)):
            raw = _image_array(self.path, msg, "depth")
            if abs(self.depth_scale_mm - 1.0) > 1e-9:
                raw = np.clip(np.rint(raw.astype(np.float64) * self.depth_scale_mm), 0, 65535).astype(np.uint16)
            yield DepthFrame(index=n, t_ms=(ns - self._t0) / 1e6, depth=raw)
