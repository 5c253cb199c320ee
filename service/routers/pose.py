"""``/v1/pose``: keypoints for one image, answered synchronously by the shared ONNX session."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool

from service.housekeeping import scrub_paths
from service.schemas import KeypointOut, PoseOut, Problem
from service.state import AppState, Owner, State

router = APIRouter(prefix="/v1", tags=["pose"])


def _box_from_detection(dets: list[tuple[np.ndarray, float]]) -> np.ndarray | None:
    """Best person box (x, y, w, h) from ``OnnxLocalizer.detect`` (best score first), if any."""
    if not dets:
        return None
    box = np.asarray(dets[0][0], dtype=np.float32).reshape(-1)
    return box[:4] if box.size >= 4 else None


def _predict(state: AppState, data: bytes, box: list[float] | None) -> PoseOut:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise HTTPException(415, "image: not a decodable image (PNG, JPEG, BMP, WebP, ...)")
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    source = "request"
    if box is None:
        found = _box_from_detection(state.localizer.detect(rgb)) if state.localizer is not None else None
        if found is not None and found[2] > 1 and found[3] > 1:
            arr, source = found, "localizer"
        else:
            arr, source = np.array([0, 0, w, h], dtype=np.float32), "image"
    else:
        arr = np.asarray(box, dtype=np.float32)
    with state.pose_lock:  # one image at a time, nothing remembered from the previous request
        if hasattr(state.estimator, "reset"):
            state.estimator.reset()
        res = state.estimator.predict(rgb, [arr])[0]
    names = state.estimator.keypoint_names
    kps = [KeypointOut(name=n, x=float(p[0]), y=float(p[1]), score=float(s))
           for n, p, s in zip(names, res.keypoints, res.scores, strict=True)]
    return PoseOut(model=state.settings.pose_model_path.parent.name or "pose", box=[float(v) for v in arr],
                   box_source=source, image_size=[w, h], keypoints=kps)


@router.post(
    "/pose", response_model=PoseOut,
    responses={400: {"model": Problem}, 401: {"model": Problem}, 413: {"model": Problem},
               415: {"model": Problem}, 503: {"model": Problem}},
    summary="Keypoints of one person in one image",
)
async def pose(
    state: State,
    owner: Owner,
    image: Annotated[UploadFile, File(description="PNG/JPEG image")],
    x: Annotated[float | None, Form(description="Box left, pixels")] = None,
    y: Annotated[float | None, Form(description="Box top, pixels")] = None,
    w: Annotated[float | None, Form(description="Box width, pixels")] = None,
    h: Annotated[float | None, Form(description="Box height, pixels")] = None,
) -> PoseOut:
    """Without a box the localiser (when shipped) finds the person, else the whole image is the box."""
    del owner
    if state.estimator is None:
        raise HTTPException(503, scrub_paths(f"pose model not loaded: {state.model_error or 'unknown reason'}"))
    given = [x, y, w, h]
    if any(v is not None for v in given) and any(v is None for v in given):
        raise HTTPException(422, "give all of x, y, w, h or none")
    box = None if x is None else [float(v) for v in given]  # type: ignore[arg-type]
    if box is not None and (box[2] <= 1 or box[3] <= 1):
        raise HTTPException(422, "box width and height must be > 1 pixel")
    limit = state.settings.pose_upload_limit_bytes
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"image larger than the limit of {state.settings.pose_upload_limit_mb:.0f} MiB")
    if not data:
        raise HTTPException(400, "image: empty file")
    return await run_in_threadpool(_predict, state, data, box)
