"""Build the FastAPI app: ``create_app(settings)``; also usable as ``uvicorn service.app:create_app --factory``.

Nothing is loaded at import time: the lifespan loads the ONNX models once, opens the job store,
recovers jobs a previous process left behind and starts the worker pool; tests pass their own
settings (tiny model, temporary data folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect

from service.housekeeping import sweep
from service.jobs import JobStore, make_engine
from service.metrics import ServiceMetrics, make_metrics
from service.pool import WorkerPool
from service.routers import analyses, health, pose
from service.security import SecurityHeaders, page_csp
from service.settings import ServiceSettings
from service.state import AppState, load_models
from service.uploads import CLOSE, UploadGate

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class MetricsMiddleware:
    """Count requests by route *template* (bounded label set) and status, as plain ASGI."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client went away (mid-upload, usually): not a server error, nothing to answer.
            # Counted as 499 (nginx's "client closed request"); the route logged one INFO line.
            status["code"] = 499
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope.get("method", ""), str(status["code"])).inc()


class SmallBodyLimit:
    """Bound the bodies of buffered endpoints (``/v1/pose``) before the form parser spools them.

    The analysis upload streams and enforces its own limit; the pose endpoint uses FastAPI's form
    parsing, which would read any size, so it must declare a Content-Length within the limit
    (411 without one, 413 over it). The HTTP server already refuses bodies longer than declared.
    The body must also keep coming: no chunk for ``idle_s`` or the whole body slower than
    ``total_s`` is a 408 (a stalled client would otherwise hold its connection for ever).
    """

    def __init__(self, app, paths: tuple[str, ...], limit: int, idle_s: float = 30.0,
                 total_s: float = 900.0) -> None:
        self.app = app
        self.paths = paths
        self.limit = limit
        self.idle_s = idle_s
        self.total_s = total_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length")
            if declared is None or not declared.isdigit():
                await JSONResponse({"detail": "Content-Length required"}, status_code=411)(scope, receive, send)
                return
            if int(declared) > self.limit:
                detail = f"body larger than the limit of {self.limit / 1048576:.0f} MiB"
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.total_s

            async def timed_receive():
                left = deadline - loop.time()
                try:
                    if left <= 0:
                        raise TimeoutError
                    return await asyncio.wait_for(receive(), timeout=min(self.idle_s, left))
                except TimeoutError:
                    log.info("%s body cut off: stalled or too slow", scope["path"])
                    # an HTTPException passes FastAPI's body parsing unchanged and becomes the answer
                    raise HTTPException(408, f"request body stalled (no data for {self.idle_s:.0f} s) or "
                                        f"slower than {self.total_s:.0f} s", headers=CLOSE) from None

            await self.app(scope, timed_receive, send)
            return
        await self.app(scope, receive, send)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The service app; settings default to ``GAITPOSE_*`` environment variables."""
    settings = settings or ServiceSettings()
    metrics = make_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        t0 = time.perf_counter()
        (settings.data_dir / "jobs").mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.db_url)
        store = JobStore(engine)
        pool = WorkerPool(settings, store, metrics)
        state = AppState(settings=settings, store=store, pool=pool, metrics=metrics,
                         uploads=UploadGate(settings.max_uploads_in_flight, settings.upload_disk_budget_bytes))
        load_models(state)
        # Nothing is in flight yet: whatever a killed process left (an upload with no job row, a
        # half-written result folder) goes now, before the workers start.
        _count_swept(metrics, sweep(settings.data_dir, store))
        pool.start()
        app.state.svc = state
        sweeper = asyncio.create_task(_sweep_periodically(state), name="gaitpose-sweep")
        log.info("gaitpose service started in %.2f s (analyses possible: %s, workers: %d, auth: %s)",
                 time.perf_counter() - t0, state.analysis_unavailable() is None, settings.workers,
                 "api keys" if settings.keys else "none")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            pool.stop()
            engine.dispose()

    app = FastAPI(
        docs_url="/docs" if settings.api_docs else None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/docs/oauth2-redirect" if settings.api_docs else None,
        title="gaitpose edge service",
        version="0.1.0",
        description=(
            "Upload a walk video, get keypoints, gait events, metrics, an overlay video and a report. "
            "Send `X-API-Key` when the service is configured with API keys; each key sees only its own jobs."
        ),
        lifespan=lifespan,
    )
    app.include_router(analyses.router)
    app.include_router(pose.router)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.add_middleware(SmallBodyLimit, paths=("/v1/pose",), limit=settings.pose_upload_limit_bytes + 65536,
                       idle_s=settings.upload_idle_timeout_s, total_s=settings.upload_time_limit_s)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeaders, csp=page_csp(),
                       docs_paths=("/docs", "/docs/oauth2-redirect") if settings.api_docs else ())
    return app


def _count_swept(metrics: ServiceMetrics, counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        if n:
            metrics.swept.labels(kind).inc(n)


async def _sweep_periodically(state: AppState) -> None:
    """Remove what aborted uploads left (folders with no job, not in flight, untouched for ``sweep_grace_s``)."""
    s = state.settings
    while True:
        await asyncio.sleep(s.sweep_interval_s)
        try:
            counts = await run_in_threadpool(sweep, s.data_dir, state.store, state.uploads, s.sweep_grace_s)
            _count_swept(state.metrics, counts)
        except Exception:  # a transient DB or disk error must not end the sweeping
            log.exception("periodic sweep failed")
