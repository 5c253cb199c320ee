"""Disk hygiene and what the API may say about a job.

- :func:`sweep` removes what no job owns: job folders without a row (an upload cut short by a
  crash or a client that went away), half-written result folders (``.results.*.partial`` from a
  run that was killed) and stray files. It runs at start-up (nothing is in flight then, so no
  grace period) and periodically (only folders older than a grace period, never one whose upload
  is in progress).
- :func:`outcome` and :func:`public_summary` turn a worker's result into the job's API record:
  walking found or not, warnings, headline figures and file names, never a server path.
- :func:`scrub_paths` reduces any absolute path in a message to its last component.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Container
from pathlib import Path
from typing import Any

from service.jobs import RUNNING, JobStore

log = logging.getLogger(__name__)

# half-written result folders, a swapped-out old result, a probe of check_out_dir, and a result file
# (overlay.mp4 is rendered after the job succeeded) being written under fsutil.atomic_path's temporary name
STAGING_GLOBS = (".results.*.partial", ".results.*.old", ".gaitpose-probe.*", "results/.*.part*")
PUBLIC_KEYS = ("frames", "fps", "frames_with_pose", "walking_found", "warnings", "cadence_steps_per_min",
               "n_strides", "units", "localizer_calls", "throughput_fps", "elapsed_s", "overlay_pending",
               "pose_model", "fallback_from", "domain_verdict")  # model file names (gaitpose.infer.domain)
_ABS_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s/'\"<>:,;()]+)+/([^\s/'\"<>:,;()]*)")


def scrub_paths(text: str | None) -> str | None:
    """``/srv/data/jobs/ab/upload/x.mp4: corrupt`` -> ``x.mp4: corrupt``: no server layout leaks out."""
    if not text:
        return text
    return _ABS_PATH.sub(lambda m: m.group(1) or "…", text)


def _newest_mtime(path: Path) -> float:
    """Newest modification time of a folder and what is directly below it (and one level further)."""
    newest = path.lstat().st_mtime
    try:
        for child in path.iterdir():
            newest = max(newest, child.lstat().st_mtime)
            if child.is_dir() and not child.is_symlink():
                for grandchild in child.iterdir():
                    newest = max(newest, grandchild.lstat().st_mtime)
    except OSError:
        pass
    return newest


def _remove(path: Path) -> bool:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("sweep: could not remove %s: %s", path, exc)
        return False
    return True


def sweep(data_dir: Path, store: JobStore, in_flight: Container[str] = (), grace_s: float = 0.0) -> dict[str, int]:
    """Remove job folders with no job row, partial result folders and stray files under ``data_dir/jobs``.

    ``in_flight``: ids of uploads being received now (their row does not exist yet).
    ``grace_s``: leave anything modified more recently than this (0 at start-up).
    Partial result folders of a running job are left alone (its worker is writing them).
    """
    root = data_dir / "jobs"
    counts = {"orphan_folders": 0, "partial_results": 0, "stray_files": 0}
    if not root.is_dir():
        return counts
    states = store.states()
    now = time.time()
    for entry in root.iterdir():
        try:
            recent = grace_s > 0 and now - _newest_mtime(entry) < grace_s
        except FileNotFoundError:
            continue
        if recent:
            continue
        if not entry.is_dir() or entry.is_symlink():
            counts["stray_files"] += _remove(entry)
            continue
        status = states.get(entry.name)
        if status is None:
            if entry.name not in in_flight:
                counts["orphan_folders"] += _remove(entry)
            continue
        if status == RUNNING and grace_s > 0:
            continue
        for pattern in STAGING_GLOBS:
            for partial in entry.glob(pattern):
                counts["partial_results"] += _remove(partial)
    if any(counts.values()):
        log.info("sweep removed %d folder(s) with no job, %d partial result folder(s), %d stray file(s)",
                 counts["orphan_folders"], counts["partial_results"], counts["stray_files"])
    return counts


def outcome(result: dict[str, Any] | None, results_dir: Path) -> dict[str, Any]:
    """``walking_found`` (bool or None) and ``warnings`` (list of str) of a finished analysis.

    From the worker's summary when it carries them (top level or its ``engine`` part), else from
    the result folder's metrics.json (the analysis writes both keys there).
    """
    result = result or {}
    engine = result.get("engine") if isinstance(result.get("engine"), dict) else {}
    walking = result.get("walking_found", engine.get("walking_found"))
    warnings = result.get("warnings", engine.get("warnings"))
    if walking is None or warnings is None:
        try:
            metrics = json.loads((results_dir / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
        if isinstance(metrics, dict):
            walking = metrics.get("walking_found", walking)
            warnings = metrics.get("warnings", warnings)
    return {
        "walking_found": None if walking is None else bool(walking),
        "warnings": [scrub_paths(str(w)) for w in warnings] if isinstance(warnings, list) else [],
    }


def public_summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The summary an API client sees: headline figures and file names; no paths, nothing internal."""
    if not result:
        return None
    engine = result.get("engine") if isinstance(result.get("engine"), dict) else {}
    out: dict[str, Any] = {}
    for key in PUBLIC_KEYS:
        value = result.get(key, engine.get(key))
        if value is None:
            continue
        if isinstance(value, str):
            value = scrub_paths(value)
        elif isinstance(value, list):
            value = [scrub_paths(v) if isinstance(v, str) else v for v in value]
        elif not isinstance(value, (int, float, bool)):
            continue
        out[key] = value
    files = result.get("files")
    if isinstance(files, dict):
        files = list(files)
    if isinstance(files, list):
        out["files"] = sorted({Path(str(f)).name for f in files} - {".gaitpose-result"})
    return out


__all__ = ["outcome", "public_summary", "scrub_paths", "sweep"]
