"""Label many recordings: in-process, in a process pool, or on Ray; resumable; failures isolated.

Labelling is per recording (the subject is chosen per recording), so the recording is the unit
of work, of caching and of failure:

* each finished recording is written atomically to ``<LABELS.json>.parts/<recording>.json``
  with a fingerprint of its manifest rows and the labelling options; a rerun skips parts whose
  fingerprint matches, so an interrupted run resumes and a changed option relabels;
* a recording that fails (corrupt frame, no person) is reported as one line
  ``<file>: <reason>`` and skipped; the others go on; the summary lists the failures and the
  command exits non-zero;
* the final file merges the finished parts. When some recordings failed it is still written,
  with ``info.failed_recordings`` naming them, so the labels that exist are usable and it is
  plain from the file itself that it is incomplete. When every recording failed nothing is
  written.

``engine="ray"`` runs the same task function as Ray tasks (``ray.init(address)``, or a local
instance); Ray is imported only then.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaitpose.errors import GaitposeError
from gaitpose.fsutil import write_json_atomic

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    parts: list[dict[str, Any]] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # recording -> one-line message
    skipped: list[str] = field(default_factory=list)  # resumed from cache
    labels: dict[str, Any] | None = None  # the merged COCO dict (None when nothing succeeded)


def parts_dir_for(out_path: str | os.PathLike[str]) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".parts")


def _safe_name(recording: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", recording) or "_"


def _load_part(path: Path, fingerprint: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return part if part.get("fingerprint") == fingerprint else None


def label_task(frames_dir: str, recording: str, rows: list[dict[str, Any]], opts: dict[str, Any],
               part_path: str, fingerprint: str) -> dict[str, Any]:
    """One recording, start to finish, in whatever process runs it; never raises.

    Returns ``{"ok": True, "part": ...}`` or ``{"ok": False, "error": "<file>: <reason>"}``.
    The teacher is built here (not pickled) because MediaPipe and ONNX Runtime sessions do
    not cross process boundaries.
    """
    from data_tools.label import LabelOptions, label_recording
    from data_tools.teachers import make_teacher

    options = LabelOptions(**opts)
    teacher = None
    try:
        teacher = make_teacher(options.teacher, options.teacher_config)
        part = label_recording(frames_dir, recording, rows, teacher, options)
        part["fingerprint"] = fingerprint
        write_json_atomic(part_path, part)
        return {"ok": True, "part": part}
    except (GaitposeError, ValueError, FileNotFoundError, PermissionError) as exc:
        return {"ok": False, "error": str(exc).replace("\n", " ")}
    except Exception as exc:  # a bug in one recording must not stop the others; keep the trace in the log
        log.debug("recording %s failed:\n%s", recording, traceback.format_exc())
        return {"ok": False, "error": f"{Path(frames_dir) / recording}: {type(exc).__name__}: {exc}".replace("\n", " ")}
    finally:
        if teacher is not None:
            teacher.close()


def run_batch(
    frames_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    recordings: dict[str, list[dict[str, Any]]],
    opts: Any,
    workers: int = 1,
    engine: str = "local",
    ray_address: str | None = None,
    on_error: Callable[[str], None] | None = None,
    show_progress: bool = True,
) -> BatchResult:
    """Label every recording (resuming finished ones), then merge and write ``out_path`` atomically."""
    from tqdm import tqdm

    from data_tools.label import merge_parts, recording_fingerprint, write_labels

    frames_dir = str(Path(frames_dir).resolve())
    parts_dir = parts_dir_for(out_path)
    parts_dir.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    todo = []
    for rec in sorted(recordings):
        fp = recording_fingerprint(recordings[rec], opts)
        part_path = parts_dir / f"{_safe_name(rec)}.json"
        cached = _load_part(part_path, fp)
        if cached is not None:
            result.parts.append(cached)
            result.skipped.append(rec)
        else:
            todo.append((frames_dir, rec, recordings[rec], asdict(opts), str(part_path), fp))
    if result.skipped:
        log.info("resuming: %d recording(s) already labelled", len(result.skipped))

    def handle(rec: str, out: dict[str, Any]) -> None:
        if out["ok"]:
            result.parts.append(out["part"])
        else:
            result.failed[rec] = out["error"]
            if on_error is not None:
                on_error(out["error"])

    bar = tqdm(total=len(todo), desc="label", unit="rec", disable=not show_progress or not todo)
    if engine == "ray":
        _run_ray(todo, workers, ray_address, handle, bar)
    elif engine != "local":
        raise ValueError(f"unknown engine {engine!r}; choose local or ray")
    elif workers <= 1 or len(todo) <= 1:
        for task in todo:
            handle(task[1], label_task(*task))
            bar.update(1)
    else:
        import multiprocessing as mp

        # spawn: MediaPipe/ONNX Runtime threads do not survive fork safely
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(label_task, *task): task[1] for task in todo}
            for fut in as_completed(futures):
                handle(futures[fut], fut.result())
                bar.update(1)
    bar.close()
    if result.parts:
        teacher_name = opts.teacher
        result.labels = merge_parts(result.parts, out_path, frames_dir, teacher_name, opts, result.failed)
        write_labels(result.labels, out_path)
    return result


def _run_ray(todo: list[tuple], workers: int, address: str | None, handle: Callable, bar: Any) -> None:
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = max(1, workers)
        ray.init(**kwargs)
    remote = ray.remote(label_task)
    pending = {remote.remote(*task): task[1] for task in todo}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            rec = pending.pop(ref)
            handle(rec, ray.get(ref))
            bar.update(1)
