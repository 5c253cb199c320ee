"""Service configuration from ``GAITPOSE_*`` environment variables (pydantic-settings).

Settings are an explicit object passed to ``create_app`` so tests can inject a tiny model and a
temporary data folder; nothing is read at import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gaitpose.registry import GENERAL_POSE_MODEL, LOCALIZER_MODEL, POSE_MODEL, default_service_data_dir, model_path


class ServiceSettings(BaseSettings):
    """Every knob of the edge service; each field ``x`` is read from ``GAITPOSE_X``."""

    model_config = SettingsConfigDict(env_prefix="GAITPOSE_", extra="ignore")

    model_dir: Path | None = Field(
        None, description="Folder holding student/ and localizer/ models; default: the shipped models, found "
        "as the CLI finds them (gaitpose.registry.default_model_dir), wherever the service is started.")
    pose_model: Path | None = Field(
        None, description="Pose ONNX model, or a `gaitpose specialise` output folder (its model.onnx); default "
        "<model_dir>/general/blazepose_full.onnx (the general model; the fast student is "
        "<model_dir>/student/model.onnx).")
    localizer_model: Path | None = Field(
        None, description="Person localiser ONNX model; default <model_dir>/localizer/model.onnx (optional)."
    )
    data_dir: Path = Field(default_factory=default_service_data_dir,
                           description="Uploads, results and the default SQLite DB (a per-user data folder).")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default sqlite:///<data_dir>/jobs.db.")
    workers: int = Field(1, ge=0, le=64, description="Analysis worker processes (0 = accept jobs, run none).")
    max_queue: int = Field(16, ge=1, description="Queued jobs accepted before answering 429.")
    upload_limit_mb: float = Field(500.0, gt=0, description="Largest accepted upload (video + depth), MiB.")
    pose_upload_limit_mb: float = Field(20.0, gt=0, description="Largest image accepted by POST /v1/pose, MiB.")
    api_keys: str = Field("", description="Comma-separated API keys; empty = no authentication.")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads per model session.")
    max_attempts: int = Field(2, ge=1, description="Runs a job gets when restarts interrupt it (2 = re-run once).")
    overlay: bool = Field(True, description="Render overlay.mp4 for each analysis.")
    fallback: bool = Field(
        True, description="When a specialised pose model (a clinic's student) is outside its domain on a video, "
        "analyse it again with the general model; the job's warnings say so (gaitpose.infer.domain).")
    request_head_timeout_s: float = Field(
        10.0, gt=0, description="A connection whose request head is not complete this long after it opened "
        "(or after its previous answer) is closed: slow or silent clients cannot hold sockets for ever.")
    upload_idle_timeout_s: float = Field(
        30.0, gt=0, description="An upload that sends no bytes for this long is cut off (408).")
    upload_time_limit_s: float = Field(
        900.0, gt=0, description="An upload that takes longer than this in total is cut off (408).")
    max_uploads_in_flight: int = Field(
        4, ge=1, description="Analysis uploads received at once; more are answered 429 before their body is read.")
    upload_disk_budget_mb: float = Field(
        2048.0, gt=0, description="Disk reserved for uploads in flight, MiB: each reserves its declared size "
        "(or the upload limit); an upload that would exceed the budget is answered 429 before its body is read.")
    min_free_disk_mb: float = Field(
        512.0, ge=0, description="Free disk kept for results and the database: uploads that would leave less get 507.")
    sweep_interval_s: float = Field(
        300.0, gt=0, description="How often folders left by aborted uploads (no job row) are removed.")
    sweep_grace_s: float = Field(
        60.0, ge=0, description="The periodic sweep leaves folders touched more recently than this alone.")
    api_docs: bool = Field(
        False, description="Serve Swagger UI at /docs. Off by default: it loads its scripts from a CDN, so it is "
        "blank on an offline box and needs a looser CSP on that one page. /openapi.json is always served.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    @field_validator("api_keys")
    @classmethod
    def _strip_keys(cls, v: str) -> str:
        return ",".join(k.strip() for k in v.split(",") if k.strip())

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(k for k in self.api_keys.split(",") if k)

    @property
    def pose_model_path(self) -> Path:
        return model_path(self.pose_model, POSE_MODEL, self.model_dir)

    @property
    def general_model_path(self) -> Path:
        """The general pose model of the fallback (``fallback``): ``<model_dir>/general/blazepose_full.onnx``."""
        return model_path(None, GENERAL_POSE_MODEL, self.model_dir)

    @property
    def localizer_model_path(self) -> Path:
        return model_path(self.localizer_model, LOCALIZER_MODEL, self.model_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"

    @property
    def upload_limit_bytes(self) -> int:
        return int(self.upload_limit_mb * 1024 * 1024)

    @property
    def upload_disk_budget_bytes(self) -> int:
        return int(self.upload_disk_budget_mb * 1024 * 1024)

    @property
    def min_free_disk_bytes(self) -> int:
        return int(self.min_free_disk_mb * 1024 * 1024)

    @property
    def pose_upload_limit_bytes(self) -> int:
        return int(self.pose_upload_limit_mb * 1024 * 1024)


def owner_of(key: str | None) -> str:
    """Stable owner id for an API key: a hash, so the DB never holds a usable key."""
    if not key:
        return ""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
