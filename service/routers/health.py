"""Liveness, readiness, model metadata and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.schemas import ModelOut
from service.state import Owner, State

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Models loaded and the job store reachable",
            responses={503: {"description": "not ready"}})
def readyz(state: State) -> dict[str, object]:
    why = state.analysis_unavailable()
    if why:
        raise HTTPException(503, why)
    queued = state.store.count("queued")
    return {"status": "ready", "queued": queued, "running": state.pool.running}


@router.get("/v1/model", response_model=ModelOut, summary="Metadata of the loaded models")
def model(state: State, owner: Owner) -> ModelOut:
    del owner
    return ModelOut(pose=state.model_info.get("pose"), localizer=state.model_info.get("localizer"))


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
