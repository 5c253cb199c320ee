"""Code that runs inside an analysis worker process (spawned, one process per job run).

One process per run keeps the API process small and lets the server cancel a job (DELETE) or
survive a crash in native code (a corrupt video, OOM) by simply ending or losing that process.
The worker reports progress and its terminal state straight to the database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError
from service.jobs import JobStore, make_engine

log = logging.getLogger(__name__)


class _Cancelled(Exception):
    """Raised from the progress callback when the job was deleted or superseded."""


def _watch_parent(parent_pid: int) -> None:
    """Exit when the API process dies (even by SIGKILL): an orphan must not keep working."""
    while True:
        if os.getppid() != parent_pid:
            os._exit(3)
        time.sleep(0.5)


def run_job(*, db_url: str, job_id: str, attempt: int, filename: str, video: str, depth: str | None,
            out_dir: str, height_cm: float | None, model: str, localizer: str, threads: int | None,
            overlay: bool, parent_pid: int, fallback: bool = True, general_model: str | None = None) -> None:
    """Analyse one upload and record the outcome; every failure becomes a one-line reason in the DB."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    store = JobStore(make_engine(db_url))
    last = {"t": 0.0, "p": -1.0}

    def progress(fraction: float) -> None:
        pct = max(0.0, min(100.0, float(fraction) * 100.0))
        now = time.monotonic()
        if pct - last["p"] < 1.0 and now - last["t"] < 1.0:
            return
        last.update(t=now, p=pct)
        if not store.set_progress(job_id, attempt, min(pct, 99.0)):
            raise _Cancelled

    out = Path(out_dir)
    try:
        from gaitpose.analyze import analyze_video

        # The overlay video is rendered after the results are published (below): the user gets the
        # numbers without waiting for the slowest output, and the page draws the skeleton itself.
        res = analyze_video(
            Path(video), out, depth=Path(depth) if depth else None, model=Path(model),
            localizer=Path(localizer), height_cm=height_cm, threads=threads, progress=progress, overlay=False,
            fallback=fallback, general_model=Path(general_model) if general_model else None,
        )
    except _Cancelled:
        log.info("job %s attempt %d cancelled", job_id, attempt)
        return
    except Exception as exc:
        # Map the engine's errors to a line that names the client's file, never a server path.
        if isinstance(exc, InputError):
            if exc.path in (video, depth, None):
                msg = f"{'depth file' if depth and exc.path == depth else filename}: {exc.reason}"
            else:
                msg = str(exc)
        elif isinstance(exc, ImportError):
            msg = f"analysis engine unavailable: {exc}"
        else:
            log.exception("job %s failed", job_id)
            msg = f"analysis failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        store.fail(job_id, attempt, msg.replace(video, "video").replace(out_dir, "results"))
        return
    if not store.succeed(job_id, attempt, job_summary(res, overlay_pending=overlay)):
        return  # deleted or superseded meanwhile: no overlay for a job nobody wants
    if overlay:
        try:
            from gaitpose.report.outputs import write_overlay_video

            write_overlay_video(res, out / "overlay.mp4")
        except Exception:  # the job's results stand; only the optional video is missing
            log.exception("job %s: overlay video failed", job_id)


def job_summary(res: Any, overlay_pending: bool = False) -> dict[str, Any]:
    """The job record's summary: ``AnalysisResult.summary()`` (file names only, no server paths).

    Always has ``frames``, ``walking_found`` (bool), ``warnings`` (list of str) and ``files``;
    ``overlay_pending`` says overlay.mp4 is still being rendered after the results were published.
    """
    summary: dict[str, Any] = res.summary()
    summary["walking_found"] = bool(summary.get("walking_found"))
    summary["warnings"] = [str(w) for w in summary.get("warnings") or []]
    summary["overlay_pending"] = bool(overlay_pending)
    return summary
