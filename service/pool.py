"""Bounded pool of analysis worker processes, fed from the job table by one dispatcher thread.

Why one spawned process per run rather than a long-lived executor: a run can be cancelled
(DELETE) by ending its process, a crash or OOM in native decoding code takes down only that run,
and memory is returned after every video. The spawn start method keeps the children free of the
API process's threads and sockets. Start-up costs about a second, small next to an analysis.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from service.jobs import FAILED, QUEUED, RUNNING, SUCCEEDED, Job, JobStore
from service.metrics import ServiceMetrics
from service.settings import ServiceSettings
from service.worker import run_job

log = logging.getLogger(__name__)


def job_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "jobs" / job_id


@dataclass
class _Run:
    process: mp.process.BaseProcess
    attempt: int
    started: float
    cancelled: bool = False


class WorkerPool:
    """Keeps at most ``settings.workers`` analyses running; the DB is the queue."""

    def __init__(self, settings: ServiceSettings, store: JobStore, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._ctx = mp.get_context("spawn")
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        requeued, failed = self.store.recover(self.settings.max_attempts)
        if requeued or failed:
            log.warning("restart recovery: %d interrupted job(s) re-queued, %d failed", requeued, failed)
        self._thread = threading.Thread(target=self._loop, name="gaitpose-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End running analyses and give their jobs back to the queue (no attempt is used up)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            runs = dict(self._runs)
            self._runs.clear()
        for job_id, run in runs.items():
            self._end_process(run.process)
            self.store.requeue(job_id, run.attempt, note="interrupted by a server shutdown; re-queued",
                               refund=True)

    def notify(self) -> None:
        """A job was queued: dispatch now rather than at the next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        """Stop a running analysis (its row is deleted by the caller). True if one was running."""
        with self._lock:
            run = self._runs.get(job_id)
            if run is not None:
                run.cancelled = True
        if run is None:
            return False
        self._end_process(run.process)
        return True

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._runs)

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _end_process(proc: mp.process.BaseProcess) -> None:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._dispatch()
                self.metrics.queue_depth.set(self.store.count(QUEUED))
                self.metrics.running_jobs.set(self.running)
            except Exception:  # the dispatcher must outlive a transient DB error
                log.exception("dispatcher iteration failed")
            self._wake.wait(0.25)
            self._wake.clear()

    def _dispatch(self) -> None:
        s = self.settings
        while not self._stop.is_set() and self.running < s.workers:
            job = self.store.claim_next()
            if job is None:
                return
            out = job_dir(s.data_dir, job.id) / "results"
            loc = s.localizer_model_path
            kwargs = dict(
                db_url=s.db_url, job_id=job.id, attempt=job.attempts, filename=job.filename,
                video=job.video_path, depth=job.depth_path, out_dir=str(out), height_cm=job.height_cm,
                model=str(s.pose_model_path), localizer=str(loc),
                threads=s.threads, overlay=s.overlay, parent_pid=os.getpid(), fallback=s.fallback,
                general_model=str(s.general_model_path),
            )
            proc = self._ctx.Process(target=run_job, kwargs=kwargs, name=f"gaitpose-job-{job.id[:8]}")
            proc.start()
            log.info("job %s attempt %d started in pid %s", job.id, job.attempts, proc.pid)
            with self._lock:
                self._runs[job.id] = _Run(proc, job.attempts, time.monotonic())

    def _reap(self) -> None:
        with self._lock:
            done = {k: r for k, r in self._runs.items() if not r.process.is_alive()}
            for k in done:
                del self._runs[k]
        for job_id, run in done.items():
            run.process.join()
            job = self.store.get(job_id)
            if job is None or run.cancelled:
                shutil.rmtree(job_dir(self.settings.data_dir, job_id), ignore_errors=True)
                continue
            if job.status == RUNNING and job.attempts == run.attempt:
                code = run.process.exitcode
                self.store.fail(job_id, run.attempt, f"worker process ended unexpectedly (exit code {code})")
                job = self.store.get(job_id)
            if job is None or job.status not in (SUCCEEDED, FAILED):
                continue
            if job.status == SUCCEEDED:
                self._complete_outcome(job)
            self.metrics.job_duration.labels(job.status).observe(time.monotonic() - run.started)
            self.metrics.jobs_finished.labels(job.status).inc()
            if job.result:
                self.metrics.frames.inc(int(job.result.get("frames") or 0))
            log.info("job %s %s", job_id, job.status)


    def _complete_outcome(self, job: Job) -> None:
        """Store walking found / warnings in the job's result when the worker's summary lacks them."""
        result = dict(job.result or {})
        if "walking_found" in result and "warnings" in result:
            return
        from service.housekeeping import outcome

        result.update(outcome(result, job_dir(self.settings.data_dir, job.id) / "results"))
        self.store.complete_result(job.id, result)


def remove_job_files(data_dir: Path, job_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(job_dir(data_dir, job_id))
