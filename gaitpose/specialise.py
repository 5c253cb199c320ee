"""``gaitpose specialise``: a clinic's recordings -> its own fast pose model, in one command.

The stages are the project's own (each a library call, not a subprocess):

    extract -> label -> split -> train -> prune -> export (+ parity) -> INT8 verdict -> evaluate -> card + report

Why it is built this way:

* one wall-time budget (``minutes``) for the whole run. Extraction and labelling cost what the
  recordings cost (labelling is thinned with a stride planned from the frame count, once per
  configuration, so a re-run labels the same frames); then one training epoch is timed and the
  training epochs and pruning epochs/steps are chosen to fit what is left, minus a reserve for
  export, INT8 and evaluation;
* every stage writes a done-marker ``work/state/<stage>.json`` holding the hash of its
  configuration and of every upstream stage, so re-running the same command skips finished stages
  (extraction and labelling also resume inside a stage, training resumes from ``last.pt``); a
  changed option redoes the stage it changes and everything after it;
* bad input (a missing or unreadable recording, a subjects CSV that does not parse, a bad ``--roi``,
  fewer than two independent recordings to hold one out) is refused in one line before any long work;
* training starts from the shipped pretrained student when there is one (``--init``; by default
  ``models/student/pretrained.pt``, else the shipped default student ``model.onnx``) and
  distils from that starting network beside the clinic's pseudo-labels, so the clinic's few minutes
  of video refine a network that already knows people instead of teaching one from random weights;
* the output folder holds ``model.onnx`` (with its metadata embedded, so ``gaitpose analyze
  --model OUT/model.onnx`` needs nothing else), ``meta.json``, ``MODEL_CARD.md`` and ``report.html``
  with figures against the general default; the intermediate files stay under ``work/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaitpose.errors import InputError
from gaitpose.fsutil import file_sha256, write_bytes_atomic, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

STATE_VERSION = 1
STAGES = ("extract", "label", "split", "train", "prune", "export", "int8", "evaluate", "report")
OUT_MARKER = ".gaitpose-specialise"
DEFAULT_INPUT_SIZE = (192, 144)
# Module-name prefixes the pruner never cuts (as in the shipped recipe: cutting the stem, first stage,
# decoder and residual-stream projections cost 20-40 PCK points).
PROTECT = ("stem", "stages.0", "laterals", "refine", "stages.*.block.2.*")
MAX_EPOCHS = 300
PROBE_RECORDS = 64  # crops in the one-epoch timing run that plans the training epochs
SPEEDUP_TARGET = 5.0  # the product target: per crop at least 5x faster than the general default
MAX_PRUNE_LOSS = 0.01  # PCK@0.1 the pruned network may lose against its parent (issue 3's rule)


@dataclass
class SpecialiseOptions:
    """Everything ``gaitpose specialise`` takes; see the command's help for each option."""

    recordings: list[Path]
    out: Path
    minutes: float = 20.0
    device: str = "auto"
    subjects_csv: Path | None = None
    roi: str | None = None
    held_out: list[Path] = field(default_factory=list)  # evaluation only, never trained on
    init: Path | None = None  # None: the shipped pretrained student when present
    no_init: bool = False  # train from random weights even when a pretrained student exists
    input_size: tuple[int, int] | None = None  # default: the init's, else 192x144
    epochs: int | None = None  # fixed training epochs instead of the budget's choice
    prune_epochs: int | None = None  # fixed pruning epoch budget instead of the budget's choice
    target_macs: float | None = None  # fixed pruning target (1.0: no pruning)
    crop_budget_ms: float | None = None  # per-crop latency budget (1 thread) the pruning aims at
    general_model: Path | None = None  # the model compared against (default: the shipped default)
    stride: int = 1  # extraction stride (every N-th frame)
    max_frames: int | None = None  # per recording
    max_size: int | None = None  # longest side of the extracted frames
    label_stride: int | None = None  # None: planned from the budget
    # Weight of the starting network's heatmaps beside the labels. 0.7: with a few minutes of one clinic's
    # video, the pull toward the general starting network keeps what the clinic's recordings do not show
    # (on the lab videos, fine-tuning on two front/side views at 0.3 lost 22 PCK points on the view from
    # behind through left/right swaps; 0.7 kept the starting network's level). Chosen after those two runs.
    distill_weight: float = 0.7
    workers: int = 2  # recordings labelled in parallel
    threads: int = 2  # torch / ONNX Runtime threads
    seed: int = 0
    latency_runs: int = 100

    def validate(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"--minutes must be positive, got {self.minutes}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"--distill-weight must be in [0, 1], got {self.distill_weight}")
        if self.target_macs is not None and not 0.05 <= self.target_macs <= 1.0:
            raise ValueError(f"--target-macs must be in [0.05, 1], got {self.target_macs}")
        for name in ("stride", "workers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("--epochs must be at least 1")
        if self.init is not None and self.no_init:
            raise ValueError("--init and --no-init exclude each other")


# --------------------------------------------------------------------------------------------- #
# Small helpers: hashing, markers, progress
# --------------------------------------------------------------------------------------------- #


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _file_id(path: Path) -> dict[str, Any]:
    """What identifies an input file cheaply (a changed recording has a new size or time)."""
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


class _State:
    """Stage done-markers under ``work/state``: ``{"hash", "result", "seconds"}`` per stage."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "state"
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        path = self.dir / f"{stage}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if data.get("hash") != key or data.get("version") != STATE_VERSION:
            return None
        return data

    def mark(self, stage: str, key: str, result: dict[str, Any], seconds: float) -> None:
        write_json_atomic(self.dir / f"{stage}.json",
                          {"version": STATE_VERSION, "hash": key, "result": result, "seconds": round(seconds, 2)},
                          indent=1)


def _labels_digest(path: Path) -> str:
    """Hash of a label file's images and annotations: what training sees. The file's ``info`` (date,
    timings) changes on every write and must not make a resumed run redo its later stages."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return _hash(data.get("images"), data.get("annotations"))


class _SegmentEnd(Exception):
    """Raised between two optimizer steps to end a training segment at an epoch boundary."""


class _Clock:
    """The run's wall-time budget."""

    def __init__(self, minutes: float) -> None:
        self.t0 = time.perf_counter()
        self.budget_s = float(minutes) * 60.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def left(self) -> float:
        return self.budget_s - self.elapsed


# --------------------------------------------------------------------------------------------- #
# Pre-flight: every check that can fail on bad input, before any long work
# --------------------------------------------------------------------------------------------- #


@dataclass
class _Inputs:
    paths: list[Path]  # training candidates, then held-out recordings
    ids: list[str]
    subjects: dict[str, str]  # recording id -> subject
    held_out_ids: list[str]
    frames: dict[str, int]  # recording id -> frames in the file (0 when unknown)
    init: Path | None


def default_init() -> Path | None:
    """The pretrained student the project ships, if any: ``pretrained.pt``, else the shipped default
    model itself (``model.onnx``, FP32: it is the project's best-tested student and already fast enough, so
    the whole budget goes to adapting it), else the unpruned ``model.unpruned.onnx``."""
    from gaitpose.registry import default_model_dir

    base = default_model_dir() / "student"
    for name in ("pretrained.pt", "model.onnx", "model.unpruned.onnx"):
        p = base / name
        if p.is_file() and (p.suffix == ".pt" or not _is_quantised(p)):
            return p
    return None


def _is_quantised(path: Path) -> bool:
    import onnx

    try:
        graph = onnx.load(str(path)).graph
    except Exception:  # unreadable: not a usable starting network either
        return True
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node)


def _check_out(out: Path) -> None:
    """The output folder: new, empty, or an earlier run of this command (never a user's other files)."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / OUT_MARKER).exists():
        raise InputError(out, "folder exists and holds files that are not a `gaitpose specialise` run; "
                              "choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(out, f"cannot write the output folder ({exc.strerror or exc})") from None


def preflight(opts: SpecialiseOptions) -> _Inputs:
    """Check every input and derive recording ids and subjects; raises one-line errors."""
    from data_tools.extract import read_subjects_csv, recording_ids
    try:
        from gaitpose.options import parse_roi
    except ImportError:  # older layout
        from data_tools.subject import parse_roi
    from gaitpose.io import open_recording

    opts.validate()
    if not opts.recordings:
        raise ValueError("no recordings given")
    paths = [Path(p) for p in opts.recordings] + [Path(p) for p in opts.held_out]
    seen: set[Path] = set()
    for p in paths:
        if not p.exists():
            raise InputError(p, "recording does not exist")
        if not p.is_file():
            raise InputError(p, "is not a file (give recordings, not folders)")
        r = p.resolve()
        if r in seen:
            raise InputError(p, "given twice (a held-out recording must not also be a training one)")
        seen.add(r)
    frames: dict[str, int] = {}
    ids = recording_ids(paths)
    for p, rid in zip(paths, ids, strict=True):
        rec = open_recording(p)  # InputError for an unreadable or empty file
        try:
            frames[rid] = int(getattr(rec, "num_frames", 0) or 0)
        finally:
            rec.close()
    parse_roi(opts.roi)
    mapping = read_subjects_csv(opts.subjects_csv) if opts.subjects_csv else {}
    subjects = {rid: mapping.get(rid) or mapping.get(p.stem) or mapping.get(p.name) or rid
                for p, rid in zip(paths, ids, strict=True)}
    held = ids[len(opts.recordings):]
    train_ids = ids[: len(opts.recordings)]
    if held:
        shared = sorted({subjects[r] for r in held} & {subjects[r] for r in train_ids})
        if shared:
            raise InputError(opts.subjects_csv, f"subject(s) {', '.join(shared)} appear in both the training and the "
                                                "held-out recordings; the evaluation would measure memorisation")
    else:
        groups = {subjects[r] for r in train_ids}
        if len(groups) < 2:
            raise InputError(None, f"need at least 2 recordings of different subjects to hold one out for evaluation "
                                   f"(got {len(train_ids)} recording(s), {len(groups)} subject(s)); add recordings or "
                                   "pass --held-out RECORDING")
    init = None
    if not opts.no_init:
        init = Path(opts.init) if opts.init is not None else default_init()
        if init is not None:
            if not init.is_file():
                raise InputError(init, "--init checkpoint does not exist")
            if init.suffix.lower() not in (".pt", ".onnx"):
                raise InputError(init, "--init must be a gaitpose .pt checkpoint or an FP32 .onnx export")
    if opts.general_model is not None and not Path(opts.general_model).is_file():
        raise InputError(opts.general_model, "--general-model file does not exist")
    _check_out(Path(opts.out))
    return _Inputs(paths, ids, subjects, held, frames, init)


# --------------------------------------------------------------------------------------------- #
# Starting network: a .pt checkpoint, or an exported (BN-folded) FP32 ONNX, pruned or not
# --------------------------------------------------------------------------------------------- #


def model_from_onnx(path: str | os.PathLike[str], calib: np.ndarray | None = None) -> Any:
    """Rebuild a trainable student from an FP32 ONNX export, pruned or not (for ``--init``).

    The export folds every BatchNorm into its convolution. The torch network is rebuilt from the
    architecture in the embedded metadata, the folded weights are copied into its convolutions in
    execution order (shapes checked), and each BatchNorm is set so that it reproduces the folded
    bias exactly in eval mode: running mean ``m`` and variance ``s^2`` of the convolution's output on
    real crops (``calib``), scale ``sqrt(s^2 + eps)`` and shift ``bias + m``. In training mode the batch statistics
    are then close to those, so fine-tuning starts from the exported function rather than from a
    network whose BatchNorms renormalise everything. A pruned export works too: its layers take the
    widths of its exported weights (the checkpoints it leads to are saved as pruned ones).
    """
    import onnx
    import torch
    from onnx import numpy_helper
    from torch import nn

    from gaitpose.export.onnx_export import read_meta
    from gaitpose.nn.student import build_model

    path = Path(path)
    meta = read_meta(path)
    cfg = (meta.extra or {}).get("model_cfg")
    if not cfg:
        raise InputError(path, "ONNX metadata has no model_cfg; pass a .pt checkpoint to --init")
    graph = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        raise InputError(path, "is a quantised export; --init needs an FP32 model or a .pt checkpoint")
    model = build_model(cfg).eval()
    names = {id(m): n for n, m in model.named_modules()}
    order = [_module_of(model, node.name, path) for node in onnx_convs]
    if len(set(map(id, order))) != len(order) or len(order) != sum(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise InputError(path, "its convolutions do not map one to one onto the architecture in its metadata")
    bn_name: dict[str, str] = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for a, b in itertools.pairwise(list(seq)):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    bn_name[names[id(a)]] = names[id(b)]
    # A pruned export has narrower layers than its metadata's architecture: give each convolution
    # (and its BatchNorm) the shape of its exported weights, as the pruner left them.
    for i, (conv, node) in enumerate(zip(order, onnx_convs, strict=True)):
        wt = inits.get(node.input[1])
        if wt is None:
            raise InputError(path, f"convolution {node.name} has no weight initializer")
        groups = next((int(a.i) for a in node.attribute if a.name == "group"), 1)
        if tuple(wt.shape) == tuple(conv.weight.shape) and groups == conv.groups:
            continue
        name = names[id(conv)]
        new = nn.Conv2d(int(wt.shape[1]) * groups, int(wt.shape[0]), conv.kernel_size, conv.stride, conv.padding,
                        groups=groups, bias=conv.bias is not None)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)
        order[i] = new
        if name in bn_name:
            bparent, _, battr = bn_name[name].rpartition(".")
            setattr(model.get_submodule(bparent) if bparent else model, battr, nn.BatchNorm2d(int(wt.shape[0])))
    bn_after: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            for a, b in itertools.pairwise(list(seq)):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    bn_after[a] = b
    biases: dict[nn.Conv2d, np.ndarray] = {}
    with torch.no_grad():
        for conv, node in zip(order, onnx_convs, strict=True):
            wt = inits.get(node.input[1])
            if wt is None or tuple(wt.shape) != tuple(conv.weight.shape):
                raise InputError(path, f"convolution {node.name} does not fit the architecture in the metadata "
                                       f"({None if wt is None else wt.shape} vs {tuple(conv.weight.shape)})")
            b = inits[node.input[2]] if len(node.input) > 2 and node.input[2] in inits else np.zeros(wt.shape[0])
            conv.weight.copy_(torch.from_numpy(np.array(wt, np.float32)))
            if conv in bn_after:
                bn = bn_after[conv]
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b.astype(np.float32)))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                biases[conv] = b.astype(np.float32)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b.astype(np.float32)))
            else:
                raise InputError(path, f"convolution {node.name} has a bias the architecture has no place for")
        if calib is not None and len(calib):
            stats: dict[nn.Conv2d, tuple[np.ndarray, np.ndarray]] = {}

            def record(mod: nn.Conv2d, _i: Any, out: torch.Tensor) -> None:
                if mod in biases:
                    y = out.detach().double()
                    stats[mod] = (y.mean(dim=(0, 2, 3)).numpy(), y.std(dim=(0, 2, 3)).numpy())

            hooks = [c.register_forward_hook(record) for c in biases]
            model.eval()  # layers swapped in for a pruned export start in training mode
            model(torch.from_numpy(np.ascontiguousarray(calib, dtype=np.float32)))
            for hk in hooks:
                hk.remove()
            for conv, (mean, std) in stats.items():
                bn = bn_after[conv]
                var = np.maximum(std**2, 1e-6)
                bn.running_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
                bn.running_var.copy_(torch.from_numpy(var.astype(np.float32)))
                bn.weight.copy_(torch.from_numpy(np.sqrt(var + bn.eps).astype(np.float32)))
                bn.bias.copy_(torch.from_numpy((biases[conv] + mean).astype(np.float32)))
    return model.eval()


def _module_of(model: Any, node_name: str, path: Path) -> Any:
    """The torch module an exported node came from, from its scope name.

    ``/stages.1/stages.1.0/block/block.0/block.0.0/Conv``: each scope is either the previous one plus
    ``.<child>`` or a child attribute of the module reached so far.
    """
    from torch import nn

    cur, prev = model, None
    for part in node_name.strip("/").split("/")[:-1]:
        rel = part[len(prev) + 1:] if prev is not None and part.startswith(prev + ".") else part
        try:
            cur = cur.get_submodule(rel)
        except AttributeError:
            raise InputError(path, f"node {node_name} has no module {rel!r} in the architecture") from None
        prev = part
    if not isinstance(cur, nn.Conv2d):
        raise InputError(path, f"node {node_name} does not come from a convolution of the architecture")
    return cur


def load_init(path: Path, train_json: Path) -> tuple[Any, tuple[int, int]]:
    """(starting network, its input size) from a .pt checkpoint or an FP32 ONNX export."""
    if path.suffix.lower() == ".onnx":
        from gaitpose.export.crops import label_crops
        from gaitpose.infer.pose import OnnxPoseEstimator

        est = OnnxPoseEstimator(path, threads=1)
        crops = label_crops(train_json, est, limit=64).crops
        model = model_from_onnx(path, crops)
        return model, tuple(int(v) for v in est.meta.input_size)  # type: ignore[return-value]
    from gaitpose.export.ckpt import load_student

    model, cfg, _ = load_student(path)
    return model, tuple(int(v) for v in cfg.input_size)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- #
# Budget planning
# --------------------------------------------------------------------------------------------- #


def plan_label_stride(frames: int, budget_s: float, workers: int, sec_per_frame: float = 0.25) -> int:
    """Label every N-th frame so labelling takes at most about a third of the budget.

    ``sec_per_frame`` is the teacher on the crop and its mirror plus the subject search, measured at
    about 0.1-0.2 s per frame and worker on a loaded 2-core machine; the plan uses the pessimistic end.
    """
    if frames <= 0:
        return 1
    est = frames * sec_per_frame / max(1, min(workers, 2))
    return max(1, math.ceil(est / max(budget_s / 3.0, 1.0)))


def plan_training(left_s: float, epoch_s: float, prune: bool, reserve_s: float) -> tuple[int, int]:
    """(training epochs, pruning epochs) that fit ``left_s`` after ``reserve_s`` for export/INT8/evaluation.

    Pruning epochs cost about 1.4 training epochs (the distillation teacher runs too, and each step is
    measured); training gets 60 % of the time when the network must be pruned, all of it otherwise.
    """
    usable = max(0.0, left_s - reserve_s)
    share = 0.6 if prune else 1.0
    train = int(max(1, min(MAX_EPOCHS, usable * share // max(epoch_s, 1e-3))))
    prune_epochs = int(max(2, min(MAX_EPOCHS, usable * (1 - share) // max(1.4 * epoch_s, 1e-3)))) if prune else 0
    return train, prune_epochs


def plan_prune(total_epochs: int) -> dict[str, int]:
    """Split a pruning epoch budget into sparsity, steps x fine-tune, and the final distilled fine-tune."""
    total = max(2, int(total_epochs))
    sparsity = round(0.15 * total) if total >= 8 else 0
    steps = max(1, min(6, total // 8))
    finetune = 1 if total - sparsity >= 2 * steps + 1 else 0
    final = max(1, total - sparsity - steps * finetune)
    return {"sparsity_epochs": sparsity, "steps": steps, "finetune_epochs": finetune, "final_epochs": final}


def steady_epoch_seconds(run_dir: Path) -> float | None:
    """Mean time of a training run's last (up to) six epochs, from its ``log.json``.

    The mean, not the median: what is projected is the time the next epochs take together, and on a
    shared machine epoch times are heavy-tailed (4 to 40 s for the same epoch in one lab run). The first
    epoch also decodes every image once, so it is left out when there are more."""
    try:
        history = json.loads((Path(run_dir) / "log.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    secs = [float(h["seconds"]) for h in history if h.get("seconds")]
    if len(secs) > 1:
        secs = secs[1:]
    return float(np.mean(secs[-6:])) if secs else None


def pick_target_macs(latency_ms: float, budget_ms: float | None) -> float:
    """The MACs fraction to prune to so a crop fits ``budget_ms`` (1.0: it already does).

    Latency shrinks less than MACs (memory traffic, fixed per-call costs), hence the 0.8 margin;
    never below a quarter of the MACs, where the shipped recipe lost too much accuracy.
    """
    if budget_ms is None or latency_ms <= budget_ms:
        return 1.0
    return float(max(0.25, min(0.9, 0.8 * budget_ms / latency_ms)))


# --------------------------------------------------------------------------------------------- #
# Evaluation helpers
# --------------------------------------------------------------------------------------------- #


def _json_safe(v: Any) -> Any:
    """NaN (nothing comparable) -> None, recursively, so meta.json stays strict JSON."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def evaluate_onnx_model(path: Path, ann: Path, threads: int) -> dict[str, Any]:
    """PCK/AP and the sagittal angle errors (``gaitpose.eval``) of one ONNX model on a label file."""
    from gaitpose.eval.evaluate import evaluate_model

    metrics = evaluate_model(path, ann, threads=threads)
    keep = ("AP", "PCK@0.05", "PCK@0.1", "PCK@0.1_body", "PCK@0.1_feet", "PCK@0.1_side_agnostic",
            "PCK@0.1_per_recording", "mean_px_error", "angle_mae_deg", "params", "gflops")
    out = {k: metrics[k] for k in keep if k in metrics}
    out.setdefault("angle_mae_deg", {})
    return _json_safe(out)


# --------------------------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------------------------- #


class Specialiser:
    """One ``gaitpose specialise`` run; :meth:`run` does every stage that is not already done."""

    def __init__(self, opts: SpecialiseOptions, say: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.out = Path(opts.out)
        self.work = self.out / "work"
        self.say = say or (lambda s: print(s, flush=True))
        self.clock = _Clock(opts.minutes)
        self.timings: dict[str, float] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []

    # -- bookkeeping --------------------------------------------------------------------------
    def _stage(self, name: str, key: str, fn: Callable[[], dict[str, Any]],
               final: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Run stage ``name`` unless a marker with ``key`` says it is done; ``final(result)`` False leaves
        it unmarked (e.g. labelling with failed recordings is retried by the next run)."""
        i = STAGES.index(name) + 1
        done = self.state.done(name, key)
        if done is not None:
            self.results[name] = done["result"]
            self.timings[name] = float(done.get("seconds", 0.0))
            self.skipped.append(name)
            self.say(f"[{i}/{len(STAGES)}] {name}: done in an earlier run, skipped")
            return done["result"]
        self.say(f"[{i}/{len(STAGES)}] {name}: starting ({self.clock.elapsed:.0f} s in, "
                 f"{max(self.clock.left, 0):.0f} s of the budget left)")
        t0 = time.perf_counter()
        self._key = key
        result = fn()
        secs = time.perf_counter() - t0
        if final is None or final(result):
            self.state.mark(name, key, result, secs)
        self.results[name] = result
        self.timings[name] = secs
        self.say(f"[{i}/{len(STAGES)}] {name}: done in {secs:.1f} s")
        return result

    # -- the run ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """All stages; returns the summary also written to ``meta.json``."""
        opts = self.opts
        self.inputs = preflight(opts)
        (self.out / OUT_MARKER).write_text("gaitpose specialise output folder; re-running the command resumes\n")
        self.state = _State(self.work)
        inp = self.inputs
        base = {
            "inputs": [_file_id(p) for p in inp.paths], "ids": inp.ids, "subjects": inp.subjects,
            "held_out": inp.held_out_ids, "stride": opts.stride, "max_frames": opts.max_frames,
            "max_size": opts.max_size,
        }
        k_extract = _hash("extract", base)
        self._stage("extract", k_extract, self._extract)

        total_frames = sum(
            min(math.ceil(max(inp.frames[r], 1) / opts.stride), opts.max_frames or 10**9) for r in inp.ids
        )
        stride = opts.label_stride or plan_label_stride(total_frames, self.clock.budget_s, opts.workers)
        self.label_stride = stride
        from data_tools.label import PART_VERSION

        k_label = _hash("label", k_extract, opts.roi, stride, PART_VERSION)
        self._stage("label", k_label, self._label, final=lambda r: not r.get("failed"))
        # Later stages follow the labels' content: a recording that failed and labels on a re-run
        # changes the labels, and so everything after them.
        k_split = _hash("split", k_label, _labels_digest(self.work / "labels.json"), opts.seed)
        self._stage("split", k_split, self._split)

        init_id = _file_id(inp.init) if inp.init is not None else None
        k_train = _hash("train", k_split, init_id, opts.input_size, opts.distill_weight, opts.seed, opts.epochs,
                        opts.target_macs, opts.crop_budget_ms, opts.prune_epochs, opts.general_model)
        self._stage("train", k_train, self._train)
        k_prune = _hash("prune", k_train)
        self._stage("prune", k_prune, self._prune)
        k_export = _hash("export", k_prune)
        self._stage("export", k_export, self._export)
        k_int8 = _hash("int8", k_export)
        self._stage("int8", k_int8, self._int8)
        k_eval = _hash("evaluate", k_int8, str(self._general()[0]))
        self._stage("evaluate", k_eval, self._evaluate)
        k_report = _hash("report", k_eval)
        self._stage("report", k_report, self._report)
        summary = json.loads((self.out / "meta.json").read_text(encoding="utf-8"))
        over = self.clock.elapsed - self.clock.budget_s
        self.say(f"done in {self.clock.elapsed:.0f} s (budget {self.clock.budget_s:.0f} s"
                 + (f", {over:.0f} s over" if over > 0 else "") + f"): {self.out / 'model.onnx'}")
        return summary

    # -- stages -------------------------------------------------------------------------------
    def _extract(self) -> dict[str, Any]:
        from data_tools.extract import ExtractOptions, extract_recording
        from gaitpose.manifest import ManifestWriter, read_manifest

        opts, inp = self.opts, self.inputs
        frames_dir = self.work / "frames"
        frames_dir.mkdir(parents=True, exist_ok=True)
        eo = ExtractOptions(stride=opts.stride, max_frames=opts.max_frames, max_size=opts.max_size)
        done = {(r["recording"], int(r["frame_index"])) for r in read_manifest(frames_dir)}
        counts = {}
        with ManifestWriter(frames_dir) as writer:
            for p, rid in zip(inp.paths, inp.ids, strict=True):
                s = extract_recording(p, frames_dir, recording_id=rid, subject=inp.subjects[rid], options=eo,
                                      manifest=writer, done=done)
                self.say(f"  {s.line()}")
                counts[rid] = s.frames_written + s.frames_skipped
                if counts[rid] == 0:
                    raise InputError(p, "no frames could be extracted")
        return {"frames": counts}

    def _label(self) -> dict[str, Any]:
        from data_tools.batch import run_batch
        from data_tools.label import LabelOptions, load_frame_store

        frames_dir = self.work / "frames"
        recs = load_frame_store(frames_dir)
        recs = {r: recs[r] for r in self.inputs.ids if r in recs}
        lo = LabelOptions(roi=self.opts.roi, stride=self.label_stride)
        errors: list[str] = []
        res = run_batch(frames_dir, self.work / "labels.json", recs, lo, workers=min(self.opts.workers, len(recs)),
                        on_error=errors.append, show_progress=sys.stderr.isatty())
        for part in sorted(res.parts, key=lambda p: p["recording"]):
            s = part["stats"]
            self.say(f"  {part['recording']}: labelled {s['frames_labelled']}/{s['frames']} frames, "
                     f"teacher {s['teacher_seconds']:.1f} s")
        # A recording where the teacher finds nobody is left out with a warning; the split then says
        # whether what is left is still enough.
        for r in sorted(res.failed):
            self.say(f"  warning: {res.failed[r]} (recording left out)")
        if not res.parts:
            raise InputError(None, "labelling failed on every recording: "
                             + "; ".join(res.failed[r] for r in sorted(res.failed)))
        return {"stride": self.label_stride, "failed": dict(res.failed),
                "recordings": {p["recording"]: {k: p["stats"][k] for k in ("frames", "frames_labelled")}
                               for p in res.parts}}

    def _split(self) -> dict[str, Any]:
        from data_tools.split import split_labels

        inp = self.inputs
        split_dir = self.work / "split"
        failed = set(self.results["label"].get("failed") or {})
        held = [r for r in inp.held_out_ids if r not in failed]
        if inp.held_out_ids and not held:
            raise InputError(None, "no held-out recording could be labelled, so there is nothing to evaluate on")
        if held:
            counts = split_labels(self.work / "labels.json", split_dir, val=0.0, test=0.0, seed=self.opts.seed,
                                  test_recordings=held)
        else:
            counts = split_labels(self.work / "labels.json", split_dir, val=0.0, test=0.25, seed=self.opts.seed)
        for name in ("train", "test"):
            if not counts.get(name, {}).get("annotations"):
                raise InputError(self.work / "labels.json", f"the {name} split has no labelled frames; give recordings "
                                                            "where the teacher finds the subject")
        test_recs = json.loads((split_dir / "test.json").read_text(encoding="utf-8"))["info"]["split"]["recordings"]
        train_recs = json.loads((split_dir / "train.json").read_text(encoding="utf-8"))["info"]["split"]["recordings"]
        self.say(f"  train: {', '.join(train_recs)} ({counts['train']['annotations']} labelled frames); "
                 f"held out: {', '.join(test_recs)} ({counts['test']['annotations']})")
        return {"counts": counts, "train_recordings": train_recs, "test_recordings": test_recs}

    def _general(self) -> tuple[Path | None, str]:
        """The model the report compares against: ``--general-model``, else the shipped general model
        (``models/general/model.onnx``, the BlazePose export), else the shipped default student."""
        if self.opts.general_model is not None:
            return Path(self.opts.general_model), "the given general model"
        from gaitpose.registry import GENERAL_POSE_MODEL, default_model_dir

        general = default_model_dir() / GENERAL_POSE_MODEL
        if general.is_file():
            return general, f"the general default model (models/{GENERAL_POSE_MODEL.as_posix()})"
        p = default_model_dir() / "student" / "model.onnx"
        return (p if p.is_file() else None), "the current default model (models/student; no general model shipped)"

    def _latency_budget(self, probe: Path, general: Path | None) -> tuple[float, float | None, float | None]:
        """(this architecture's ms per crop, the per-crop budget, the general model's ms per crop).

        The budget is ``--crop-budget-ms``, else a fifth of the general model's latency (the product's
        5x target), measured interleaved with the architecture's so that load on a shared machine hits
        both alike. The shipped student is no general model: against it there is no budget (then the
        shipped recipe's half of the MACs is used).
        """
        from gaitpose.export.latency import compare_latency

        models = {"arch": probe}
        if self.opts.crop_budget_ms is None and general is not None and general.parent.name != "student":
            models["general"] = general
        lat = compare_latency(models, threads=(1,), runs=50)
        arch = lat["arch"]["threads=1"]["median_ms"]
        if self.opts.crop_budget_ms is not None:
            return arch, float(self.opts.crop_budget_ms), None
        if "general" not in lat:
            return arch, None, None
        gen = lat["general"]["threads=1"]["median_ms"]
        return arch, gen / SPEEDUP_TARGET, gen

    def _train(self) -> dict[str, Any]:
        import copy

        from gaitpose.export.onnx_export import export_onnx
        from gaitpose.labels import load_records
        from gaitpose.nn.checkpoint import model_meta
        from gaitpose.nn.student import build_model
        from gaitpose.train.config import TrainConfig
        from gaitpose.train.loop import seed_everything, train_model

        opts, inp = self.opts, self.inputs
        split_dir = self.work / "split"
        train_json = split_dir / "train.json"
        records = load_records(train_json)
        seed_everything(opts.seed)
        if inp.init is not None:
            init_model, init_size = load_init(inp.init, train_json)
            if opts.input_size is not None and tuple(opts.input_size) != init_size:
                raise InputError(inp.init, f"starting network is for input {init_size[0]}x{init_size[1]}; drop "
                                           "--input-size or pass --no-init")
            model = copy.deepcopy(init_model)
            size = init_size
            self.say(f"  starting from {inp.init} (input {size[0]}x{size[1]}), distilling from it with weight "
                     f"{opts.distill_weight:g} beside the labels")
        else:
            size = tuple(opts.input_size or DEFAULT_INPUT_SIZE)
            init_model = None
            self.say(f"  no pretrained student: training from random weights (input {size[0]}x{size[1]})")
        cfg = TrainConfig(input_size=size, device=opts.device, threads=opts.threads, seed=opts.seed,
                          workers=0 if len(records) < 64 else 2)
        if init_model is None:
            model = build_model(cfg.model_config_dict())
        else:
            cfg = cfg.updated(lr=5e-4, warmup_epochs=0.5)
        teacher = init_model if init_model is not None and opts.distill_weight > 0 else None
        run_dir = self.work / "train"
        run_dir.mkdir(parents=True, exist_ok=True)

        # Per-crop latency of this architecture against the budget decides whether to prune.
        general, _ = self._general()
        probe_onnx = run_dir / "architecture.onnx"
        export_onnx(copy.deepcopy(model).cpu().eval(), model_meta(model.cfg, cfg), probe_onnx)
        lat_ms, budget_ms, general_ms = self._latency_budget(probe_onnx, general)
        target = opts.target_macs if opts.target_macs is not None else (
            pick_target_macs(lat_ms, budget_ms) if budget_ms is not None else 0.5)

        # The plan is kept with the stage's key: an interrupted run resumes from last.pt with the same
        # epochs (the schedule depends on them); a changed configuration starts the folder afresh.
        plan_path = run_dir / "plan.json"
        plan = None
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            plan = None
        if plan is None or plan.get("key") != self._key or not (run_dir / "last.pt").exists():
            plan = None
            for stale in ("last.pt", "best.pt", "plan.json"):
                (run_dir / stale).unlink(missing_ok=True)
        if plan is None:
            if opts.epochs is not None:
                epoch_s = None
                epochs = opts.epochs
                prune_epochs = opts.prune_epochs if opts.prune_epochs is not None else (2 if target < 1 else 0)
            else:
                # Time one epoch of a copy on at most PROBE_RECORDS crops (the real run keeps its own
                # schedule), scale it to the whole set, then fit the budget. The probe also pays for
                # decoding its images once, so it errs on the long side.
                probe = records[:: max(1, len(records) // PROBE_RECORDS)][:PROBE_RECORDS]
                t0 = time.perf_counter()
                train_model(copy.deepcopy(model), probe, [], cfg.updated(epochs=1), None, progress=False,
                            distill_from=teacher, distill_weight=opts.distill_weight)
                epoch_s = (time.perf_counter() - t0) * len(records) / len(probe)
                reserve = self._reserve()
                epochs, prune_epochs = plan_training(self.clock.left, epoch_s, target < 1.0, reserve)
                if opts.prune_epochs is not None:
                    prune_epochs = opts.prune_epochs
            plan = {"key": self._key, "epochs": int(epochs), "prune_epochs": int(prune_epochs),
                    "target_macs": float(target), "epoch_seconds": epoch_s, "crop_budget_ms": budget_ms,
                    "architecture_latency_ms": lat_ms, "general_latency_ms": general_ms, "input_size": list(size)}
            write_json_atomic(plan_path, plan, indent=1)
        self.say(f"  plan: {plan['epochs']} training epochs"
                 + (f" (one epoch took {plan['epoch_seconds']:.1f} s)" if plan.get("epoch_seconds") else "")
                 + (f"; prune to {plan['target_macs']:.2f} of the MACs in {plan['prune_epochs']} epochs"
                    if plan["target_macs"] < 1 else "; no pruning: the network already fits the per-crop budget")
                 + (f" (budget {budget_ms:.2f} ms per crop, this network {lat_ms:.2f} ms)" if budget_ms else ""))
        share = 0.6 if plan["target_macs"] < 1.0 else 1.0
        train_deadline = self.clock.elapsed + max(0.0, self.clock.left - self._reserve()) * share
        result = self._train_elastic(model, records, cfg, teacher, run_dir, plan, train_deadline,
                                     fixed=opts.epochs is not None)
        return {"checkpoint": str(run_dir / "last.pt"), "plan": plan, "init": str(inp.init) if inp.init else None,
                "device": result.get("device", opts.device), "train_samples": len(records),
                "distill_weight": opts.distill_weight if teacher is not None else None,
                "epochs_trained": result.get("epochs_trained"),
                "final_loss": (result.get("history") or [{}])[-1].get("train_loss")}

    def _train_elastic(self, model: Any, records: list, cfg: Any, teacher: Any, run_dir: Path,
                       plan: dict[str, Any], deadline: float, fixed: bool) -> dict[str, Any]:
        """Train to ``plan["epochs"]``, re-planning the total every few epochs from the epoch times
        really measured and the time left until ``deadline`` (seconds on this run's clock).

        Why: the one-epoch probe cannot see how the load on a shared machine changes over the next
        quarter of an hour, and a fixed count of epochs overran or wasted the budget by minutes. The
        learning rate follows one cosine over the current total: each segment resumes from ``last.pt``
        with the new total, so the schedule stretches or shrinks smoothly and still ends at its minimum.
        A segment ends at an epoch boundary (the step after it raises, before its update, and nothing of
        it is kept). With ``fixed`` (``--epochs``) the plan is trained as given.
        """
        from gaitpose.nn.checkpoint import read_checkpoint
        from gaitpose.train.loop import train_model

        last = run_dir / "last.pt"
        plan_path = run_dir / "plan.json"

        def epochs_done() -> int:
            return int(read_checkpoint(last).get("epoch", 0)) if last.exists() else 0

        done, total = epochs_done(), int(plan["epochs"])
        if 0 < done < total:
            self.say(f"  resuming training from {last} (epoch {done} of {total})")
        n, bs = len(records), int(cfg.batch_size)
        steps = max(1, n // bs) if n > bs else 1  # the loader drops the last partial batch
        result: dict[str, Any] = {}
        while done < total:
            seg_end = total if fixed else min(total, done + max(3, math.ceil(total / 8)))
            budget_steps = (seg_end - done) * steps
            calls = [0]

            def stop_at_boundary(_m: Any, budget_steps: int = budget_steps, calls: list[int] = calls) -> None:
                calls[0] += 1
                if calls[0] > budget_steps:
                    raise _SegmentEnd

            with contextlib.suppress(_SegmentEnd):
                result = train_model(model, records, [], cfg.updated(epochs=total), run_dir,
                                     resume=last if last.exists() else None, progress=sys.stderr.isatty(),
                                     regularizer=None if seg_end >= total else stop_at_boundary,
                                     distill_from=teacher, distill_weight=self.opts.distill_weight)
            done = epochs_done()
            if fixed or done >= total:
                break
            epoch_s = steady_epoch_seconds(run_dir)
            if epoch_s is None:
                continue
            new_total = int(min(MAX_EPOCHS, max(done, done + (deadline - self.clock.elapsed) // epoch_s)))
            if new_total != total:
                self.say(f"  epoch {done}: {epoch_s:.1f} s per epoch now, {max(0.0, deadline - self.clock.elapsed):.0f}"
                         f" s left for training: {new_total} epochs in all (was {total})")
                total = new_total
                plan["epochs"] = total
                write_json_atomic(plan_path, plan, indent=1)
        if done >= total and total > 0 and not (run_dir / "best.pt").exists() and last.exists():
            shutil.copyfile(last, run_dir / "best.pt")
        result["epochs_trained"] = done
        return result

    def _reserve(self) -> float:
        """Seconds kept for export, INT8 and evaluation after training and pruning."""
        return 45.0 + 0.08 * self.clock.budget_s

    def _prune(self) -> dict[str, Any]:
        from gaitpose.prune.pipeline import run_prune
        from gaitpose.prune.slimming import PruneConfig

        opts = self.opts
        plan = self.results["train"]["plan"]
        ckpt = Path(self.results["train"]["checkpoint"])
        target = float(plan["target_macs"])
        prune_epochs = int(plan["prune_epochs"])
        if target >= 1.0:
            self.say("  not needed: the network fits the per-crop budget")
            return {"checkpoint": str(ckpt), "pruned": False}
        if opts.epochs is None and self.clock.left < 60:
            self.say(f"  skipped: {max(self.clock.left, 0):.0f} s of the budget left")
            return {"checkpoint": str(ckpt), "pruned": False, "skipped_for_time": True}
        if opts.epochs is None and opts.prune_epochs is None:
            # Re-planned from the epochs training really took and the time really left.
            epoch_s = steady_epoch_seconds(self.work / "train")
            if epoch_s is not None:
                prune_epochs = int(max(2, min(MAX_EPOCHS, (self.clock.left - self._reserve()) // (1.4 * epoch_s))))
        pp = plan_prune(prune_epochs)
        cfg = PruneConfig(target_macs=target, scope="global", protect=PROTECT, distill=True, seed=opts.seed, **pp)
        out = self.work / "prune"
        train_json = self.work / "split" / "train.json"
        report = run_prune(ckpt, train_json, train_json, out, cfg, device=opts.device, threads=(1,),
                           latency_runs=min(opts.latency_runs, 50), eval_limit=100, keep_finetune_logs=False)
        s = report["summary"]
        self.say(f"  MACs x{s['macs_ratio']:.2f}, params x{s['params_ratio']:.2f}, "
                 f"speed-up {s['speedup_median']}")
        # The compression rule of the shipped recipe: pruning may cost at most one PCK@0.1 point. It is
        # measured on the training recordings (what the network can still fit), never on the held-out ones.
        before = (report["before"].get("accuracy") or {}).get("PCK@0.1")
        after = (report["after"].get("accuracy") or {}).get("PCK@0.1")
        result = {"checkpoint": str(out / "pruned.pt"), "pruned": True, "plan": pp, "summary": s,
                  "unpruned_checkpoint": str(ckpt), "train_pck_before": before, "train_pck_after": after}
        if before is not None and after is not None and after < before - MAX_PRUNE_LOSS:
            self.say(f"  pruning lost {100 * (before - after):.1f} PCK points on the training recordings "
                     f"({before:.3f} -> {after:.3f}): the unpruned network is kept")
            result.update(checkpoint=str(ckpt), pruned=False, rejected=True)
        return result

    def _export(self) -> dict[str, Any]:
        from gaitpose.export.onnx_export import export_checkpoint

        train_json = self.work / "split" / "train.json"
        res = self.results["prune"]
        fp32 = self.work / "model.fp32.onnx"
        _, parity = export_checkpoint(res["checkpoint"], fp32, parity_source=train_json)
        out: dict[str, Any] = {"fp32": str(fp32), "parity": parity.to_dict() if parity else None}
        if res.get("pruned"):
            unpruned = self.work / "unpruned.onnx"
            export_checkpoint(res["unpruned_checkpoint"], unpruned, parity_source=train_json)
            out["unpruned"] = str(unpruned)
        if parity is not None:
            self.say(f"  parity on {parity.num_crops} crops: max |diff| {parity.max_abs_diff:.2e}, "
                     f"max keypoint shift {parity.max_kp_dist_px:.3f} px")
        return out

    def _int8(self) -> dict[str, Any]:
        from gaitpose.export.quantize import int8_report, quantize_int8

        train_json = self.work / "split" / "train.json"
        fp32 = Path(self.results["export"]["fp32"])
        int8 = self.work / "model.int8.onnx"
        # INT8 is compared with FP32 on the training recordings: it measures what quantisation
        # moves, and the held-out recordings stay untouched until the evaluation stage.
        quantize_int8(fp32, train_json, int8, num_calib=128)
        rep = int8_report(fp32, int8, train_json, num_eval=200, threads=(1,), runs=min(self.opts.latency_runs, 50),
                          out_json=self.work / "model.int8.report.json")
        self.say(f"  {rep['verdict']}")
        return {"int8": str(int8), "recommend_int8": bool(rep["recommend_int8"]), "verdict": rep["verdict"],
                "speedup_median": rep.get("speedup_median"), "pck_drop_points": rep.get("pck_drop_points")}

    def _evaluate(self) -> dict[str, Any]:
        from gaitpose.export.latency import compare_latency

        test_json = self.work / "split" / "test.json"
        threads = self.opts.threads
        chosen = Path(self.results["int8"]["int8"] if self.results["int8"]["recommend_int8"]
                      else self.results["export"]["fp32"])
        models: dict[str, Path] = {"specialised": chosen}
        if chosen != Path(self.results["export"]["fp32"]):
            models["specialised FP32"] = Path(self.results["export"]["fp32"])
        else:
            models["specialised INT8"] = Path(self.results["int8"]["int8"])
        if self.results["export"].get("unpruned"):
            models["specialised, unpruned"] = Path(self.results["export"]["unpruned"])
        init = self.inputs.init
        if init is not None and init.suffix.lower() == ".onnx":
            models["starting network"] = init  # what the clinic's frames changed, on the same held-out frames
        general, general_label = self._general()
        if general is not None:
            models["general default"] = general
            from gaitpose.registry import default_model_dir

            shipped = default_model_dir() / "student" / "model.onnx"
            if general != shipped and shipped.is_file() and (init is None or init.resolve() != shipped.resolve()):
                models["shipped student"] = shipped
        metrics: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for name, p in models.items():
            try:
                metrics[name] = evaluate_onnx_model(p, test_json, threads)
            except Exception as exc:  # a comparison model that cannot run must not cost the clinic its model
                if name == "specialised":
                    raise
                failed[name] = f"{p}: {type(exc).__name__}: {exc}".replace("\n", " ")[:300]
                self.say(f"  warning: could not evaluate the {name} ({failed[name]})")
        lat_models = {k: v for k, v in models.items() if k in ("specialised", "general default") and k in metrics}
        lat = compare_latency(lat_models, threads=(1,), runs=self.opts.latency_runs)
        latency = {k: v["threads=1"]["median_ms"] for k, v in lat.items()}
        speedup = (latency["general default"] / latency["specialised"]) if "general default" in latency else None
        for name, m in metrics.items():
            self.say(f"  {name}: PCK@0.1 {m['PCK@0.1']:.3f}, feet {m['PCK@0.1_feet']:.3f}, "
                     f"angle MAE {_f(m['angle_mae_deg'].get('all'), 2)} deg")
        worse = _worse_than_start({"metrics": metrics})
        if worse:
            self.say(f"  warning: {worse}")
        if speedup is not None:
            self.say(f"  per crop (1 thread): specialised {latency['specialised']:.2f} ms, general default "
                     f"{latency['general default']:.2f} ms: {speedup:.2f}x")
        return {"models": {k: str(v) for k, v in models.items()}, "metrics": metrics, "latency_ms": latency,
                "speedup_vs_general": speedup, "general": str(general) if general else None,
                "general_label": general_label, "chosen": str(chosen), "failed": failed,
                "test_recordings": self.results["split"]["test_recordings"]}

    def _report(self) -> dict[str, Any]:
        ev = self.results["evaluate"]
        chosen = Path(ev["chosen"])
        write_bytes_atomic(self.out / "model.onnx", chosen.read_bytes())
        other = Path(self.results["int8"]["int8"]) if chosen == Path(self.results["export"]["fp32"]) \
            else Path(self.results["export"]["fp32"])
        other_name = "model.int8.onnx" if other.name.endswith("int8.onnx") else "model.fp32.onnx"
        for stale in ("model.int8.onnx", "model.fp32.onnx"):
            if stale != other_name:
                (self.out / stale).unlink(missing_ok=True)
        write_bytes_atomic(self.out / other_name, other.read_bytes())
        figs = self.out / "figures"
        figs.mkdir(exist_ok=True)
        fig_names = _figures(ev, figs)
        curves = self.work / "train" / "curves.png"
        if curves.exists():
            shutil.copyfile(curves, figs / "training_curves.png")
            fig_names.append("training_curves.png")
        summary = self._summary(other_name)
        write_json_atomic(self.out / "meta.json", summary, indent=2)
        write_text_atomic(self.out / "MODEL_CARD.md", model_card(summary))
        write_text_atomic(self.out / "report.html", report_html(summary, fig_names))
        return {"files": ["model.onnx", other_name, "meta.json", "MODEL_CARD.md", "report.html"]}

    def _summary(self, other_name: str) -> dict[str, Any]:
        ev = self.results["evaluate"]
        opts = self.opts
        return {
            "command": "gaitpose specialise",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": {
                "model.onnx": {"sha256": file_sha256(self.out / "model.onnx"),
                               "bytes": (self.out / "model.onnx").stat().st_size,
                               "precision": "int8" if self.results["int8"]["recommend_int8"] else "fp32"},
                other_name: {"sha256": file_sha256(self.out / other_name),
                             "bytes": (self.out / other_name).stat().st_size},
            },
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                        if k not in ("recordings", "held_out", "out")},
            "recordings": {"ids": self.inputs.ids, "paths": [str(p) for p in self.inputs.paths],
                           "subjects": self.inputs.subjects,
                           "train": self.results["split"]["train_recordings"],
                           "held_out": self.results["split"]["test_recordings"]},
            "labels": self.results["label"],
            "split": self.results["split"]["counts"],
            "train": self.results["train"],
            "prune": self.results["prune"],
            "export": {"parity": self.results["export"]["parity"]},
            "int8": self.results["int8"],
            "evaluation": ev,
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
            "budget_s": self.clock.budget_s,
            "resumed_stages": list(self.skipped),
            "machine": {"cpus": os.cpu_count(), "device": self.results["train"].get("device")},
        }


# --------------------------------------------------------------------------------------------- #
# Report and model card
# --------------------------------------------------------------------------------------------- #


def _figures(ev: dict[str, Any], figs: Path) -> list[str]:
    """Bar charts of accuracy, angle error and per-crop latency, specialised vs the general default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ev["metrics"])
    out = []
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    keys = ("PCK@0.1", "PCK@0.1_body", "PCK@0.1_feet")
    width = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        vals = [float(ev["metrics"][n].get(k) or 0.0) for k in keys]
        ax.bar(np.arange(len(keys)) + i * width, vals, width, label=n)
    ax.set_xticks(np.arange(len(keys)) + width * (len(names) - 1) / 2, keys)
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with the teacher")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figs / "accuracy.png")
    plt.close(fig)
    out.append("accuracy.png")

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    joints = ["hip", "knee", "ankle", "all"]
    for i, n in enumerate(names):
        vals = [float(ev["metrics"][n]["angle_mae_deg"].get(j) or 0.0) for j in joints]
        ax.bar(np.arange(len(joints)) + i * width, vals, width, label=n)
    ax.set_xticks(np.arange(len(joints)) + width * (len(names) - 1) / 2, joints, fontsize=8)
    ax.set_ylabel("angle MAE vs teacher (deg)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figs / "angles.png")
    plt.close(fig)
    out.append("angles.png")

    if ev.get("latency_ms"):
        fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
        lat = ev["latency_ms"]
        ax.bar(list(lat), [lat[k] for k in lat], color=["tab:blue", "tab:gray"][: len(lat)])
        ax.set_ylabel("ms per crop (1 thread)")
        fig.tight_layout()
        fig.savefig(figs / "latency.png")
        plt.close(fig)
        out.append("latency.png")
    return out


def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _metrics_table(ev: dict[str, Any]) -> list[list[str]]:
    rows = [["model", "PCK@0.1", "body", "feet", "side-agnostic", "angle MAE (deg)", "ms per crop"]]
    for n, m in ev["metrics"].items():
        rows.append([n, _f(m.get("PCK@0.1")), _f(m.get("PCK@0.1_body")), _f(m.get("PCK@0.1_feet")),
                     _f(m.get("PCK@0.1_side_agnostic")), _f(m["angle_mae_deg"].get("all"), 2),
                     _f(ev.get("latency_ms", {}).get(n), 2)])
    return rows


def _worse_than_start(ev: dict[str, Any]) -> str | None:
    """A sentence when the specialised model agrees less with the teacher on the held-out recordings
    than the network it started from (the clinic should know before it uses the model)."""
    m = ev["metrics"]
    if "starting network" not in m or "specialised" not in m:
        return None
    a, b = m["specialised"].get("PCK@0.1"), m["starting network"].get("PCK@0.1")
    if a is None or b is None or a >= b - 0.01:
        return None
    return (f"on the held-out recordings the specialised model agrees less with the teacher than the network "
            f"it started from (PCK@0.1 {a:.3f} vs {b:.3f}). The training recordings do not cover what the "
            "held-out ones show (e.g. a camera view); add recordings of every view, or keep using the starting "
            "network.")


def model_card(s: dict[str, Any]) -> str:
    """MODEL_CARD.md: what the model is, what it was trained and measured on, and its limits."""
    ev, tr, pr = s["evaluation"], s["train"], s["prune"]
    par = s["export"]["parity"]
    failed = s["labels"].get("failed") or {}
    general_note = (" The general default is the teacher's own network (BlazePose), so its agreement with "
                    "the teacher's labels is high by construction; it is the reference, not a competitor."
                    if "blazepose" in str(ev.get("general") or "") else "")
    plan = tr["plan"]
    rows = _metrics_table(ev)
    table = "\n".join("| " + " | ".join(r) + " |" for r in [rows[0], ["---"] * len(rows[0]), *rows[1:]])
    lines = [
        "# Model card: clinic-specialised gaitpose student",
        "",
        f"Built by `gaitpose specialise` on {s['date']} ({s['machine']['cpus']} CPU cores, device "
        f"{s['machine']['device']}, wall-time budget {s['budget_s'] / 60:.0f} min).",
        "",
        "**Not a medical device.** The model agrees with a teacher (MediaPipe BlazePose) on this clinic's "
        "recordings; it has not been validated against motion capture or on patients.",
        "",
        "## Data",
        f"- Training recordings: {', '.join(s['recordings']['train'])}",
        f"- Held-out recordings (never trained on): {', '.join(s['recordings']['held_out'])}",
        f"- Pseudo-labels: MediaPipe BlazePose full on a crop of the one subject per recording and its mirror "
        f"image, every {s['labels']['stride']} frame(s); labelled frames per recording: "
        + ", ".join(f"{k} {v['frames_labelled']}/{v['frames']}" for k, v in s["labels"]["recordings"].items()),
        *(["- Left out (labelling failed): " + "; ".join(failed.values())] if failed else []),
        "",
        "## Training",
        f"- Start: {tr['init'] or 'random weights (no pretrained student was available)'}",
        f"- {plan['epochs']} epochs at input {plan['input_size'][0]}x{plan['input_size'][1]} on "
        f"{tr['train_samples']} labelled crops"
        + (f", distilled from the starting network (weight {tr['distill_weight']:g}) beside the pseudo-labels"
           if tr.get("distill_weight") else ""),
        "- Pruning: " + (f"to {plan['target_macs']:.2f} of the MACs (measured x{pr['summary']['macs_ratio']:.2f}), "
                         f"{pr['plan']}" if pr.get("pruned") else
                         ("skipped: the budget ran out" if pr.get("skipped_for_time")
                          else (f"tried to {plan['target_macs']:.2f} of the MACs and rejected: on the training "
                                f"recordings PCK@0.1 fell from {_f(pr.get('train_pck_before'))} to "
                                f"{_f(pr.get('train_pck_after'))} (at most {100 * MAX_PRUNE_LOSS:g} point allowed); "
                                "the unpruned network ships") if pr.get("rejected")
                          else "none: the network fits the per-crop budget")),
        "- Export: ONNX opset 17; torch/ONNX Runtime parity " + (
            f"on {par['num_crops']} real crops: max |diff| {par['max_abs_diff']:.1e}, max keypoint shift "
            f"{par['max_kp_dist_px']:.3f} px ({'ok' if par['ok'] else 'FAILED'})" if par else "not checked"),
        f"- INT8: {s['int8']['verdict']}",
        "",
        f"## Evaluation on the held-out recordings ({', '.join(ev['test_recordings'])})",
        "",
        f"Agreement with the teacher's labels (PCK@0.1 of the box size); the comparison model is "
        f"{ev['general_label']} ({ev['general'] or 'none found'}). Latency: ONNX Runtime, batch 1, 1 thread, "
        "median, both models measured in the same run on the machine above (shared machines give noisy "
        "absolute times; the ratio is measured side by side)." + general_note,
        "",
        table,
        "",
        f"Per-crop speed-up against the general default: "
        f"{_f(ev.get('speedup_vs_general'), 2)}x (target >= {SPEEDUP_TARGET:g}x).",
        "",
        *([f"**Warning:** {worse}", ""] if (worse := _worse_than_start(ev)) else []),
        "## Limits",
        "- Accuracy is agreement with the teacher's pseudo-labels on other recordings of the same room, "
        "not accuracy against ground truth, and not on new patients.",
        "- One subject per recording; people other than the subject are not labelled.",
        "- Stage timings (s): " + ", ".join(f"{k} {v}" for k, v in s["timings_s"].items()),
    ]
    return "\n".join(lines) + "\n"


def report_html(s: dict[str, Any], figures: Sequence[str]) -> str:
    """A self-contained page (figures beside it under ``figures/``) with the card's numbers."""
    import html

    ev = s["evaluation"]
    rows = _metrics_table(ev)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    imgs = "".join(f'<figure><img src="figures/{html.escape(f)}" alt="{html.escape(f)}"></figure>' for f in figures)
    speed = _f(ev.get("speedup_vs_general"), 2)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gaitpose specialise report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em}}img{{max-width:100%}}</style></head><body>
<h1>Specialised model</h1>
<p>Trained on {html.escape(', '.join(s['recordings']['train']))}; evaluated on the held-out
{html.escape(', '.join(ev['test_recordings']))} against {html.escape(ev['general_label'])}.
Per-crop speed-up: <b>{speed}x</b>. INT8: {html.escape(s['int8']['verdict'])}.</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{imgs}
<p>Stage timings (s): {html.escape(', '.join(f'{k} {v}' for k, v in s['timings_s'].items()))}.
See MODEL_CARD.md for the data, training and limits.</p>
</body></html>
"""


def specialise(opts: SpecialiseOptions, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) ``gaitpose specialise``; returns the summary written to ``OUT/meta.json``."""
    return Specialiser(opts, say).run()
