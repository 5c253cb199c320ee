"""Student precision where gait needs it (issue 16 point 4): network, input size, decoder, flip test.

``python -m benchmarks.student_precision --labels LABELS.json --model-dir models/student
[--videos V.mp4 ...] [--sizes 192x144 224x168 256x192] [--out result.json]``

Why: PCK@0.1 of the box (about 30 px on a walker) cannot see a 5 px heel error on a 15 px foot, but
the ankle angle can. So the shipped student's variants are compared by feet PCK@0.05 and the
sagittal hip/knee/ankle angle error against teacher labels, at the per-frame cost each adds to the
frame loop, side by side in one run:

- networks: the pruned default ``model.onnx``, ``model.unpruned.onnx`` and ``model.int8.onnx``;
- input size: the trained size and larger ones (the network is fully convolutional; the shipped
  graphs fix H and W, so a copy with free H and W is written to a temporary folder, weights untouched);
- decoding: ``gaitpose.codec.decode_heatmaps`` with DARK at several blur kernels (5 is the default),
  plain argmax, argmax + quarter offset and a local soft-argmax;
- flip test on/off (the heatmaps of the mirrored crop averaged in, as ``predict_crops`` does);
- a second, 2x zoomed look at the lower legs (ankles, heels, toes taken from it where its confidence
  is higher): outside the network's training distribution, measured to see whether it helps.

Crops come from the label boxes, exactly as ``gaitpose evaluate`` makes them (the default variant is
checked against ``gaitpose.eval.evaluate.predict_records`` at run time), and the metrics are
``gaitpose.eval.metrics``' own (``pck`` over ``FOOT_INDICES`` = ankles, heels, toes; ``angle_metrics``).
Figures are split into frames the student never saw (a held-out recording; the end of a clip cut
off by time, as the student's own split did) and frames it was trained on (that clip's beginning, a
side view where sagittal angles mean something, and the other recordings).

Cost: preprocessing, network and decoding per crop on one ONNX Runtime thread, medians of calls
interleaved across the variants in one loop (so machine load hits all alike), against decode-only time
per frame of the given videos (the loop is decode-bound while the pose work per frame stays well under
it). With ``--loop-videos`` the whole ``track_video`` loop is timed too for the flip test and any
decoder that beats the default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.codec import decode_heatmaps, flip_back
from gaitpose.errors import InputError
from gaitpose.eval.evaluate import predict_records, read_rgb
from gaitpose.eval.metrics import angle_metrics, pck
from gaitpose.geometry import affine_points, box_to_center_size, crop, invert_affine
from gaitpose.infer.pose import OnnxPoseEstimator
from gaitpose.labels import PoseRecord, load_records
from gaitpose.normalise import normalise_rgb
from gaitpose.skeleton import FOOT_INDICES, INDEX

NETWORKS = ("model.onnx", "model.unpruned.onnx", "model.int8.onnx")
DECODERS: dict[str, dict[str, Any]] = {
    "dark k5 (default)": {"method": "dark", "blur_kernel": 5},
    "dark k3": {"method": "dark", "blur_kernel": 3},
    "dark k7": {"method": "dark", "blur_kernel": 7},
    "dark k9": {"method": "dark", "blur_kernel": 9},
    "dark k11": {"method": "dark", "blur_kernel": 11},
    "argmax": {"method": "argmax"},
    "argmax + quarter": {"method": "quarter"},
    "soft-argmax 5x5": {"method": "soft", "window": 5},
    "soft-argmax 9x9": {"method": "soft", "window": 9},
}
DEFAULT_DECODER = "dark k5 (default)"
LOWER_LEG = tuple(INDEX[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
                                     "right_heel", "left_toe", "right_toe"))
FEET = tuple(FOOT_INDICES)


def free_hw_copy(src: Path, dst: Path) -> Path:
    """Copy of an ONNX pose graph whose input height/width (and output map size) are free.

    The student is fully convolutional, but the exporter baked each decoder upsampling's target
    height and width in as a constant (``Resize`` sizes = Concat(batch and channels from ``Shape``,
    constant H, W)). Each constant is replaced by the H, W of the lateral map the upsampled map is
    added to (its ``Shape``), which is what the torch module computes; the weights are not touched.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(os.fspath(src))
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    graph.initializer.extend([numpy_helper.from_array(np.array([2], np.int64), "free_hw_start"),
                              numpy_helper.from_array(np.array([4], np.int64), "free_hw_end")])
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {o: node for node in graph.node for o in node.output}
    nodes = list(graph.node)
    fixed = 0
    for resize in [n for n in nodes if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]]:
        concat = producer.get(resize.input[3])
        out, adds = resize.output[0], []
        for _ in range(3):  # through an INT8 graph's QuantizeLinear -> DequantizeLinear pair
            nxt = consumers.get(out, [])
            adds = [n for n in nxt if n.op_type == "Add"]
            if adds or len(nxt) != 1 or nxt[0].op_type not in ("QuantizeLinear", "DequantizeLinear"):
                break
            out = nxt[0].output[0]
        if concat is None or concat.op_type != "Concat" or len(adds) != 1 or concat.input[-1] not in inits:
            continue
        lateral = next(i for i in adds[0].input if i != out)
        tag = f"free_hw_{fixed}"
        new = [helper.make_node("Shape", [lateral], [f"{tag}_shape"], name=f"{tag}_Shape"),
               helper.make_node("Slice", [f"{tag}_shape", "free_hw_start", "free_hw_end"], [f"{tag}_hw"],
                                name=f"{tag}_Slice")]
        concat.input[len(concat.input) - 1] = f"{tag}_hw"
        at = nodes.index(concat)
        nodes[at:at] = new
        fixed += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for vi, names in ((model.graph.input[0], ("in_h", "in_w")), (model.graph.output[0], ("hm_h", "hm_w"))):
        dims = vi.type.tensor_type.shape.dim
        for d, name in zip(dims[2:4], names, strict=True):
            d.Clear()
            d.dim_param = name
    del model.graph.value_info[:]
    onnx.save(model, os.fspath(dst))
    return dst


