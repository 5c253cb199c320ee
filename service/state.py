"""Everything the routes share, built once by the app's lifespan (models, job store, pool, metrics)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from service.jobs import JobStore
from service.metrics import ServiceMetrics
from service.pool import WorkerPool
from service.settings import ServiceSettings, owner_of
from service.uploads import UploadGate

log = logging.getLogger(__name__)


@dataclass
class AppState:
    settings: ServiceSettings
    store: JobStore
    pool: WorkerPool
    metrics: ServiceMetrics
    estimator: Any | None = None  # gaitpose.infer.blazepose.load_pose_estimator: BlazePose or a student
    # /v1/pose requests run on a thread pool; a BlazePoseEstimator remembers its last ROI, so one
    # request at a time, each from a reset estimator (analysis jobs build their own in their process)
    pose_lock: threading.Lock = field(default_factory=threading.Lock)
    localizer: Any | None = None  # gaitpose.infer.localizer.OnnxLocalizer
    model_info: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    model_error: str | None = None
    localizer_error: str | None = None
    # serialises "queue has room?" + insert, so concurrent uploads cannot overshoot max_queue
    admission: asyncio.Lock = field(default_factory=asyncio.Lock)
    uploads: UploadGate = field(default_factory=lambda: UploadGate(1, 0))  # replaced from settings by the app

    def analysis_unavailable(self) -> str | None:
        """Why analyses cannot run now (the engine needs both models), or None when they can.

        Said to API clients, so server paths are reduced to file names (the log has them in full).
        """
        from service.housekeeping import scrub_paths

        if self.estimator is None:
            return scrub_paths(f"pose model not loaded: {self.model_error or 'unknown reason'}")
        if self.localizer is None:
            return scrub_paths(f"person localizer not loaded: {self.localizer_error or 'unknown reason'}")
        return None


def load_models(state: AppState) -> None:
    """Load the ONNX models once; a missing or broken model leaves the service up but not ready."""
    from gaitpose.errors import InputError
    from gaitpose.fsutil import file_sha256
    from gaitpose.infer.blazepose import load_pose_estimator

    s = state.settings
    path = s.pose_model_path
    try:
        state.estimator = load_pose_estimator(path, s.threads, spinning=False)
        from gaitpose.infer.domain import reference_for

        reference_for(path, state.estimator)  # a broken meta.json beside the model: not ready, said at start
        meta = asdict(state.estimator.meta)
        state.model_info["pose"] = {"path": path.name, "sha256": file_sha256(path), "meta": meta}
    except InputError as exc:
        state.model_error = str(exc)
        log.error("pose model not loaded: %s", exc)
        state.model_info["pose"] = None
    loc = s.localizer_model_path
    state.model_info["localizer"] = None
    try:
        from gaitpose.infer.localizer import OnnxLocalizer

        state.localizer = OnnxLocalizer(loc, s.threads)
        state.model_info["localizer"] = {"path": loc.name, "sha256": file_sha256(loc),
                                         "meta": asdict(state.localizer.meta)}
    except (ImportError, InputError) as exc:
        state.localizer_error = str(exc)
        log.error("localizer not loaded (%s): analyses refused; /v1/pose needs a box or uses the whole image", exc)


def get_state(request: Request) -> AppState:
    return request.app.state.svc


State = Annotated[AppState, Depends(get_state)]


def require_owner(state: State, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """Owner id of the caller: the hash of a valid key, or '' when the service runs without keys."""
    keys = state.settings.keys
    if not keys:
        return ""
    if x_api_key:
        given = x_api_key.encode("utf-8")
        # compare against every key so timing does not tell which one nearly matched
        ok = [hmac.compare_digest(given, k.encode("utf-8")) for k in keys]
        if any(ok):
            return owner_of(x_api_key)
    raise HTTPException(401, "missing or invalid API key (send it in the X-API-Key header)",
                        headers={"WWW-Authenticate": "ApiKey"})


Owner = Annotated[str, Depends(require_owner)]
