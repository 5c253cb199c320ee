"""Write real RGB-D recordings for tests: Kinect-style MKV (PyAV), RealSense-style ROS1 bag (rosbags),
colour video + 16-bit PNG depth folder + timestamps CSV.

No public depth sample is available offline, so the tests produce files in the real container
formats with known content and timestamps, then check the readers recover them exactly.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np


def color_pattern(i: int, w: int, h: int) -> np.ndarray:
    """A smooth RGB frame whose mean brightness encodes ``i`` (survives JPEG/H.264)."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = (20 + 9 * i) % 230
    r = np.full((h, w), base, np.float32)
    g = base + 20 * xx / max(w - 1, 1)
    b = base + 20 * yy / max(h - 1, 1)
    return np.clip(np.stack([r, g, b], axis=2), 0, 255).astype(np.uint8)


def depth_pattern(i: int, w: int, h: int) -> np.ndarray:
    """16-bit depth (mm) using the full range incl. values > 255 and zeros, unique per frame."""
    yy, xx = np.mgrid[0:h, 0:w]
    d = (500 + 37 * xx + 101 * yy + 1000 * i).astype(np.uint16)
    d[0, 0] = 0  # a hole
    d[-1, -1] = 65535 - i
    return d


def write_kinect_mkv(
    path: Path,
    color_ms: list[int],
    depth_ms: list[int],
    color_size: tuple[int, int] = (64, 48),
    depth_size: tuple[int, int] = (64, 48),
    calibration: dict[str, Any] | None = None,
    start_offset_ns: int = 123_000_000,
    depth_pix_fmt: str = "gray16le",
) -> list[np.ndarray]:
    """MJPEG colour track + FFV1 16-bit depth track with the given integer-ms timestamps.

    Returns the depth arrays written (to check an exact round trip).
    """
    out = av.open(str(path), "w", format="matroska")
    out.metadata["K4A_START_OFFSET_NS"] = str(start_offset_ns)
    if calibration is not None:
        out.metadata["K4A_CALIBRATION_FILE"] = "calibration.json"
        out.add_attachment("calibration.json", "application/octet-stream", json.dumps(calibration).encode())
    cs = out.add_stream("mjpeg", rate=30)
    cs.width, cs.height = color_size
    cs.pix_fmt = "yuvj420p"
    cs.time_base = cs.codec_context.time_base = Fraction(1, 1000)
    cs.metadata["title"] = "COLOR"
    cs.metadata["K4A_COLOR_TRACK"] = "1"
    ds = out.add_stream("ffv1", rate=15)
    ds.width, ds.height = depth_size
    ds.pix_fmt = depth_pix_fmt
    ds.time_base = ds.codec_context.time_base = Fraction(1, 1000)
    ds.metadata["title"] = "DEPTH"
    ds.metadata["K4A_DEPTH_TRACK"] = "1"
    events = [(t, 0, i) for i, t in enumerate(color_ms)] + [(t, 1, i) for i, t in enumerate(depth_ms)]
    depths = []
    for t, kind, i in sorted(events):
        if kind == 0:
            f = av.VideoFrame.from_ndarray(color_pattern(i, *color_size), format="rgb24")
            stream = cs
        else:
            d = depth_pattern(i, *depth_size)
            if depth_pix_fmt == "gray":
                d = (d // 256).astype(np.uint8)
            depths.append(d)
            f = av.VideoFrame.from_ndarray(d, format=depth_pix_fmt)
            stream = ds
        f.pts = t
        f.time_base = Fraction(1, 1000)
        for p in stream.encode(f):
            out.mux(p)
    for s in (cs, ds):
        for p in s.encode():
            out.mux(p)
    out.close()
    return depths


def write_color_video(
    path: Path, n: int, size: tuple[int, int] = (64, 48), fps: int = 30, codec: str = "mjpeg"
) -> None:
    out = av.open(str(path), "w")
    s = out.add_stream(codec, rate=fps)
    s.width, s.height = size
    s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    for i in range(n):
        f = av.VideoFrame.from_ndarray(color_pattern(i, *size), format="rgb24")
        for p in s.encode(f):
            out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()


def write_depth_pngs(folder: Path, n: int, size: tuple[int, int] = (64, 48), bits: int = 16) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(n):
        d = depth_pattern(i, *size)
        if bits == 8:
            d = (d // 256).astype(np.uint8)
        frames.append(d)
        assert cv2.imwrite(str(folder / f"depth_{i}.png"), d)
    return frames


def write_realsense_bag(
    path: Path,
    color_ms: list[int],
    depth_ms: list[int],
    color_size: tuple[int, int] = (64, 48),
    depth_size: tuple[int, int] = (64, 48),
    depth_units_m: float = 0.0001,
    depth_encoding: str = "16UC1",
    t0_ns: int = 1_700_000_000_000_000_000,
) -> list[np.ndarray]:
    """ROS1 bag in the RealSense layout; raw depth = mm / (depth_units_m * 1000). Returns depth in mm."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS1_NOETIC)
    T = ts.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Image, Info, Float32 = T["sensor_msgs/msg/Image"], T["sensor_msgs/msg/CameraInfo"], T["std_msgs/msg/Float32"]
    Roi = T["sensor_msgs/msg/RegionOfInterest"]
    depth_topic = "/device_0/sensor_0/Depth_0/image/data"
    color_topic = "/device_0/sensor_1/Color_0/image/data"
    depths_mm = []

    def header(seq: int, ns: int) -> Any:
        return Header(seq=seq, stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id="0")

    def info(w: int, h: int, f: float) -> Any:
        k = np.array([f, 0, w / 2 - 0.5, 0, f, h / 2 - 0.5, 0, 0, 1], dtype=np.float64)
        return Info(
            header=header(0, t0_ns),
            height=h,
            width=w,
            distortion_model="plumb_bob",
            D=np.zeros(5),
            K=k,
            R=np.eye(3).reshape(-1),
            P=np.zeros(12),
            binning_x=0,
            binning_y=0,
            roi=Roi(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
        )

    with Writer(path) as w:
        c_depth = w.add_connection(depth_topic, Image.__msgtype__, typestore=ts)
        c_color = w.add_connection(color_topic, Image.__msgtype__, typestore=ts)
        c_dinfo = w.add_connection("/device_0/sensor_0/Depth_0/info/camera_info", Info.__msgtype__, typestore=ts)
        c_cinfo = w.add_connection("/device_0/sensor_1/Color_0/info/camera_info", Info.__msgtype__, typestore=ts)
        c_units = w.add_connection("/device_0/sensor_0/option/Depth Units/value", Float32.__msgtype__, typestore=ts)
        w.write(c_units, t0_ns, ts.serialize_ros1(Float32(data=depth_units_m), Float32.__msgtype__))
        w.write(c_dinfo, t0_ns, ts.serialize_ros1(info(*depth_size, 50.0), Info.__msgtype__))
        w.write(c_cinfo, t0_ns, ts.serialize_ros1(info(*color_size, 60.0), Info.__msgtype__))
        events = [(t, 0, i) for i, t in enumerate(color_ms)] + [(t, 1, i) for i, t in enumerate(depth_ms)]
        for t, kind, i in sorted(events):
            ns = t0_ns + t * 1_000_000
            if kind == 0:
                cw, ch = color_size
                bgr = color_pattern(i, cw, ch)[:, :, ::-1].copy()
                msg = Image(
                    header=header(i, ns),
                    height=ch,
                    width=cw,
                    encoding="bgr8",
                    is_bigendian=0,
                    step=cw * 3,
                    data=bgr.reshape(-1),
                )
                w.write(c_color, ns, ts.serialize_ros1(msg, Image.__msgtype__))
            else:
                dw, dh = depth_size
                # representable at the test units (0.1 mm steps, so at most 6.5 m in uint16)
                mm = np.minimum(depth_pattern(i, dw, dh) // 10 * 10, 6500).astype(np.uint16)
                raw = (mm.astype(np.float64) / (depth_units_m * 1000.0)).round().astype("<u2")
                depths_mm.append(mm)
                if depth_encoding == "mono8":
                    data, step = (raw // 256).astype(np.uint8).reshape(-1), dw
                else:
                    data, step = raw.view(np.uint8).reshape(-1), dw * 2
                msg = Image(
                    header=header(i, ns),
                    height=dh,
                    width=dw,
                    encoding=depth_encoding,
                    is_bigendian=0,
                    step=step,
                    data=data,
                )
                w.write(c_depth, ns, ts.serialize_ros1(msg, Image.__msgtype__))
    return depths_mm


def k4a_calibration(
    depth_cam: dict[str, float], color_cam: dict[str, float], rotation: np.ndarray, translation_m: np.ndarray
) -> dict[str, Any]:
    """An Azure-Kinect-style ``CalibrationInformation`` whose sensors are exactly the stream sizes.

    Intrinsics are stored normalised (the factory file's convention: (c + 0.5) / size, f / size);
    the colour camera's Rt is depth -> colour, the depth camera's the identity.
    """

    def cam(c: dict[str, float], purpose: str, r: np.ndarray, t: np.ndarray) -> dict[str, Any]:
        w, h = c["width"], c["height"]
        params = [(c["cx"] + 0.5) / w, (c["cy"] + 0.5) / h, c["fx"] / w, c["fy"] / h] + [0.0] * 10
        return {
            "Intrinsics": {
                "ModelParameterCount": 14,
                "ModelParameters": params,
                "ModelType": "CALIBRATION_LensDistortionModelBrownConrady",
            },
            "Purpose": purpose,
            "Rt": {"Rotation": np.asarray(r).reshape(-1).tolist(), "Translation": np.asarray(t).tolist()},
            "SensorWidth": w,
            "SensorHeight": h,
        }

    return {
        "CalibrationInformation": {
            "Cameras": [
                cam(depth_cam, "CALIBRATION_CameraPurposeDepth", np.eye(3), np.zeros(3)),
                cam(color_cam, "CALIBRATION_CameraPurposePhotoVideo", rotation, translation_m),
            ]
        }
    }
