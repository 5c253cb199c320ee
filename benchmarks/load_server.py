"""The service under load: ``gaitpose-serve`` in a subprocess on a free loopback port, and its models.

Shared by the load checks (:mod:`benchmarks.load_queue`, :mod:`benchmarks.load_hardening`) that
:mod:`benchmarks.load_service` runs; 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = ["CLIP", "KEY", "REPO", "H", "Server", "server_models", "wait_all"]

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "pose2sim_cam01.mp4"
KEY = "bench-key"
H = {"X-API-Key": KEY}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_models(tmp: Path, model_dir: Path) -> dict[str, str]:
    if (model_dir / "student" / "model.onnx").is_file() and (model_dir / "localizer" / "model.onnx").is_file():
        return {"GAITPOSE_MODEL_DIR": str(model_dir), "_kind": "shipped"}
    sys.path.insert(0, str(REPO / "tests"))
    from service_fixtures import export_tiny_localizer, export_tiny_pose_model

    pose = export_tiny_pose_model(tmp / "pose.onnx")
    loc = export_tiny_localizer(tmp / "localizer.onnx")
    return {"GAITPOSE_POSE_MODEL": str(pose), "GAITPOSE_LOCALIZER_MODEL": str(loc), "_kind": "tiny random"}


class Server:
    """``gaitpose-serve`` in a subprocess; restartable on the same data folder."""

    def __init__(self, data_dir: Path, models: dict[str, str], workers: int, max_queue: int,
                 **settings: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {**os.environ, **{k: v for k, v in models.items() if not k.startswith("_")},
                    "GAITPOSE_DATA_DIR": str(data_dir), "GAITPOSE_API_KEYS": KEY, "GAITPOSE_THREADS": "1",
                    "GAITPOSE_MAX_QUEUE": str(max_queue), "GAITPOSE_UPLOAD_LIMIT_MB": "5",
                    **{f"GAITPOSE_{k.upper()}": v for k, v in settings.items()}}
        self.workers = workers
        self.log = open(data_dir.parent / "server.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--log-level", "warning"],
            cwd=REPO, env=self.env, stdout=self.log, stderr=self.log)
        while True:
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def wait_all(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict] = {}
    while len(done) < len(ids) and time.monotonic() < deadline:
        for i in ids:
            if i not in done:
                r = client.get(f"/v1/analyses/{i}", headers=H)
                if r.status_code == 200 and r.json()["status"] in ("succeeded", "failed"):
                    done[i] = r.json()
        time.sleep(0.5)
    return done
