"""How the domain check (``gaitpose.infer.domain``) judges a pose model's videos: in domain, rotated, upside down.

For each reference video the model is checked against a reference made *without* that video
(leave one out) and against the pooled one; then every extra video, and each reference video
turned 90 degrees and upside down (re-encoded with PyAV), against the pooled reference.

    python -m benchmarks.domain_check ../shared/data/videos/*.mp4 --extra tests/data/*.mp4 \
        [--model models/student/model.onnx] [--max-frames 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def transformed(src: Path, dst: Path, mode: str, max_frames: int | None) -> Path:
    """``src`` rotated 90 degrees clockwise (``rot90``) or 180 (``flip``), as a new mp4."""
    import av
    import cv2

    code = cv2.ROTATE_180 if mode == "flip" else cv2.ROTATE_90_CLOCKWISE
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        st = None
        for i, frame in enumerate(inp.decode(vs)):
            if max_frames and i >= max_frames:
                break
            img = cv2.rotate(frame.to_ndarray(format="rgb24"), code)
            if st is None:
                st = out.add_stream("libx264", rate=round(float(vs.average_rate or 30)))
                st.width, st.height, st.pix_fmt = img.shape[1] // 2 * 2, img.shape[0] // 2 * 2, "yuv420p"
            img = np.ascontiguousarray(img[: st.height, : st.width])
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        if st is not None:
            for pkt in st.encode():
                out.mux(pkt)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.domain_check", description=__doc__.splitlines()[0])
    ap.add_argument("videos", type=Path, nargs="+", help="the model's reference (validation) recordings")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="other videos to judge")
    ap.add_argument("--model", type=Path, default=None, help="pose model (default: the shipped student)")
    ap.add_argument("--max-frames", type=int, default=None)
    a = ap.parse_args(argv)
    from gaitpose.infer.blazepose import load_pose_estimator
    from gaitpose.infer.domain import Reference, _run_track, check_domain, domain_stats, reference_from_tracks
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.registry import LOCALIZER_MODEL, STUDENT_POSE_MODEL, default_model_dir

    model = a.model or default_model_dir() / STUDENT_POSE_MODEL
    est = load_pose_estimator(model, threads=1, spinning=False)
    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    tracks = {v: _run_track(v, est, loc, 1, a.max_frames) for v in a.videos}
    pooled = reference_from_tracks(list(tracks.values()), [v.stem for v in tracks], model)
    print(f"{model.name}: pooled reference " + ", ".join(
        f"{k} {v:.4g}" for k, v in pooled["stats"].items() if isinstance(v, float)))

    def show(name: str, stats: dict, ref: dict) -> None:
        c = check_domain(stats, Reference(ref["stats"]), model.name)
        print(f"  {name:40s} {c.verdict:14s} {'; '.join(c.reasons)}", flush=True)

    for v, tr in tracks.items():
        others = [u for u in tracks if u != v]
        if others:
            show(f"{v.stem} (leave one out)", domain_stats(tr),
                 reference_from_tracks([tracks[u] for u in others], [u.stem for u in others], model))
        show(f"{v.stem} (pooled)", domain_stats(tr), pooled)
    with tempfile.TemporaryDirectory() as tmp:
        extra = list(a.extra)
        for v in a.videos:
            for mode in ("rot90", "flip"):
                extra.append(transformed(v, Path(tmp) / f"{v.stem}_{mode}.mp4", mode, a.max_frames))
        for v in extra:
            show(v.stem, domain_stats(_run_track(v, est, loc, 1, a.max_frames)), pooled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
