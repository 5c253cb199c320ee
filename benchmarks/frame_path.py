"""RGB frames vs planar (YUV 4:2:0) frames through analyze's frame loop, side by side in one run.

``python -m benchmarks.frame_path [VIDEO] [--reps 2]`` runs ``gaitpose.analyze.track_video`` (decode on
a thread, localiser + tracker + student) over the same video with the two frame sources,
interleaved, and prints ms per frame, CPU ms per frame and the ratio. Also reports how far the
keypoints of the two runs are apart, since the planar crops are not bit-identical to RGB crops.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from gaitpose.infer.blazepose import load_pose_estimator
from gaitpose.infer.localizer import OnnxLocalizer
from gaitpose.infer.track import track_video
from gaitpose.io import open_recording
from gaitpose.io.prefetch import prefetch
from gaitpose.registry import LOCALIZER_MODEL, POSE_MODEL, default_model_dir

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "sports2d_demo.mp4"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.frame_path", description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args(argv)
    models = default_model_dir()
    est = load_pose_estimator(models / POSE_MODEL, threads=1, spinning=False)
    loc = OnnxLocalizer(models / LOCALIZER_MODEL, threads=1, spinning=False)
    times: dict[str, list[tuple[float, float]]] = {"rgb": [], "planar": []}
    tracks = {}
    for _ in range(a.reps):
        for mode in ("rgb", "planar"):
            with open_recording(a.video) as rec:
                src = rec.color_frames() if mode == "rgb" else rec.color_images(decode_threads=1)
                t, c = time.perf_counter(), time.process_time()
                tr = track_video(prefetch(src, depth=4), est, loc)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
            times[mode].append((1000 * wall / tr.n_frames, 1000 * cpu / tr.n_frames))
            tracks[mode] = tr
    print(f"{Path(a.video).name}: {tracks['rgb'].n_frames} frames, {a.reps} runs each, interleaved")
    print("| frames | ms / frame (median) | CPU ms / frame | localiser calls | frames with pose |")
    print("|---|---|---|---|---|")
    med = {}
    for mode, vals in times.items():
        med[mode] = statistics.median(v[0] for v in vals)
        cpu = statistics.median(v[1] for v in vals)
        tr = tracks[mode]
        print(f"| {mode} | {med[mode]:.2f} | {cpu:.2f} | {tr.localizer_calls} | {int(tr.accepted.sum())} |")
    print(f"planar speed-up: {med['rgb'] / med['planar']:.2f}x")
    both = tracks["rgb"].accepted & tracks["planar"].accepted
    d = np.linalg.norm(tracks["rgb"].keypoints[both] - tracks["planar"].keypoints[both], axis=-1)
    if d.size:
        print(f"keypoint distance, rgb vs planar tracks: median {np.median(d):.2f} px, "
              f"p95 {np.percentile(d, 95):.1f} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
