"""Request/response models of the HTTP API (separate from the internal :class:`service.jobs.Job`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gaitpose.result import OUTPUT_FILES

RESULT_FILES = OUTPUT_FILES  # the one list of result file names (gaitpose.result)


class JobOut(BaseModel):
    """State of one analysis job."""

    id: str = Field(examples=["3f1c0a9e6b2d4c7f8a1e2b3c4d5e6f70"])
    status: str = Field(description="queued | running | succeeded | failed", examples=["running"])
    progress: float = Field(description="Percent done, 0-100", examples=[42.0])
    error: str | None = Field(None, description="One-line reason when failed (or a restart note).",
                              examples=["walk.mp4: no person found in the video"])
    filename: str = Field(description="Client file name, sanitised; for display only", examples=["walk.mp4"])
    size_bytes: int
    height_cm: float | None = None
    has_depth: bool = False
    attempts: int = Field(description="Runs started (a restart can re-run a job once)")
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    results: dict[str, str] = Field(default_factory=dict, description="Result file name -> URL (when succeeded)",
                                    examples=[{"metrics.json": "/v1/analyses/3f1c.../metrics.json"}])
    walking_found: bool | None = Field(
        None, description="Succeeded jobs: whether walking (gait cycles) was found; false means the outputs exist "
        "but the gait metrics are empty - see warnings. None until the job succeeded.")
    warnings: list[str] = Field(default_factory=list, description="Warnings of a succeeded analysis (why no "
                                "walking was found, poor tracking, ...)", examples=[["only 1 stride found"]])
    summary: dict[str, Any] | None = Field(None, description="Headline figures of a succeeded analysis (frames, "
                                           "fps, cadence, strides, units) and its result file names")


class JobList(BaseModel):
    jobs: list[JobOut]


class KeypointOut(BaseModel):
    name: str = Field(examples=["left_heel"])
    x: float = Field(examples=[312.5])
    y: float = Field(examples=[401.0])
    score: float = Field(examples=[0.87])


class PoseOut(BaseModel):
    """Keypoints of the person in the given (or found) box, in image pixels."""

    model: str = Field(examples=["student"])
    box: list[float] = Field(description="x, y, w, h used for the crop", examples=[[100.0, 40.0, 120.0, 300.0]])
    box_source: str = Field(description="request | localizer | image", examples=["request"])
    image_size: list[int] = Field(description="width, height", examples=[[640, 360]])
    keypoints: list[KeypointOut]


class ModelOut(BaseModel):
    pose: dict[str, Any] | None
    localizer: dict[str, Any] | None


class Problem(BaseModel):
    detail: str = Field(examples=["upload larger than the limit of 500 MiB"])
