"""Job queue behaviour: persistence across restarts, re-run/fail policy, 429, fencing and cancellation."""

from __future__ import annotations

import time

import httpx
from fastapi.testclient import TestClient
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    live_server_factory_fixture,
    make_settings,
    tiny_models_fixture,
    upload,
    wait_terminal,
)

from service.app import create_app
from service.jobs import FAILED, QUEUED, RUNNING, JobStore, jobs_table, make_engine


def _store(settings) -> JobStore:
    return JobStore(make_engine(settings.db_url))


def test_queue_full_is_429_with_retry_after(tiny_models, tmp_path):
    settings = make_settings(tmp_path, *tiny_models, workers=0, max_queue=2)
    with TestClient(create_app(settings)) as c:
        assert [upload(c).status_code for _ in range(2)] == [202, 202]
        r = upload(c)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert len(c.get("/v1/analyses").json()["jobs"]) == 2
        deadline = time.monotonic() + 5
        while "gaitpose_queue_depth 2.0" not in c.get("/metrics").text:
            assert time.monotonic() < deadline, "queue depth gauge not updated"
            time.sleep(0.1)
    assert len(list((settings.data_dir / "jobs").iterdir())) == 2  # the refused upload left nothing


def _mark_running(store: JobStore, job_id: str, attempts: int) -> None:
    """What a crash mid-analysis leaves behind: the row still says running."""
    with store.engine.begin() as conn:
        conn.execute(jobs_table.update().where(jobs_table.c.id == job_id)
                     .values(status=RUNNING, attempts=attempts, started_at=time.time()))


def test_queued_and_interrupted_jobs_run_after_restart(tiny_models, tmp_path, live_server_factory):
    # 1st life accepts only (no workers): each upload is durable before its 202
    accept_only = make_settings(tmp_path, *tiny_models, workers=0)
    with TestClient(create_app(accept_only)) as c:
        queued, rerun, gave_up = (upload(c).json()["id"] for _ in range(3))
    store = _store(accept_only)
    assert store.get(queued).status == QUEUED
    _mark_running(store, rerun, attempts=1)  # interrupted on its first run -> re-run once
    _mark_running(store, gave_up, attempts=2)  # interrupted on its re-run -> failed with the reason

    # 2nd life with a worker
    srv = live_server_factory(make_settings(tmp_path, *tiny_models, workers=1, max_attempts=2))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        failed = c.get(f"/v1/analyses/{gave_up}").json()
        assert failed["status"] == FAILED and "restart" in failed["error"]
        done = wait_terminal(c, rerun)
        assert done["attempts"] == 2
        if done["status"] == FAILED:  # a real analysis outcome, not the restart note
            assert "restart" not in done["error"]
        assert wait_terminal(c, queued)["attempts"] == 1
    # a stale worker of the first run cannot overwrite the re-run's outcome (fenced by attempt)
    assert not store.succeed(rerun, 1, {"frames": 1})
    assert store.get(rerun).status == done["status"]


def test_delete_cancels_a_running_job(tiny_models, tmp_path, live_server_factory):
    srv = live_server_factory(make_settings(tmp_path, *tiny_models, workers=1))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        job = upload(c).json()
        deadline = time.monotonic() + 30
        while c.get(f"/v1/analyses/{job['id']}").json()["status"] == QUEUED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.delete(f"/v1/analyses/{job['id']}").status_code == 204
        assert c.get(f"/v1/analyses/{job['id']}").status_code == 404
        deadline = time.monotonic() + 15
        while srv.app.state.svc.pool.running:
            assert time.monotonic() < deadline, "worker not stopped"
            time.sleep(0.1)
    assert not (tmp_path / "data" / "jobs" / job["id"]).exists()
