"""Job records in SQL through SQLAlchemy Core (SQLite by default, any SQLAlchemy URL works).

The database is the single source of truth shared by the API process and the worker processes:
workers write progress and their terminal state themselves, so progress survives a crash of
either side and a restarted server knows exactly which jobs were interrupted.

Fencing: every run of a job gets a new ``attempts`` number; a worker only writes while the row
still says ``running`` with *its* attempt number, so an orphaned worker from before a restart can
never overwrite the state of the re-run.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
TERMINAL = (SUCCEEDED, FAILED)

metadata = sa.MetaData()
jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("video_path", sa.Text, nullable=False),
    sa.Column("depth_path", sa.Text, nullable=True),
    sa.Column("height_cm", sa.Float, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("result", sa.Text, nullable=True),
)


@dataclass
class Job:
    """One analysis job as stored (internal type; the API exposes :class:`service.schemas.JobOut`)."""

    id: str
    owner: str
    status: str
    progress: float
    error: str | None
    filename: str
    video_path: str
    depth_path: str | None
    height_cm: float | None
    size_bytes: int
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> Job:
        d = dict(row._mapping)
        d["result"] = json.loads(d["result"]) if d.get("result") else None
        return cls(**d)


def make_engine(url: str) -> Engine:
    """Engine tuned for several processes writing one SQLite file (WAL, generous busy timeout)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no branch - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """All reads and writes of job rows; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    # -- API side -----------------------------------------------------------------------------
    def create(self, job_id: str, owner: str, filename: str, video_path: str, depth_path: str | None,
               height_cm: float | None, size_bytes: int) -> Job:
        """Insert a queued job; committed when this returns (the caller answers 202 only after)."""
        row = {
            "id": job_id, "owner": owner, "status": QUEUED, "progress": 0.0, "error": None,
            "filename": filename, "video_path": video_path, "depth_path": depth_path, "height_cm": height_cm,
            "size_bytes": size_bytes, "attempts": 0, "created_at": time.time(), "started_at": None,
            "finished_at": None, "result": None,
        }
        with self.engine.begin() as conn:
            conn.execute(jobs_table.insert().values(**row))
        return Job(**row)

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        """The job, or None when unknown or (with ``owner`` given) owned by someone else."""
        q = sa.select(jobs_table).where(jobs_table.c.id == job_id)
        if owner is not None:
            q = q.where(jobs_table.c.owner == owner)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return Job.from_row(row) if row else None

    def list(self, owner: str, limit: int = 100) -> list[Job]:
        q = (sa.select(jobs_table).where(jobs_table.c.owner == owner)
             .order_by(jobs_table.c.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [Job.from_row(r) for r in conn.execute(q)]

    def delete(self, job_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(jobs_table.delete().where(jobs_table.c.id == job_id)).rowcount > 0

    def states(self) -> dict[str, str]:
        """Every job id with its status (for the sweep of folders that no job owns)."""
        with self.engine.connect() as conn:
            return {r.id: r.status for r in conn.execute(sa.select(jobs_table.c.id, jobs_table.c.status))}

    def complete_result(self, job_id: str, result: dict[str, Any]) -> bool:
        """Replace a succeeded job's result (the API process adds the outcome a worker left out)."""
        with self.engine.begin() as conn:
            return conn.execute(
                jobs_table.update().where(jobs_table.c.id == job_id, jobs_table.c.status == SUCCEEDED)
                .values(result=json.dumps(result, default=str))
            ).rowcount > 0

    def count(self, status: str) -> int:
        q = sa.select(sa.func.count()).select_from(jobs_table).where(jobs_table.c.status == status)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    # -- dispatcher side ----------------------------------------------------------------------
    def claim_next(self) -> Job | None:
        """Atomically move the oldest queued job to running (safe against a second dispatcher)."""
        for _ in range(5):
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(jobs_table.c.id, jobs_table.c.attempts).where(jobs_table.c.status == QUEUED)
                    .order_by(jobs_table.c.created_at).limit(1)
                ).first()
            if row is None:
                return None
            with self.engine.begin() as conn:
                won = conn.execute(
                    jobs_table.update()
                    .where(jobs_table.c.id == row.id, jobs_table.c.status == QUEUED)
                    .values(status=RUNNING, attempts=row.attempts + 1, started_at=time.time(), progress=0.0,
                            error=None)
                ).rowcount
            if won:
                return self.get(row.id)
        return None

    def requeue(self, job_id: str, attempt: int, note: str | None = None, refund: bool = False) -> None:
        """Put an interrupted run back in the queue (keeps its upload).

        ``refund`` gives the attempt back: a clean shutdown is not the job's fault.
        """
        with self.engine.begin() as conn:
            conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.attempts == attempt, jobs_table.c.status == RUNNING)
                .values(status=QUEUED, progress=0.0, error=note, started_at=None,
                        attempts=attempt - 1 if refund else attempt)
            )

    def recover(self, max_attempts: int) -> tuple[int, int]:
        """After a restart: re-queue runs cut short (until ``max_attempts``), fail the rest with a reason.

        Returns (requeued, failed).
        """
        now = time.time()
        with self.engine.begin() as conn:
            failed = conn.execute(
                jobs_table.update()
                .where(jobs_table.c.status == RUNNING, jobs_table.c.attempts >= max_attempts)
                .values(status=FAILED, finished_at=now,
                        error=f"interrupted by a server restart during {max_attempts} runs; not retried again")
            ).rowcount
            requeued = conn.execute(
                jobs_table.update().where(jobs_table.c.status == RUNNING)
                .values(status=QUEUED, progress=0.0, started_at=None,
                        error="interrupted by a server restart; re-queued")
            ).rowcount
        return requeued, failed

    # -- worker side (fenced by attempt number) -----------------------------------------------
    def _fenced(self, job_id: str, attempt: int, **values: Any) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                jobs_table.update()
                .where(jobs_table.c.id == job_id, jobs_table.c.attempts == attempt, jobs_table.c.status == RUNNING)
                .values(**values)
            ).rowcount > 0

    def set_progress(self, job_id: str, attempt: int, progress: float) -> bool:
        """False when the run is no longer wanted (deleted, or superseded after a restart)."""
        return self._fenced(job_id, attempt, progress=float(progress))

    def succeed(self, job_id: str, attempt: int, result: dict[str, Any]) -> bool:
        return self._fenced(job_id, attempt, status=SUCCEEDED, progress=100.0, finished_at=time.time(),
                            error=None, result=json.dumps(result, default=str))

    def fail(self, job_id: str, attempt: int, error: str) -> bool:
        return self._fenced(job_id, attempt, status=FAILED, finished_at=time.time(), error=error[:2000])