def parse_size(text: str) -> tuple[int, int]:
    """'192x144' -> (192, 144): height x width, multiples of 4 (the heatmap stride)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not HEIGHTxWIDTH, e.g. 256x192") from None
    if h <= 0 or w <= 0 or h % 4 or w % 4:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be positive multiples of 4")
    return h, w


@dataclass
class Sized:
    """One network at one input size: a serving estimator whose metadata says that size."""

    network: str
    size: tuple[int, int]
    est: OnnxPoseEstimator


def load_sized(path: Path, size: tuple[int, int]) -> OnnxPoseEstimator:
    est = OnnxPoseEstimator(path, threads=1, spinning=False)
    est.meta = replace(est.meta, input_size=tuple(size))
    return est


def record_groups(records: Sequence[PoseRecord], t_ms: dict[int, float], held_rec: str,
                  held_clip: str, held_after_s: float) -> dict[str, np.ndarray]:
    """Indices of frames by what the student saw: the held-out recording, the held-out end of a clip
    (frames at or after ``held_after_s``), and the frames it was trained on, split into the clip's
    (a side view, where sagittal angles mean something) and the other recordings'."""
    rec = np.array([r.recording for r in records])
    t = np.array([t_ms.get(r.image_id, np.nan) for r in records])
    a = rec == held_rec
    b = (rec == held_clip) & (t >= held_after_s * 1000.0 - 1.0)
    c = (rec == held_clip) & ~b
    groups = {f"{held_rec} (never trained on)": np.flatnonzero(a),
              f"{held_clip} from {held_after_s:g} s (held out)": np.flatnonzero(b),
              f"{held_clip} before {held_after_s:g} s (seen in training)": np.flatnonzero(c),
              "other recordings (seen in training)": np.flatnonzero(~a & ~b & ~c)}
    return {k: v for k, v in groups.items() if len(v)}


def figures(pred: np.ndarray, records: Sequence[PoseRecord], idx: np.ndarray) -> dict[str, float]:
    """Feet PCK@0.05/0.1, PCK@0.1, sagittal angle MAE and implausible share on the frames ``idx``."""
    sub = [records[i] for i in idx]
    p = pred[idx]
    am = angle_metrics(p, sub)
    return {"feet_pck05": pck(p, sub, 0.05, indices=FEET), "feet_pck10": pck(p, sub, 0.1, indices=FEET),
            "pck10": pck(p, sub, 0.1),
            **{f"{j}_mae": am["angle_mae_deg"][j] for j in ("hip", "knee", "ankle", "all")},
            "implausible": am["implausible_angle_share"]["all"],
            "implausible_labels": am["implausible_angle_share_labels"]["all"]}


