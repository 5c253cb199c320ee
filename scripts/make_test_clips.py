"""Trim the small test clips committed under tests/data from ../shared/data/videos.

Run once by a maintainer: python scripts/make_test_clips.py ../shared/data/videos tests/data [NAME ...]
(with names, only those clips are re-made, so the others keep their bytes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2

CLIPS = {
    # name: (source, first frame, last frame (exclusive), output width, step)
    "sports2d_walk.mp4": ("sports2d_demo.mp4", 30, 210, 640, 1),
    "pose2sim_cam01.mp4": ("pose2sim_single_cam01.mp4", 0, 100, 270, 2),
    # two people: the man on the force plates and a woman standing behind him (subject-tracking tests)
    "pose2sim_cam02_two_people.mp4": ("pose2sim_single_cam02.mp4", 0, 100, 360, 2),
    # from behind: nobody travels, and HOG's biggest box is a static false positive on the wall
    "pose2sim_cam03_back.mp4": ("pose2sim_single_cam03.mp4", 0, 100, 270, 2),
}


def trim(src: Path, dst: Path, start: int, stop: int, width: int, step: int) -> None:
    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        fps = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(inp.decode(stream)) if start <= i < stop]
    frames = frames[::step]
    h, w = frames[0].shape[:2]
    height = round(h * width / w / 2) * 2
    with av.open(str(dst), "w") as out:
        vs = out.add_stream("libx264", rate=round(float(fps) / step))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"crf": "26", "preset": "slow"}
        for img in frames:
            small = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    print(dst, len(frames), "frames", dst.stat().st_size // 1024, "KB")


def main() -> None:
    src_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set(sys.argv[3:]) or set(CLIPS)
    unknown = wanted - set(CLIPS)
    if unknown:
        raise SystemExit(f"unknown clip(s) {sorted(unknown)}; known: {sorted(CLIPS)}")
    for name, (src, a, b, width, step) in CLIPS.items():
        if name not in wanted:
            continue
        trim(src_dir / src, out_dir / name, a, b, width, step)


if __name__ == "__main__":
    main()
