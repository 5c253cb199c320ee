#!/usr/bin/env python
"""Convert MediaPipe's BlazePose full landmark model (and its person detector) to ONNX, once.

Why: the teacher's own network is the most accurate pose model that runs here offline, and it
generalises to people and rooms the project's student never saw. Converted to ONNX it runs in
the serving path's ONNX Runtime without mediapipe or TensorFlow. This script is run by a
maintainer, not at install or run time; its outputs are committed under ``models/general/``.

Needs an interpreter with ``tensorflow-cpu``, ``tf2onnx==1.17.*``, ``onnx`` and (for the parity
check) ``onnxruntime`` and ``opencv-python-headless``; keep that environment separate from the
project's venv (tensorflow pins protobuf and numpy differently)::

    python3 -m venv /tmp/convenv
    /tmp/convenv/bin/pip install "tensorflow-cpu==2.18.*" "tf2onnx==1.17.*" "onnx==1.22.*" onnxslim \\
        onnxruntime opencv-python-headless
    /tmp/convenv/bin/python scripts/convert_blazepose.py \\
        --mediapipe-dir .venv/lib/python3.11/site-packages/mediapipe

What it does, per model:

1. ``tf2onnx --tflite`` (opset 17).
2. Landmark model: keeps only the outputs the runtime uses, ``landmarks`` (1, 195) = 39 x (x, y, z,
   visibility, presence) in 256-px input coordinates, ``pose_flag`` (1, 1) and ``heatmap`` (1, 64,
   64, 39), which MediaPipe uses to refine the landmarks. The segmentation mask (1, 256, 256, 1)
   and world landmarks are dropped, so ORT never computes the mask's upsampling decoder (about a
   third of the network's time).
3. ``onnxslim`` when importable (constant folding, fewer nodes).
4. Embeds gaitpose metadata (key ``gaitpose``, a :class:`gaitpose.modelmeta.ModelMeta` JSON with
   ``kind="blazepose"``: input size, normalisation, output layout, source, licence), which is what
   ``gaitpose.infer.load_pose_estimator`` dispatches on.
5. Parity: runs the tflite model in TensorFlow Lite's interpreter and the ONNX model in ORT on the
   same 256x256 crops of real video frames and records the largest differences in meta.json.

The person detector (``pose_detection.tflite``) stores its weights as sparse fp16 tensors, which
tf2onnx 1.17 cannot read (``cannot reshape array of size 96 into shape (16,1,1,24)``); the
script densifies them first (the values are read back from TensorFlow Lite's own Densify op
outputs) and converts the result. The runtime does not need the detector: ``gaitpose analyze``
drives the landmark model with its own localiser and tracker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from blazepose_graph import densify_tflite, prune_and_rename, slim, store_fp16, tf2onnx_convert

REPO = Path(__file__).resolve().parents[1]
LICENCE = "Apache-2.0"
LICENCE_NOTE = (
    "MediaPipe (google-ai-edge/mediapipe) and the model files bundled in its PyPI wheel are released under the "
    "Apache License 2.0 (the wheel's LICENSE file and METADATA 'License: Apache 2.0'); the converted ONNX "
    "files are a derivative work under the same licence. Model card: 'BlazePose GHUM 3D' (Google), linked from "
    "the MediaPipe pose documentation."
)
LANDMARK_OUTPUTS = {"Identity": "landmarks", "Identity_1": "pose_flag", "Identity_3": "heatmap"}
DETECTOR_OUTPUTS = {"Identity": "regressors", "Identity_1": "classificators"}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_mediapipe_dir(given: str | None) -> Path:
    """The installed ``mediapipe`` package folder (it holds ``modules/pose_*/*.tflite``)."""
    candidates: list[Path] = []
    if given:
        candidates.append(Path(given))
    else:
        import importlib.util

        spec = importlib.util.find_spec("mediapipe")
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).parent)
        candidates += sorted(REPO.glob(".venv/lib/python3*/site-packages/mediapipe"))
    for c in candidates:
        if (c / "modules" / "pose_landmark" / "pose_landmark_full.tflite").exists():
            return c
    sys.exit(f"error: {given or 'mediapipe'}: no modules/pose_landmark/pose_landmark_full.tflite found; "
             "pass --mediapipe-dir <site-packages>/mediapipe (mediapipe 0.10.21 bundles it)")


def embed_meta(path: Path, meta: dict[str, Any]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in (("gaitpose", json.dumps(meta, sort_keys=True)), ("source", meta["extra"]["source"]),
                       ("license", LICENCE)):
        p = model.metadata_props.add()
        p.key, p.value = key, value
    model.producer_name = "gaitpose scripts/convert_blazepose.py"
    onnx.save(model, str(path))


def landmark_meta(tflite_sha: str, versions: dict[str, str]) -> dict[str, Any]:
    """ModelMeta-compatible JSON (see gaitpose.modelmeta); BlazePose specifics under ``extra``."""
    sys.path.insert(0, str(REPO))
    from gaitpose.skeleton import BLAZEPOSE33_TO_GAITPOSE, FLIP_PAIRS, KEYPOINTS

    return {
        "kind": "blazepose",
        "input_size": [256, 256],
        "in_channels": 3,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "stride": 1,
        "keypoint_names": list(KEYPOINTS),
        "flip_pairs": [list(p) for p in FLIP_PAIRS],
        "padding": 1.25,
        "version": "blazepose-full-0.10.21",
        "source_sha256": tflite_sha,
        "training": {},
        "extra": {
            "source": "mediapipe 0.10.21 wheel: mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
            "licence": LICENCE,
            "input_layout": "NHWC float32 RGB in [0, 1] (pixel / 255), 256x256, the ROI warped to the full input",
            "outputs": {
                "landmarks": "(1, 195) = 39 x (x, y, z, visibility, presence); x, y in input pixels; "
                             "visibility and presence are logits (apply sigmoid); 0-32 BlazePose-33, 33-34 ROI "
                             "auxiliary points (hip centre, body-scale point), 35-38 unused",
                "pose_flag": "(1, 1) pose presence probability (already sigmoid), MediaPipe's threshold 0.5",
                "heatmap": "(1, 64, 64, 39) logits; MediaPipe refines x, y by a 7x7 sigmoid-weighted mean "
                           "around each landmark when the window's max >= 0.5",
            },
            "blazepose33_to_gaitpose": list(BLAZEPOSE33_TO_GAITPOSE),
            "dropped_outputs": ["segmentation (1, 256, 256, 1)", "world landmarks (1, 117)"],
            "converter": versions,
        },
    }


def real_crops(n: int) -> np.ndarray:
    """(n, 256, 256, 3) float32 crops in [0, 1] from the committed test clips: people, grass, a lab."""
    import cv2

    crops = []
    for clip in ("sports2d_walk.mp4", "pose2sim_cam01.mp4"):
        cap = cv2.VideoCapture(str(REPO / "tests" / "data" / clip))
        frames = []
        ok, f = cap.read()
        while ok:
            frames.append(f)
            ok, f = cap.read()
        cap.release()
        for i in np.linspace(0, len(frames) - 1, max(1, n // 2)).astype(int):
            f = cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)
            h, w = f.shape[:2]
            s = min(h, w)
            x0 = (w - s) // 2 if w > h else 0
            y0 = (h - s) // 2 if h > w else 0
            crops.append(cv2.resize(f[y0:y0 + s, x0:x0 + s], (256, 256), interpolation=cv2.INTER_AREA))
    return np.stack(crops).astype(np.float32) / 255.0


def parity(tflite: Path, onnx_path: Path, crops: np.ndarray, out_map: dict[str, str]) -> dict[str, float]:
    """Largest |tflite - onnx| per output over the crops (landmark x, y in 256-px input pixels)."""
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    worst: dict[str, float] = {}
    for x in crops:
        interp.set_tensor(inp["index"], x[None])
        interp.invoke()
        got = dict(zip(names, sess.run(None, {in_name: x[None]}), strict=True))
        for tfl_name, onnx_name in out_map.items():
            ref = interp.get_tensor(outs[tfl_name])
            if onnx_name == "landmarks":
                a, b = ref.reshape(-1, 5), got[onnx_name].reshape(-1, 5)
                keys = {"landmarks_xy_px": np.abs(a[:, :2] - b[:, :2]).max(),
                        "landmarks_logit": np.abs(a[:, 3:] - b[:, 3:]).max()}
            else:
                keys = {onnx_name: np.abs(ref - got[onnx_name]).max()}
            for k, v in keys.items():
                worst[k] = max(worst.get(k, 0.0), float(v))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mediapipe-dir", help="installed mediapipe package folder (default: find it)")
    ap.add_argument("--out", default=str(REPO / "models" / "general"), help="output folder")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--parity-crops", type=int, default=16, help="real 256x256 crops for the tflite/ONNX check")
    ap.add_argument("--no-detector", action="store_true", help="convert the landmark model only")
    args = ap.parse_args()

    import onnx
    import tensorflow as tf
    import tf2onnx

    mp_dir = find_mediapipe_dir(args.mediapipe_dir)
    lm_tflite = mp_dir / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    det_tflite = mp_dir / "modules" / "pose_detection" / "pose_detection.tflite"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    versions = {"tf2onnx": tf2onnx.__version__, "tensorflow": tf.__version__, "onnx": onnx.__version__,
                "opset": str(args.opset)}
    try:
        import onnxslim

        versions["onnxslim"] = getattr(onnxslim, "__version__", "?")
    except ImportError:
        pass
    mp_version = next((p.name.split("-")[1] for p in mp_dir.parent.glob("mediapipe-*.dist-info")), "unknown")
    crops = real_crops(args.parity_crops)
    card: dict[str, Any] = {
        "name": "BlazePose full (MediaPipe) landmark model, converted to ONNX",
        "licence": LICENCE,
        "licence_note": LICENCE_NOTE,
        "mediapipe_version": mp_version,
        "converted_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python scripts/convert_blazepose.py --mediapipe-dir <site-packages>/mediapipe "
                   "(in a separate venv with tensorflow-cpu 2.18, tf2onnx 1.17, onnx 1.22, onnxslim)",
        "converter": versions,
        "files": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "landmark_raw.onnx"
        tf2onnx_convert(lm_tflite, raw, args.opset)
        lm_out = out / "blazepose_full.onnx"
        prune_and_rename(raw, lm_out, LANDMARK_OUTPUTS)
        slim_note = slim(lm_out)
        n_fp16 = store_fp16(lm_out)
        embed_meta(lm_out, landmark_meta(sha256(lm_tflite), versions))
        par = parity(lm_tflite, lm_out, crops, LANDMARK_OUTPUTS)
        card["files"]["blazepose_full.onnx"] = {
            "role": "landmark model (the general default pose model)",
            "source": f"mediapipe {mp_version}: mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
            "source_sha256": sha256(lm_tflite), "sha256": sha256(lm_out), "bytes": lm_out.stat().st_size,
            "outputs_kept": list(LANDMARK_OUTPUTS.values()),
            "outputs_dropped": ["segmentation (1, 256, 256, 1)", "world landmarks (1, 117)"],
            "slim": slim_note, "weights_stored_fp16_lossless": n_fp16,
            "parity_vs_tflite_max_abs": par, "parity_crops": len(crops),
        }
        print(f"{lm_out}: parity vs tflite on {len(crops)} real crops: {par}")
        if not args.no_detector:
            dense = Path(tmp) / "pose_detection_dense.tflite"
            n_dense = densify_tflite(det_tflite, dense)
            det_out = out / "blazepose_detector.onnx"
            det_raw = Path(tmp) / "detector_raw.onnx"
            tf2onnx_convert(dense, det_raw, args.opset)
            prune_and_rename(det_raw, det_out, DETECTOR_OUTPUTS)
            det_note = slim(det_out)
            det_fp16 = store_fp16(det_out)
            det_meta = {"kind": "blazepose_detector", "input_size": [224, 224], "in_channels": 3,
                        "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "stride": 1, "keypoint_names": [],
                        "flip_pairs": [], "version": "blazepose-detector-0.10.21",
                        "source_sha256": sha256(det_tflite),
                        "extra": {"source": "mediapipe 0.10.21 wheel: mediapipe/modules/pose_detection/"
                                            "pose_detection.tflite", "licence": LICENCE,
                                  "input_layout": "NHWC float32 RGB in [-1, 1], 224x224 letterboxed",
                                  "outputs": {"regressors": "(1, 2254, 12): box x, y, w, h then 4 keypoints x, y, "
                                                            "in 224-px units relative to SSD anchors",
                                              "classificators": "(1, 2254, 1) score logits"},
                                  "anchors": "SsdAnchors: strides 8, 16, 32, 32, 32; fixed size; offset 0.5 "
                                             "(MediaPipe pose_detection_cpu.pbtxt)",
                                  "converter": versions}}
            embed_meta(det_out, det_meta)
            det_crops = np.stack([c[16:240, 16:240] * 2.0 - 1.0 for c in crops]).astype(np.float32)
            dpar = parity(det_tflite, det_out, det_crops, DETECTOR_OUTPUTS)
            card["files"]["blazepose_detector.onnx"] = {
                "role": "person detector: gives the rotated ROI (hip centre, body-scale point) when the landmark "
                        "model acquires a person; gaitpose's own localiser and tracker give the box",
                "source": f"mediapipe {mp_version}: mediapipe/modules/pose_detection/pose_detection.tflite",
                "source_sha256": sha256(det_tflite), "sha256": sha256(det_out),
                "bytes": det_out.stat().st_size, "sparse_tensors_densified": n_dense, "slim": det_note,
                "weights_stored_fp16_lossless": det_fp16,
                "parity_vs_tflite_max_abs": dpar, "parity_crops": len(det_crops),
            }
            print(f"{det_out}: parity vs tflite: {dpar}")
    meta_path = out / "meta.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    # Figures measured later by tests/benchmarks (parity vs MediaPipe's graph, PCK, speed) are kept.
    for key in ("parity_vs_mediapipe", "figures"):
        if key in old:
            card[key] = old[key]
    meta_path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    print(f"wrote {meta_path}")


if __name__ == "__main__":
    main()