def run_batched(est: OnnxPoseEstimator, crops: np.ndarray, flip: bool, batch: int = 32) -> np.ndarray:
    """Heatmaps of all crops, flip-averaged like ``predict_crops`` when ``flip``."""
    out = []
    for a in range(0, len(crops), batch):
        x = crops[a : a + batch]
        hm = est.run_heatmaps(x)
        if flip:
            hm = 0.5 * (hm + flip_back(est.run_heatmaps(np.ascontiguousarray(x[..., ::-1]))))
        out.append(hm)
    return np.concatenate(out)


def to_image(coords: np.ndarray, inverses: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([affine_points(c, inv) for c, inv in zip(coords, inverses, strict=True)])


def feet_second_look(est: OnnxPoseEstimator, records: Sequence[PoseRecord], first: np.ndarray,
                     first_scores: np.ndarray, zoom: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A ``zoom``x crop centred on the predicted lower legs; ankles, heels and toes are taken from it
    where its heatmap peak is higher than the first look's. Returns (keypoints, share replaced)."""
    out = first.copy()
    replaced = np.zeros((len(records), len(FEET)), bool)
    meta = est.meta
    for n, r in enumerate(records):
        _, size = box_to_center_size(r.bbox, meta.aspect_ratio, meta.padding)
        centre = first[n, list(LOWER_LEG)].mean(axis=0)
        patch, m = crop(read_rgb(r.image_path), centre, np.asarray(size) / zoom, meta.input_wh)
        x = normalise_rgb(patch, meta)[None]
        c, s = decode_heatmaps(est.run_heatmaps(x), meta.stride)
        kp = affine_points(c[0], invert_affine(m))
        for j, k in enumerate(FEET):
            if s[0, k] > first_scores[n, k]:
                out[n, k] = kp[k]
                replaced[n, j] = True
    return out, replaced


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0 if samples else float("nan")


def time_variants(sized: list[Sized], image: np.ndarray, box: np.ndarray, reps: int) -> dict[str, Any]:
    """Per-crop medians (ms), interleaved: preprocessing per size, network per (network, size, flip),
    decoding per (decoder, size)."""
    jobs: dict[str, Callable[[], Any]] = {}
    crops: dict[tuple[int, int], np.ndarray] = {}
    for s in sized:
        x, _ = s.est.preprocess(image, box)
        crops[s.size] = x[None]
        jobs[f"pre|{s.size}"] = lambda s=s: s.est.preprocess(image, box)
        jobs[f"net|{s.network}|{s.size}|0"] = lambda s=s: s.est.run_heatmaps(crops[s.size])
        jobs[f"net|{s.network}|{s.size}|1"] = lambda s=s: s.est.run_heatmaps(
            np.concatenate([crops[s.size], crops[s.size][..., ::-1]]))
    for size in {s.size for s in sized}:
        est = next(s.est for s in sized if s.size == size)
        hm = est.run_heatmaps(crops[size])
        for name, kw in DECODERS.items():
            jobs[f"dec|{name}|{size}"] = lambda hm=hm, kw=kw, st=est.meta.stride: decode_heatmaps(hm, st, **kw)
        jobs[f"flipback|{size}"] = lambda hm=hm: 0.5 * (hm + flip_back(hm))
    for fn in jobs.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {k: [] for k in jobs}
    order = list(jobs)
    rng = np.random.default_rng(0)
    for _ in range(reps):
        rng.shuffle(order)
        for k in order:
            t = time.perf_counter()
            jobs[k]()
            samples[k].append(time.perf_counter() - t)
    return {k: _median_ms(v) for k, v in samples.items()}


def decode_only_ms(videos: Sequence[Path]) -> dict[str, float]:
    """Decode-only ms per frame through the reader and decoder threads ``gaitpose analyze`` uses."""
    from benchmarks.teacher_vs_analyze import time_decode

    return {v.name: round(time_decode(v).ms_per_frame, 3) for v in videos}


class DecoderEstimator(OnnxPoseEstimator):
    """The serving estimator with another heatmap decoder (for timing the whole frame loop)."""

    def __init__(self, model_path: Path, decode_kwargs: dict[str, Any]) -> None:
        super().__init__(model_path, threads=1, spinning=False)
        self.decode_kwargs = dict(decode_kwargs)

    def predict_crops(self, batch: np.ndarray, flip_test: bool = False) -> tuple[np.ndarray, np.ndarray]:
        if flip_test:
            n = len(batch)
            both = self.run_heatmaps(np.concatenate([batch, batch[..., ::-1]]))
            heatmaps = 0.5 * (both[:n] + flip_back(both[n:]))
        else:
            heatmaps = self.run_heatmaps(batch)
        return decode_heatmaps(heatmaps, self.meta.stride, **self.decode_kwargs)


def loop_ms(videos: Sequence[Path], model: Path, variants: dict[str, tuple[dict[str, Any], bool]],
            reps: int) -> dict[str, dict[str, float]]:
    """Median ms per frame of decoding alone and of ``track_video`` per variant (decoder kwargs, flip),
    interleaved per repetition, one ORT thread, the decoder on its own thread as in ``analyze``."""
    from gaitpose.infer.localizer import OnnxLocalizer
    from gaitpose.infer.track import default_decode_threads, track_video
    from gaitpose.io import open_recording
    from gaitpose.io.prefetch import prefetch
    from gaitpose.registry import LOCALIZER_MODEL, default_model_dir

    loc = OnnxLocalizer(default_model_dir() / LOCALIZER_MODEL, threads=1, spinning=False)
    ests = {}
    for name, (kw, _) in variants.items():
        ests[name] = DecoderEstimator(model, kw)

    def decode(v: Path) -> float:
        with open_recording(v) as rec:
            t, n = time.perf_counter(), 0
            for _ in prefetch(rec.color_images(default_decode_threads()), depth=4):
                n += 1
            return (time.perf_counter() - t) / max(n, 1)

    def loop(v: Path, name: str) -> float:
        with open_recording(v) as rec:
            frames = prefetch(rec.color_images(default_decode_threads()), depth=4)
            t = time.perf_counter()
            track = track_video(frames, ests[name], loc, total_frames=rec.num_frames, flip_test=variants[name][1])
            return (time.perf_counter() - t) / max(track.n_frames, 1)

    out: dict[str, dict[str, float]] = {}
    for v in videos:
        s: dict[str, list[float]] = {"decode": [], **{k: [] for k in variants}}
        for _ in range(reps):
            s["decode"].append(decode(v))
            for name in variants:
                s[name].append(loop(v, name))
        out[v.name] = {k: round(_median_ms(x), 3) for k, x in s.items()}
    return out


def _f(v: float, pct: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.3f}" if v < 1.5 else f"{v:.1f}"


def markdown(rows: list[dict[str, Any]], groups: list[str], decode_ms: float | None) -> str:
    head = ["variant", "ms/crop (pre+net+dec)"]
    if decode_ms:
        head.append("share of decode time")
    for g in groups:
        head += [f"{g}: feet PCK@0.05", "feet PCK@0.1", "hip / knee / ankle (all) MAE deg", "implausible"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"], f"{r['ms']:.2f}" if np.isfinite(r["ms"]) else "-"]
        if decode_ms:
            cells.append(f"{r['ms'] / decode_ms:.2f}" if np.isfinite(r["ms"]) else "-")
        for g in groups:
            f = r["groups"][g]
            cells += [_f(f["feet_pck05"]), _f(f["feet_pck10"]),
                      f"{_f(f['hip_mae'])} / {_f(f['knee_mae'])} / {_f(f['ankle_mae'])} ({_f(f['all_mae'])})",
                      _f(f["implausible"], True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, required=True, help="COCO label file (gaitpose-data label)")
    ap.add_argument("--model-dir", type=Path, required=True, help="folder with the student's ONNX files")
    ap.add_argument("--sizes", type=parse_size, nargs="+", default=None,
                    help="input sizes HxW to try (default: the trained size, 224x168 and 256x192)")
    ap.add_argument("--videos", type=Path, nargs="*", default=[], help="videos for decode-only time per frame")
    ap.add_argument("--loop-videos", type=Path, nargs="*", default=[],
                    help="videos to time the whole frame loop on for the flip test and a winning decoder")
    ap.add_argument("--held-out-recording", default="pose2sim_single_cam04")
    ap.add_argument("--held-out-clip", default="sports2d_demo")
    ap.add_argument("--held-out-after", type=float, default=5.33, help="seconds; the clip's later frames")
    ap.add_argument("--loop-reps", type=int, default=5, help="repetitions of each whole-loop timing")
    ap.add_argument("--every", type=int, default=1, help="use every n-th labelled person (quick runs)")
    ap.add_argument("--reps", type=int, default=200, help="timing repetitions per variant")
    ap.add_argument("--no-feet-look", action="store_true", help="skip the zoomed second look at the feet")
    ap.add_argument("--out", type=Path, default=None, help="write every figure here as JSON")
    args = ap.parse_args(argv)

    for p in (args.labels, *args.videos, *args.loop_videos):
        if not p.is_file():
            raise InputError(p, "file does not exist")
    paths = {n: args.model_dir / n for n in NETWORKS}
    for p in paths.values():
        if not p.is_file():
            raise InputError(p, "student model file does not exist")
    records = load_records(args.labels)[:: max(1, args.every)]
    if not records:
        raise InputError(args.labels, "label file has no labelled people")
    raw = json.loads(args.labels.read_text(encoding="utf-8"))
    t_ms = {int(im["id"]): float(im.get("t_ms", np.nan)) for im in raw.get("images", [])}
    groups = record_groups(records, t_ms, args.held_out_recording, args.held_out_clip, args.held_out_after)
    gnames = list(groups)

    tmp = Path(tempfile.mkdtemp(prefix="student_precision_"))
    free = {n: free_hw_copy(p, tmp / n) for n, p in paths.items()}
    trained = tuple(OnnxPoseEstimator(paths["model.onnx"], threads=1).meta.input_size)
    sizes = list(dict.fromkeys([trained, *(args.sizes or [(224, 168), (256, 192)])]))
    sized = [Sized(n, s, load_sized(free[n], s)) for n in NETWORKS for s in sizes]

    # One pass over the images: crops (as serving preprocesses them) for every size.
    crops = {s: [] for s in sizes}
    invs = {s: [] for s in sizes}
    by_size = {s.size: s.est for s in sized}
    for r in records:
        img = read_rgb(r.image_path)
        for s in sizes:
            x, m = by_size[s].preprocess(img, r.bbox)
            crops[s].append(x)
            invs[s].append(invert_affine(m))
    crops = {s: np.stack(v) for s, v in crops.items()}

    preds: dict[tuple[str, tuple[int, int], bool, str], np.ndarray] = {}
    scores: dict[tuple[str, tuple[int, int], bool], np.ndarray] = {}
    for sz in sized:
        for flip in (False, True):
            hm = run_batched(sz.est, crops[sz.size], flip)
            for dname, kw in DECODERS.items():
                c, sc = decode_heatmaps(hm, sz.est.meta.stride, **kw)
                preds[(sz.network, sz.size, flip, dname)] = to_image(c, invs[sz.size])
                if dname == DEFAULT_DECODER:
                    scores[(sz.network, sz.size, flip)] = sc
    del crops

    # The default variant must be what `gaitpose evaluate` computes.
    ref = predict_records(OnnxPoseEstimator(paths["model.onnx"], threads=1), records, 32, flip_test=True)
    for flip, key in ((False, "plain"), (True, "flip")):
        got = preds[("model.onnx", trained, flip, DEFAULT_DECODER)]
        err = float(np.abs(got - ref[key][0]).max())
        if err > 1e-2:
            raise RuntimeError(f"benchmark crops differ from gaitpose evaluate's by {err:.3f} px ({key})")

    image0 = read_rgb(records[0].image_path)
    timing = time_variants(sized, image0, records[0].bbox, args.reps)
    decode_ms = decode_only_ms(args.videos) if args.videos else {}
    dec_ref = statistics.median(decode_ms.values()) if decode_ms else None

    def cost(net: str, size: tuple[int, int], flip: bool, dname: str, extra_crops: int = 0) -> float:
        base = timing[f"pre|{size}"] + timing[f"net|{net}|{size}|{int(flip)}"] + timing[f"dec|{dname}|{size}"]
        if flip:
            base += timing[f"flipback|{size}"]
        return base + extra_crops * (timing[f"pre|{size}"] + timing[f"net|{net}|{size}|0"]
                                     + timing[f"dec|{DEFAULT_DECODER}|{size}"])

    def row(label: str, pred: np.ndarray, ms: float, **extra: Any) -> dict[str, Any]:
        return {"variant": label, "ms": ms, **extra,
                "groups": {g: figures(pred, records, idx) for g, idx in groups.items()}}

    def sz(s: tuple[int, int]) -> str:
        return f"{s[0]}x{s[1]}"

    sections: dict[str, list[dict[str, Any]]] = {"decoders": [], "networks": [], "feet": []}
    for flip in (False, True):
        for dname in DECODERS:
            sections["decoders"].append(row(f"model.onnx {sz(trained)} {'flip' if flip else 'no flip'}, {dname}",
                                            preds[("model.onnx", trained, flip, dname)],
                                            cost("model.onnx", trained, flip, dname)))
    for net in NETWORKS:
        for s in sizes:
            for flip in (False, True):
                sections["networks"].append(row(f"{net} {sz(s)} {'flip' if flip else 'no flip'}, dark k5",
                                                preds[(net, s, flip, DEFAULT_DECODER)],
                                                cost(net, s, flip, DEFAULT_DECODER)))
    if not args.no_feet_look:
        est = load_sized(free["model.onnx"], trained)
        for flip in (False, True):
            first = preds[("model.onnx", trained, flip, DEFAULT_DECODER)]
            kp, replaced = feet_second_look(est, records, first, scores[("model.onnx", trained, flip)])
            sections["feet"].append(row(f"model.onnx {sz(trained)} {'flip' if flip else 'no flip'}, dark k5 "
                                        f"+ 2x look at the feet ({100 * replaced.mean():.0f} % of feet taken from it)",
                                        kp, cost("model.onnx", trained, flip, DEFAULT_DECODER, extra_crops=1)))

    loops = {}
    if args.loop_videos:
        def held_out_feet(r: dict[str, Any]) -> float:
            return float(np.mean([r["groups"][g]["feet_pck05"] for g in gnames[:2]]))

        base = held_out_feet(sections["decoders"][0])
        better = [r for r in sections["decoders"][1 : len(DECODERS)] if held_out_feet(r) > base]
        variants: dict[str, tuple[dict[str, Any], bool]] = {"dark k5 (default)": ({}, False),
                                                           "dark k5 + flip test": ({}, True)}
        if better:
            best = max(better, key=held_out_feet)["variant"].split(", ", 1)[1]
            variants[best] = (DECODERS[best], False)
        loops = loop_ms(args.loop_videos, paths["model.onnx"], variants, reps=args.loop_reps)

    text = [f"# Student precision on {args.labels.name} ({len(records)} labelled people; groups: "
            + ", ".join(f"{g} {len(i)}" for g, i in groups.items()) + ")", ""]
    labels_bad = sections["decoders"][0]["groups"]
    text.append("Sagittal angles of the labels themselves outside the physiological ranges: "
                + ", ".join(f"{g} {100 * labels_bad[g]['implausible_labels']:.1f} %" for g in gnames)
                + ". 'ms/crop' = crop + normalise from a decoded RGB frame, network, decoding; one ORT thread.")
    if decode_ms:
        text.append("decode-only ms per frame: " + ", ".join(f"{k} {v:.2f}" for k, v in decode_ms.items())
                    + f" (median {dec_ref:.2f}, the 'share of decode time' reference)")
    titles = {"decoders": "Decoders (the shipped default network at its trained size)",
              "networks": "Networks x input size x flip test (default decoder)",
              "feet": "A second, 2x zoomed look at the lower legs"}
    for key, rows in sections.items():
        if rows:
            text += ["", f"## {titles[key]}", "", markdown(rows, gnames, dec_ref)]
    if loops:
        text += ["", "## Whole frame loop (track_video, 1 ORT thread), ms per frame (share of decode-only speed)", "",
                 ]
        names = [k for k in next(iter(loops.values())) if k != "decode"]
        text.append("| video | decode alone | " + " | ".join(names) + " |")
        text.append("|" + "---|" * (2 + len(names)))
        for v, d in loops.items():
            text.append(f"| {v} | {d['decode']:.2f} | "
                        + " | ".join(f"{d[n]:.2f} ({d['decode'] / d[n]:.2f})" for n in names) + " |")
    print("\n".join(text), flush=True)
    result = {"labels": str(args.labels), "groups": {g: len(i) for g, i in groups.items()},
              "trained_size": list(trained), "sizes": [list(s) for s in sizes], "timing_ms": timing,
              "decode_only_ms": decode_ms, "loops_ms": loops, "sections": sections}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
