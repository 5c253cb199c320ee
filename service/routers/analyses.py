"""``/v1/analyses``: upload a walk video, follow the job, fetch its result files."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.requests import ClientDisconnect

from gaitpose.options import check_height_cm
from service.housekeeping import outcome, public_summary, scrub_paths
from service.jobs import QUEUED, SUCCEEDED, Job, new_job_id
from service.pool import job_dir, remove_job_files
from service.schemas import RESULT_FILES, JobList, JobOut, Problem
from service.security import RESULT_CSP
from service.state import Owner, State
from service.uploads import (
    CLOSE,
    UploadTimeout,
    fsync_dir,
    receive_multipart,
    sniff_depth,
    sniff_video,
    timed_stream,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/analyses", tags=["analyses"])

MEDIA_TYPES = {
    ".json": "application/json", ".csv": "text/csv", ".mp4": "video/mp4", ".html": "text/html",
    ".png": "image/png",
}
UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["video"],
                    "properties": {
                        "video": {"type": "string", "format": "binary",
                                  "description": "Walk recording (mp4/mov, mkv/webm, avi, mpeg)"},
                        "depth": {"type": "string", "format": "binary",
                                  "description": "Optional depth recording (RealSense .bag, Kinect .mkv, ...)"},
                        "height_cm": {"type": "number", "description": "Subject height for metric scaling",
                                      "example": 172},
                    },
                },
            }
        },
    }
}


def job_out(job: Job, data_dir: Path) -> JobOut:
    """The API record of a job: no server paths, the outcome of a finished analysis spelled out."""
    results: dict[str, str] = {}
    walking, warnings = None, []
    if job.status == SUCCEEDED and job.result:
        files = job.result.get("files")
        present = ({Path(str(f)).name for f in files} if isinstance(files, (list, dict)) and files
                   else set(RESULT_FILES))
        if job.result.get("overlay_pending") and (job_dir(data_dir, job.id) / "results" / "overlay.mp4").is_file():
            present.add("overlay.mp4")  # rendered after the job succeeded
        results = {name: f"/v1/analyses/{job.id}/{name}" for name in RESULT_FILES if name in present}
        found = outcome(job.result, job_dir(data_dir, job.id) / "results")
        walking, warnings = found["walking_found"], found["warnings"]
    return JobOut(
        id=job.id, status=job.status, progress=round(job.progress, 1), error=scrub_paths(job.error),
        filename=job.filename, size_bytes=job.size_bytes, height_cm=job.height_cm,
        has_depth=job.depth_path is not None, attempts=job.attempts, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at, results=results,
        walking_found=walking, warnings=warnings, summary=public_summary(job.result),
    )


def _stored_name(client_name: str, ext: str, taken: str | None = None) -> str:
    """File name for the stored video: the client's (sanitised) stem with the sniffed extension.

    Why the client's name: the analysis writes it into the report (``Video: walk_3.mp4``), where
    a server-chosen ``video.mp4`` means nothing to the clinician.
    """
    stem = client_name.rsplit(".", 1)[0] if "." in client_name else client_name
    # file systems limit a name to 255 *bytes*: cut the UTF-8 form, not the characters
    stem = stem.encode("utf-8")[:150].decode("utf-8", "ignore").strip(" .") or "video"
    name = f"{stem}.{ext}"
    return f"{stem}_video.{ext}" if name == taken else name


def _queue_full(state) -> None:
    if state.store.count(QUEUED) >= state.settings.max_queue:
        raise HTTPException(429, f"analysis queue is full ({state.settings.max_queue} waiting); retry later",
                            headers={"Retry-After": "30"})


@router.post(
    "", status_code=202, response_model=JobOut, openapi_extra=UPLOAD_DOC,
    responses={400: {"model": Problem}, 401: {"model": Problem}, 413: {"model": Problem},
               415: {"model": Problem}, 429: {"model": Problem}, 503: {"model": Problem}},
    summary="Upload a video for gait analysis",
)
async def create_analysis(request: Request, state: State, owner: Owner) -> JSONResponse:
    """Stream the upload to disk, commit the job, answer 202; the analysis runs in a worker process.

    The upload is fully on disk (fsynced) and the job row committed before 202 is sent, so an
    accepted upload survives any crash after this point.
    """
    s = state.settings
    why = state.analysis_unavailable()
    if why:
        raise HTTPException(503, scrub_paths(why), headers=CLOSE)
    await run_in_threadpool(_queue_full, state)
    declared = request.headers.get("content-length")
    cap = s.upload_limit_bytes + 65536  # the file parts' limit plus room for the multipart framing
    if declared and declared.isdigit() and int(declared) > cap:
        raise HTTPException(413, f"upload larger than the limit of {s.upload_limit_mb:.0f} MiB", headers=CLOSE)
    # Reserve a slot and the disk this body can take before reading a byte of it: the server never
    # delivers more than the declared length, and without one the upload limit is reserved.
    reserve = min(int(declared), cap) if declared and declared.isdigit() else cap
    job_id = new_job_id()
    busy = state.uploads.try_acquire(job_id, reserve)
    if busy:
        state.metrics.uploads_refused.labels("busy").inc()
        raise HTTPException(429, busy, headers={"Retry-After": "10", **CLOSE})
    root = job_dir(s.data_dir, job_id)
    received = {"bytes": 0}

    async def counted() -> AsyncIterator[bytes]:
        async for chunk in timed_stream(request.stream(), s.upload_idle_timeout_s, s.upload_time_limit_s):
            received["bytes"] += len(chunk)
            yield chunk

    try:
        state.metrics.uploads_in_flight.set(len(state.uploads.reservations))
        state.metrics.upload_reserved_bytes.set(state.uploads.reserved)
        free = shutil.disk_usage(s.data_dir).free
        if free - reserve < s.min_free_disk_bytes:
            raise HTTPException(507, f"not enough free disk for this upload ({free / 1048576:.0f} MiB free, "
                                f"{s.min_free_disk_mb:.0f} MiB kept for results)", headers=CLOSE)
        updir = root / "upload"
        updir.mkdir(parents=True)
        form = await receive_multipart(
            request.headers.get("content-type", ""), counted(), updir, min(s.upload_limit_bytes, reserve),
            ("video", "depth"), sniffers={"video": sniff_video, "depth": sniff_depth},
            kinds={"video": "video file", "depth": "depth recording"},
        )
        video = form.files.get("video")
        if video is None:
            raise HTTPException(400, "missing the 'video' file field")
        if video.size == 0:
            raise HTTPException(400, f"{video.client_name}: empty file")
        vext = sniff_video(video.head)
        depth = form.files.get("depth")
        dext = None
        if depth is not None:
            if depth.size == 0:
                raise HTTPException(400, f"{depth.client_name}: empty depth file")
            dext = sniff_depth(depth.head)
        height = None
        raw_h = form.fields.get("height_cm", "").strip()
        if raw_h:
            try:
                height = check_height_cm(raw_h)  # the same rule as gaitpose analyze --height-cm
            except ValueError as exc:
                raise HTTPException(422, str(exc).replace("--height-cm", "height_cm")) from None
        dpath = updir / f"depth.{dext}" if depth is not None else None
        vpath = updir / _stored_name(video.client_name, vext, dpath.name if dpath else None)
        os.replace(video.path, vpath)
        if depth is not None:
            os.replace(depth.path, dpath)
        fsync_dir(updir)
        async with state.admission:
            await run_in_threadpool(_queue_full, state)
            job = await run_in_threadpool(
                state.store.create, job_id, owner, video.client_name, str(vpath.resolve()),
                str(dpath.resolve()) if dpath else None, height, video.size + (depth.size if depth else 0),
            )
    except UploadTimeout as exc:
        shutil.rmtree(root, ignore_errors=True)
        state.metrics.uploads_refused.labels("timeout").inc()
        log.info("upload %s cut off after %d bytes: %s", job_id[:8], received["bytes"], exc)
        raise HTTPException(408, str(exc), headers=CLOSE) from None
    except ClientDisconnect:
        shutil.rmtree(root, ignore_errors=True)
        state.metrics.uploads_refused.labels("client_gone").inc()
        log.info("upload %s abandoned by the client after %d bytes; nothing kept", job_id[:8], received["bytes"])
        raise
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        state.uploads.release(job_id)
        state.metrics.uploads_in_flight.set(len(state.uploads.reservations))
        state.metrics.upload_reserved_bytes.set(state.uploads.reserved)
    state.pool.notify()
    location = f"/v1/analyses/{job.id}"
    return JSONResponse(job_out(job, s.data_dir).model_dump(), status_code=202, headers={"Location": location})


@router.get("", response_model=JobList, summary="List your analyses, newest first")
def list_analyses(state: State, owner: Owner, limit: int = 100) -> JobList:
    jobs = state.store.list(owner, max(1, min(limit, 1000)))
    return JobList(jobs=[job_out(j, state.settings.data_dir) for j in jobs])


def _own_job(state, owner: str, job_id: str) -> Job:
    job = state.store.get(job_id, owner) if len(job_id) <= 64 else None
    if job is None:
        raise HTTPException(404, "no such analysis")
    return job


@router.get("/{job_id}", response_model=JobOut, responses={404: {"model": Problem}}, summary="Job status")
def get_analysis(job_id: str, state: State, owner: Owner) -> JobOut:
    return job_out(_own_job(state, owner, job_id), state.settings.data_dir)


@router.delete("/{job_id}", status_code=204, responses={404: {"model": Problem}},
               summary="Delete a job, its upload and results (cancels a running analysis)")
def delete_analysis(job_id: str, state: State, owner: Owner) -> Response:
    _own_job(state, owner, job_id)
    state.store.delete(job_id)
    state.pool.cancel(job_id)
    remove_job_files(state.settings.data_dir, job_id)
    return Response(status_code=204)


@router.get(
    "/{job_id}/video",
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {"model": Problem}},
    summary="The uploaded video as received (the web page draws the skeleton over it from keypoints.json)",
)
def get_upload(job_id: str, state: State, owner: Owner) -> FileResponse:
    job = _own_job(state, owner, job_id)
    path = Path(job.video_path)
    if not path.is_file():
        raise HTTPException(404, "the uploaded video is no longer stored")
    media = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".mkv": "video/x-matroska",
             ".avi": "video/x-msvideo"}.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"Content-Disposition": "inline"})


@router.get(
    "/{job_id}/{name}",
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {"model": Problem},
               409: {"model": Problem}},
    summary="Download one result file: " + ", ".join(RESULT_FILES),
)
def get_result(job_id: str, name: str, state: State, owner: Owner) -> FileResponse:
    if name not in RESULT_FILES:
        raise HTTPException(404, f"unknown result file; one of {', '.join(RESULT_FILES)}")
    job = _own_job(state, owner, job_id)
    if job.status != SUCCEEDED:
        raise HTTPException(409, f"analysis is {job.status}; results exist only when it succeeded")
    path: Path = job_dir(state.settings.data_dir, job.id) / "results" / name
    if not path.is_file():
        raise HTTPException(404, f"{name} was not produced for this analysis")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix],
                        headers={"Content-Disposition": f'inline; filename="{job.id[:8]}-{name}"',
                                 "Content-Security-Policy": RESULT_CSP})
