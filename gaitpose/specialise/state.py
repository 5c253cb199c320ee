"""Resume bookkeeping: configuration hashes, the per-stage done-markers under ``work/state`` and the
run's wall-time clock. A stage is skipped only when its marker holds the hash of its configuration and of
every stage before it, so a changed option redoes exactly the stages it changes."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_json_atomic
from gaitpose.specialise.options import STATE_VERSION


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _file_id(path: Path) -> dict[str, Any]:
    """What identifies an input file cheaply (a changed recording has a new size or time)."""
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


class _State:
    """Stage done-markers under ``work/state``: ``{"hash", "result", "seconds"}`` per stage."""

    def __init__(self, work: Path) -> None:
        self.dir = work / "state"
        self.dir.mkdir(parents=True, exist_ok=True)

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        path = self.dir / f"{stage}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if data.get("hash") != key or data.get("version") != STATE_VERSION:
            return None
        return data

    def mark(self, stage: str, key: str, result: dict[str, Any], seconds: float) -> None:
        write_json_atomic(self.dir / f"{stage}.json",
                          {"version": STATE_VERSION, "hash": key, "result": result, "seconds": round(seconds, 2)},
                          indent=1)


def _labels_digest(path: Path) -> str:
    """Hash of a label file's images and annotations: what training sees. The file's ``info`` (date,
    timings) changes on every write and must not make a resumed run redo its later stages."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return _hash(data.get("images"), data.get("annotations"))


class _Clock:
    """The run's wall-time budget."""

    def __init__(self, minutes: float) -> None:
        self.t0 = time.perf_counter()
        self.budget_s = float(minutes) * 60.0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def left(self) -> float:
        return self.budget_s - self.elapsed
