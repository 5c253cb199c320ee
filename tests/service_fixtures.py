"""Fixtures for the service tests: a tiny exported pose model and a real uvicorn server on 127.0.0.1.

The model is a real ``build_model`` student at 64x48 with random weights, exported to ONNX with
its ``gaitpose`` metadata once per test session; the server is the real app served by uvicorn
on a loopback socket in a background thread (its workers are real spawned processes).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CLIP = DATA / "pose2sim_cam01.mp4"
SHIPPED_POSE = REPO / "models" / "student" / "model.onnx"
TERMINAL = ("succeeded", "failed")


def export_tiny_pose_model(path: Path) -> Path:
    """Export a random-weight 64x48 student with metadata (the real export path, no slimming)."""
    import torch

    from gaitpose.modelmeta import ModelMeta
    from gaitpose.nn.student import ModelConfig, build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = ModelConfig(input_size=(64, 48), stem_channels=8, decoder_channels=16,
                      stages=[(1, 8, 1, 1), (2, 8, 1, 2), (2, 16, 1, 2), (2, 16, 1, 2), (2, 24, 1, 2)])
    model = build_model(cfg).eval()
    meta = ModelMeta(kind="sppe", input_size=(64, 48), stride=cfg.stride, version="test-tiny")
    try:
        from gaitpose.export.onnx_export import export_onnx
    except ImportError:  # the export module is optional for these tests
        export_onnx = None
    if export_onnx is not None:
        return export_onnx(model, meta, path, simplify=False, dynamic_batch=True)
    import onnx

    dummy = torch.randn(1, 3, 64, 48)
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["heatmaps"],
                      dynamic_axes={"input": {0: "batch"}, "heatmaps": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "gaitpose", meta.to_json()
    onnx.save(graph, str(path))
    return path


def export_tiny_localizer(path: Path) -> Path:
    """Export a random-weight 64x96 person localiser with its runtime metadata."""
    import torch

    from gaitpose.export.onnx_export import export_onnx
    from gaitpose.nn.localizer import LocalizerConfig, LocalizerForExport, build_localizer
    from gaitpose.train.localizer import localizer_meta

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LocalizerConfig(input_size=(64, 96), stem_channels=8, stages=[(8, 1), (16, 1), (16, 1), (24, 1)],
                          decoder_channels=16)
    net = LocalizerForExport(build_localizer(cfg)).eval()
    return export_onnx(net, localizer_meta(cfg), path, simplify=False)


@pytest.fixture(scope="session", name="tiny_models")
def tiny_models_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pose, localizer) tiny ONNX models, exported once per session."""
    root = tmp_path_factory.mktemp("tiny_models")
    return export_tiny_pose_model(root / "pose.onnx"), export_tiny_localizer(root / "localizer.onnx")


@pytest.fixture(scope="session", name="tiny_pose_model")
def tiny_pose_model_fixture(tiny_models: tuple[Path, Path]) -> Path:
    return tiny_models[0]


def make_settings(tmp: Path, model: Path | None, localizer: Path | None = None, **overrides):
    """Settings rooted in ``tmp``; ``model`` None = the shipped models/ folder."""
    from service.settings import ServiceSettings

    base = {"data_dir": tmp / "data", "model_dir": tmp / "no-models", "workers": 1, "threads": 1,
            "upload_limit_mb": 2.0, "max_queue": 8}
    if model is None:
        base["model_dir"] = REPO / "models"
    else:
        base["pose_model"] = model
        if localizer is not None:
            base["localizer_model"] = localizer
    base.update(overrides)
    return ServiceSettings(**base)


class LiveServer:
    """The real app under uvicorn on a pre-bound loopback socket (no port race), in a thread."""

    def __init__(self, settings) -> None:
        import uvicorn

        from service.app import create_app

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        from service.protocol import head_timeout_protocol

        self.app = create_app(settings)
        cfg = uvicorn.Config(self.app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                             http=head_timeout_protocol(settings.request_head_timeout_s))  # as gaitpose-serve
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(name="live_server_factory")
def live_server_factory_fixture() -> Iterator:
    servers: list[LiveServer] = []

    def start(settings) -> LiveServer:
        srv = LiveServer(settings).__enter__()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


def wait_terminal(client: httpx.Client, job_id: str, headers: dict | None = None, timeout: float = 90.0) -> dict:
    """Poll a job until succeeded/failed; fails the test if it takes longer than ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/analyses/{job_id}", headers=headers or {})
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job['status']} after {timeout} s")
        time.sleep(0.2)


def upload(client: httpx.Client, path: Path = CLIP, headers: dict | None = None, name: str | None = None,
           content: bytes | None = None, **data) -> httpx.Response:
    body = path.read_bytes() if content is None else content
    files = {"video": (name or path.name, body, "video/mp4")}
    return client.post("/v1/analyses", files=files, data=data or None, headers=headers or {})
