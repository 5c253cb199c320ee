"""HTTP API of the edge service against a real uvicorn server on 127.0.0.1 with a tiny ONNX model."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import cv2
import httpx
import pytest
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    REPO,
    SHIPPED_POSE,
    LiveServer,
    live_server_factory_fixture,
    make_settings,
    tiny_models_fixture,
    upload,
    wait_terminal,
)

A = {"X-API-Key": "key-alpha"}
B = {"X-API-Key": "key-bravo"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    tmp = tmp_path_factory.mktemp("svc_api")
    settings = make_settings(tmp, *tiny_models, api_keys="key-alpha, key-bravo", upload_limit_mb=1.0)
    with LiveServer(settings) as srv:
        srv.data_dir = settings.data_dir
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_serving_path_imports_no_torch(tiny_models, tmp_path):
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from service.app import create_app\n"
        "from service.settings import ServiceSettings\n"
        "import service.cli, service.worker\n"
        f"s = ServiceSettings(pose_model={str(tiny_models[0])!r}, localizer_model={str(tiny_models[1])!r},\n"
        f"                    data_dir={str(tmp_path)!r}, workers=0)\n"
        "with TestClient(create_app(s)) as c:\n"
        "    assert c.get('/readyz').status_code == 200\n"
        "    import numpy as np, cv2\n"
        "    ok, png = cv2.imencode('.png', np.zeros((64, 48, 3), np.uint8))\n"
        "    assert c.post('/v1/pose', files={'image': ('a.png', png.tobytes())}).status_code == 200\n"
        "try:\n    import gaitpose.analyze\nexcept ImportError:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "print('TORCH' if bad else 'CLEAN')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("CLEAN")


def test_health_ready_and_model(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    meta = client.get("/v1/model", headers=A).json()
    assert meta["pose"]["meta"]["kind"] == "sppe"
    assert len(meta["pose"]["meta"]["keypoint_names"]) == 21
    assert len(meta["pose"]["sha256"]) == 64
    assert "/tmp" not in json.dumps(meta)  # no server paths leak


def test_auth_required_and_isolated(client):
    assert client.get("/v1/analyses").status_code == 401
    assert client.get("/v1/analyses", headers={"X-API-Key": "nope"}).status_code == 401
    assert upload(client).status_code == 401
    r = upload(client, headers=A, height_cm="172")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/analyses/{job['id']}"
    assert job["status"] in ("queued", "running") and job["height_cm"] == 172.0
    assert client.get(f"/v1/analyses/{job['id']}", headers=B).status_code == 404
    assert client.get(f"/v1/analyses/{job['id']}", headers={"X-API-Key": "x"}).status_code == 401
    assert client.delete(f"/v1/analyses/{job['id']}", headers=B).status_code == 404
    assert job["id"] in [j["id"] for j in client.get("/v1/analyses", headers=A).json()["jobs"]]
    assert job["id"] not in [j["id"] for j in client.get("/v1/analyses", headers=B).json()["jobs"]]
    done = wait_terminal(client, job["id"], A)
    # random tiny weights: "no person" (or similar) is a legitimate outcome, but it must say why
    if done["status"] == "failed":
        assert done["error"] and "\n" not in done["error"] and "Traceback" not in done["error"]
        assert client.get(f"/v1/analyses/{job['id']}/metrics.json", headers=A).status_code == 409
    else:
        assert client.get(done["results"]["metrics.json"], headers=A).status_code == 200
        assert client.get(done["results"]["metrics.json"], headers=B).status_code == 404
    assert client.delete(f"/v1/analyses/{job['id']}", headers=A).status_code == 204
    assert client.get(f"/v1/analyses/{job['id']}", headers=A).status_code == 404


def test_upload_too_big_is_413_even_without_content_length(client):
    big = b"\x00\x00\x00\x20ftypisom" + b"\x00" * (1024 * 1024 + 10)
    assert upload(client, headers=A, content=big).status_code == 413

    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()

    def chunks():  # chunked transfer: no Content-Length to trust
        yield head + b"\x00\x00\x00\x20ftypisom"
        for _ in range(40):
            yield b"\x00" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/v1/analyses", content=chunks(),
                    headers={**A, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_non_video_is_415_and_empty_is_400(client, server):
    before = set((server.data_dir / "jobs").iterdir())
    r = upload(client, headers=A, name="notes.mp4", content=b"these are my notes, not a video\n" * 20)
    assert r.status_code == 415 and "not a video" in r.json()["detail"]
    r = upload(client, headers=A, name="empty.mp4", content=b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    r = client.post("/v1/analyses", headers=A, files={"depth": ("d.bag", b"#ROSBAG V2.0\n")})
    assert r.status_code == 400 and "video" in r.json()["detail"]
    files = {"video": ("v.mp4", CLIP.read_bytes()), "depth": ("d.bag", b"not a bag at all")}
    assert client.post("/v1/analyses", headers=A, files=files).status_code == 415
    assert upload(client, headers=A, height_cm="tall").status_code == 422
    assert set((server.data_dir / "jobs").iterdir()) == before  # refused uploads leave nothing behind


def test_traversal_filename_is_stored_safely(client, server):
    r = upload(client, headers=A, name="../../etc/passwd.mp4")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["filename"] == "passwd.mp4"
    updir = server.data_dir / "jobs" / job["id"] / "upload"
    # stored under the sanitised client name (the report shows it), inside the job's own folder
    assert sorted(p.name for p in updir.iterdir()) == ["passwd.mp4"]
    assert (updir / "passwd.mp4").read_bytes() == CLIP.read_bytes()
    assert not (server.data_dir.parent / "etc").exists()
    wait_terminal(client, job["id"], A)


def test_unknown_ids_and_files_are_404(client):
    assert client.get("/v1/analyses/0123456789abcdef", headers=A).status_code == 404
    assert client.get("/v1/analyses/" + "f" * 300, headers=A).status_code == 404
    assert client.get("/v1/analyses/0123/metrics.json", headers=A).status_code == 404
    assert client.get("/v1/analyses/0123/..%2F..%2Fjobs.db", headers=A).status_code == 404
    assert client.delete("/v1/analyses/nope", headers=A).status_code == 404


def test_malformed_multipart_is_4xx(client, server):
    ct = {"Content-Type": "multipart/form-data; boundary=xyz"}
    assert client.post("/v1/analyses", headers={**A, **ct}, content=b"garbage without boundaries").status_code == 400
    truncated = b'--xyz\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\n\x00\x00\x00\x20ftyp'
    assert client.post("/v1/analyses", headers={**A, **ct}, content=truncated).status_code == 400
    no_boundary = {"Content-Type": "multipart/form-data"}
    assert client.post("/v1/analyses", headers={**A, **no_boundary}, content=b"x").status_code == 400
    assert client.post("/v1/analyses", headers=A, json={"video": "x"}).status_code == 415
    huge_part_header = b"--xyz\r\nContent-Disposition: form-data; name=\"video\"; filename=\"" + b"a" * 20000
    assert client.post("/v1/analyses", headers={**A, **ct}, content=huge_part_header).status_code == 400
    assert client.get("/healthz").status_code == 200


def test_pose_returns_21_keypoints(client):
    cap = cv2.VideoCapture(str(CLIP))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    ok, png = cv2.imencode(".png", bgr)
    r = client.post("/v1/pose", headers=A, files={"image": ("f.png", png.tobytes(), "image/png")},
                    data={"x": "60", "y": "80", "w": "150", "h": "380"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["keypoints"]) == 21 and body["box_source"] == "request"
    assert len({k["name"] for k in body["keypoints"]}) == 21
    assert body["image_size"] == [bgr.shape[1], bgr.shape[0]]
    whole = client.post("/v1/pose", headers=A, files={"image": ("f.png", png.tobytes(), "image/png")}).json()
    assert whole["box_source"] in ("localizer", "image") and len(whole["keypoints"]) == 21
    if whole["box_source"] == "image":
        assert whole["box"] == [0, 0, bgr.shape[1], bgr.shape[0]]
    assert client.post("/v1/pose", files={"image": ("f.png", png.tobytes())}).status_code == 401
    assert client.post("/v1/pose", headers=A, files={"image": ("f.png", b"text")}).status_code == 415
    assert client.post("/v1/pose", headers=A, files={"image": ("f.png", png.tobytes())},
                       data={"x": "1"}).status_code == 422
    big = {"image": ("f.png", b"\x89PNG" + b"\0" * (21 << 20))}
    assert client.post("/v1/pose", headers=A, files=big).status_code == 413
    chunked = client.post("/v1/pose", headers={**A, "Content-Type": "multipart/form-data; boundary=x"},
                          content=iter([b"--x\r\n", b"--x--\r\n"]))
    assert chunked.status_code == 411


def _finished(text: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gaitpose_jobs_finished_total{"))


def test_metrics_exposes_counters(client):
    before = _finished(client.get("/metrics").text)
    job = upload(client, headers=A).json()
    wait_terminal(client, job["id"], A)
    deadline = time.monotonic() + 10
    while _finished(text := client.get("/metrics").text) < before + 1:
        assert time.monotonic() < deadline, "finished job not counted"
        time.sleep(0.1)
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'gaitpose_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/analyses"' in text
    assert 'route="/v1/analyses/{job_id}"' in text
    for name in ("gaitpose_queue_depth", "gaitpose_job_duration_seconds_bucket", "gaitpose_frames_processed_total",
                 "gaitpose_running_jobs"):
        assert name in text


def test_openapi_documents_the_upload(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/analyses"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["video"]
    assert "/v1/pose" in spec["paths"]
    assert client.get("/docs").status_code == 404  # Swagger UI needs a CDN: off unless GAITPOSE_API_DOCS
    page = client.get("/")
    assert page.status_code == 200 and "upload-form" in page.text


def test_cli_refuses_open_bind_without_keys(capsys, monkeypatch):
    from service.cli import main

    monkeypatch.delenv("GAITPOSE_API_KEYS", raising=False)
    assert main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing" in capsys.readouterr().err
    monkeypatch.setenv("GAITPOSE_WORKERS", "many")
    assert main([]) == 2
    assert "GAITPOSE_WORKERS" in capsys.readouterr().err


def test_uvicorn_factory_runs(tiny_models, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"GAITPOSE_POSE_MODEL": str(tiny_models[0]), "GAITPOSE_LOCALIZER_MODEL": str(tiny_models[1]),
           "GAITPOSE_DATA_DIR": str(tmp_path), "GAITPOSE_WORKERS": "0",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.slow
@pytest.mark.skipif(not SHIPPED_POSE.is_file(), reason="shipped models/ not present")
def test_shipped_models_analysis_downloads_every_result(live_server_factory, tmp_path):
    srv = live_server_factory(make_settings(tmp_path, None, upload_limit_mb=50.0))
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        r = upload(c, path=CLIP.parent / "sports2d_walk.mp4", height_cm="165")
        assert r.status_code == 202
        job = wait_terminal(c, r.json()["id"], timeout=300)
        assert job["status"] == "succeeded", job["error"]
        from service.schemas import RESULT_FILES

        for name in RESULT_FILES:
            got = c.get(f"/v1/analyses/{job['id']}/{name}")
            deadline = time.monotonic() + 120  # overlay.mp4 is rendered after the results are published
            while name == "overlay.mp4" and got.status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.5)
                got = c.get(f"/v1/analyses/{job['id']}/{name}")
            assert got.status_code == 200 and len(got.content) > 0, name
        assert job["summary"]["frames"] > 0
