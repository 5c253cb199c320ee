"""Prometheus metrics, one registry per app so several apps (tests) never share counters."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ServiceMetrics:
    registry: CollectorRegistry
    requests: Counter
    job_duration: Histogram
    queue_depth: Gauge
    running_jobs: Gauge
    frames: Counter
    jobs_finished: Counter
    uploads_in_flight: Gauge
    upload_reserved_bytes: Gauge
    uploads_refused: Counter
    swept: Counter


def make_metrics() -> ServiceMetrics:
    reg = CollectorRegistry(auto_describe=True)
    m = ServiceMetrics(
        registry=reg,
        requests=Counter("gaitpose_http_requests", "HTTP requests by route template, method and status",
                         ["route", "method", "status"], registry=reg),
        job_duration=Histogram("gaitpose_job_duration_seconds", "Wall time of analysis runs by outcome",
                               ["status"], registry=reg,
                               buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)),
        queue_depth=Gauge("gaitpose_queue_depth", "Jobs waiting for a worker", registry=reg),
        running_jobs=Gauge("gaitpose_running_jobs", "Jobs being analysed now", registry=reg),
        frames=Counter("gaitpose_frames_processed", "Video frames analysed by finished jobs", registry=reg),
        jobs_finished=Counter("gaitpose_jobs_finished", "Jobs that reached a terminal state", ["status"],
                              registry=reg),
        uploads_in_flight=Gauge("gaitpose_uploads_in_flight", "Analysis uploads being received", registry=reg),
        upload_reserved_bytes=Gauge("gaitpose_upload_reserved_bytes", "Disk reserved by uploads in flight",
                                    registry=reg),
        uploads_refused=Counter("gaitpose_uploads_refused", "Uploads refused or cut off before a job existed, "
                                "by reason (busy, timeout, client_gone)", ["reason"], registry=reg),
        swept=Counter("gaitpose_swept", "Leftovers removed by the sweep, by kind", ["kind"], registry=reg),
    )
    for status in ("succeeded", "failed"):  # export both series from the start (rate() needs a zero)
        m.job_duration.labels(status)
        m.jobs_finished.labels(status)
    for reason in ("busy", "timeout", "client_gone"):
        m.uploads_refused.labels(reason)
    return m
