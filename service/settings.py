"""Service configuration from ``GAITPOSE_*`` environment variables (pydantic-settings).

Settings are an explicit object passed to ``create_app`` so tests can inject a tiny model and a
temporary data folder; nothing is read at import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gaitpose.registry import LOCALIZER_MODEL, POSE_MODEL, default_service_data_dir, model_path


class ServiceSettings(BaseSettings):
    """Every knob of the edge service; each field ``x`` is read from ``GAITPOSE_X``."""

    model_config = SettingsConfigDict(env_prefix="GAITPOSE_", extra="ignore")

    model_dir: Path | None = Field(
        None, description="Folder holding student/ and localizer/ models; default: the shipped models, found "
        "as the CLI finds them (gaitpose.registry.default_model_dir), wherever the service is started.")
    pose_model: Path | None = Field(None, description="Pose ONNX model; default <model_dir>/student/model.onnx.")
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
    def localizer_model_path(self) -> Path:
        return model_path(self.localizer_model, LOCALIZER_MODEL, self.model_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'jobs.db').resolve()}"

    @property
    def upload_limit_bytes(self) -> int:
        return int(self.upload_limit_mb * 1024 * 1024)

    @property
    def pose_upload_limit_bytes(self) -> int:
        return int(self.pose_upload_limit_mb * 1024 * 1024)


def owner_of(key: str | None) -> str:
    """Stable owner id for an API key: a hash, so the DB never holds a usable key."""
    if not key:
        return ""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
