"""Pre-flight: every check that can fail on bad input, run before any long work (one-line errors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gaitpose.errors import InputError
from gaitpose.specialise.options import OUT_MARKER, SpecialiseOptions


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
