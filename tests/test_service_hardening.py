"""Hardening of the edge service against slow, junk, abandoned and too many uploads, and disk hygiene.

Every test runs the real app under uvicorn on 127.0.0.1 with tiny ONNX models; slow clients are
raw sockets that send a request head and part of a body, then stall or hang up. Timeouts and
caps are set small through the settings so each test takes a few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import (  # noqa: F401 - pytest fixtures
    CLIP,
    live_server_factory_fixture,
    make_settings,
    tiny_models_fixture,
    upload,
)

MP4_HEAD = CLIP.read_bytes()[:4096]
BOUNDARY = "gaitposeboundary"


def part_head(name: str = "walk.mp4", field: str = "video") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()


def open_upload(port: int, declared: int, first: bytes, headers: dict | None = None) -> socket.socket:
    """Send a request head (declaring ``declared`` body bytes) and ``first`` body bytes; leave it open."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"POST /v1/analyses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head + first)
    return sock


def read_response(sock: socket.socket, timeout: float) -> tuple[int | None, str, float]:
    """(status, raw text, seconds waited) of the answer; reads until the server closes the connection."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    text = data.decode("utf-8", "replace")
    m = re.match(r"HTTP/1\.1 (\d{3})", text)
    return (int(m.group(1)) if m else None), text, time.monotonic() - t0


def server_errors(c: httpx.Client) -> list[str]:
    """Lines of the request counter with a 5xx status (must stay empty)."""
    return [ln for ln in c.get("/metrics").text.splitlines()
            if ln.startswith("gaitpose_http_requests_total") and re.search(r'status="5\d\d"', ln)]


def jobs_on_disk(data_dir: Path) -> list[str]:
    root = data_dir / "jobs"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


@pytest.fixture
def start(tiny_models, tmp_path, live_server_factory):
    def _start(**overrides):
        settings = make_settings(tmp_path, *tiny_models, workers=0, **overrides)
        srv = live_server_factory(settings)
        srv.data_dir = settings.data_dir
        return srv
    return _start


def test_stalled_upload_is_cut_off_after_the_idle_timeout(start):
    srv = start(upload_idle_timeout_s=1.0)
    sock = open_upload(srv.port, 200_000, part_head() + MP4_HEAD)
    status, text, waited = read_response(sock, timeout=10)
    sock.close()
    assert status == 408 and "no data for 1 s" in text, text
    assert 0.8 < waited < 5
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        assert server_errors(c) == []
        assert 'gaitpose_uploads_refused_total{reason="timeout"} 1.0' in c.get("/metrics").text
    assert jobs_on_disk(srv.data_dir) == []  # nothing kept of the aborted upload


def test_trickling_upload_is_cut_off_at_the_total_limit(start):
    srv = start(upload_idle_timeout_s=2.0, upload_time_limit_s=1.5)
    sock = open_upload(srv.port, 200_000, part_head() + MP4_HEAD)
    t0 = time.monotonic()
    try:
        for _ in range(40):  # 100 bytes every 0.1 s: never idle, never done
            sock.sendall(b"\0" * 100)
            time.sleep(0.1)
    except OSError:  # the server answered and closed
        pass
    status, text, _ = read_response(sock, timeout=5)
    sock.close()
    assert status == 408 and "longer than the limit" in text, text
    assert time.monotonic() - t0 < 4.5
    assert jobs_on_disk(srv.data_dir) == []


def test_uploads_in_flight_are_capped_with_429_and_health_stays_up(start):
    srv = start(max_uploads_in_flight=2, upload_idle_timeout_s=1.5)
    stalled = [open_upload(srv.port, 200_000, part_head() + MP4_HEAD) for _ in range(2)]
    time.sleep(0.3)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        r = upload(c)
        assert r.status_code == 429 and "2 uploads already in progress" in r.json()["detail"]
        assert r.headers["retry-after"] == "10"
        assert c.get("/healthz").status_code == 200 and c.get("/v1/analyses").status_code == 200
        for s in stalled:
            assert read_response(s, timeout=10)[0] == 408
            s.close()
        r = upload(c)  # the slots are free again
        assert r.status_code == 202, r.text
        assert server_errors(c) == []
    assert jobs_on_disk(srv.data_dir) == [r.json()["id"]]


def test_disk_budget_refuses_before_reading_the_body(start):
    # 1 MiB budget: a stalled upload declaring 0.8 MiB holds most of it
    srv = start(upload_disk_budget_mb=1.0, upload_idle_timeout_s=2.0, max_uploads_in_flight=8)
    holder = open_upload(srv.port, 800_000, part_head() + MP4_HEAD)
    time.sleep(0.3)
    second = open_upload(srv.port, 400_000, part_head())  # sends no file bytes: refused from its head
    status, text, waited = read_response(second, timeout=5)
    second.close()
    assert status == 429 and "disk budget" in text, text
    assert waited < 1.0
    assert read_response(holder, timeout=10)[0] == 408
    holder.close()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        metrics = c.get("/metrics").text
        assert "gaitpose_upload_reserved_bytes 0.0" in metrics
        assert upload(c).status_code == 202  # the reservation was given back


def test_junk_is_refused_from_its_first_bytes(start):
    srv = start(upload_idle_timeout_s=5.0)
    junk = os.urandom(4096)
    sock = open_upload(srv.port, 1_500_000, part_head("movie.mp4") + junk)  # 1.5 MB declared, 4 KB sent
    status, text, waited = read_response(sock, timeout=5)
    sock.close()
    assert status == 415 and "movie.mp4: not a video file" in text, text
    assert waited < 2.0  # answered long before the idle timeout: the body was never awaited
    assert jobs_on_disk(srv.data_dir) == []


def test_ros_bag_is_accepted_as_a_video_container() -> None:
    from service.uploads import sniff_video

    assert sniff_video(b"#ROSBAG V2.0\n" + b"\0" * 100) == "bag"
    assert sniff_video(b"%PDF-1.7\n" + b"\0" * 100) is None


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not any(r is record for r in self.records):  # attached at several loggers: count each once
            self.records.append(record)


def test_client_that_goes_away_is_one_info_line_not_a_5xx(start):
    srv = start(upload_idle_timeout_s=10.0)
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "uvicorn", "service", "")]
    old_level = logging.getLogger("service").level
    logging.getLogger("service").setLevel(logging.INFO)
    for lg in loggers:
        lg.addHandler(handler)
    try:
        for _ in range(3):
            sock = open_upload(srv.port, 500_000, part_head() + MP4_HEAD + b"\0" * 20_000)
            time.sleep(0.3)
            sock.close()  # hang up mid-upload
        time.sleep(0.5)
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            assert server_errors(c) == []
            text = c.get("/metrics").text
            assert re.search(r'gaitpose_http_requests_total\{method="POST",route="/v1/analyses",status="499"\} 3',
                             text) or 'status="499"} 3.0' in text, text
            assert 'gaitpose_uploads_refused_total{reason="client_gone"} 3.0' in text
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        logging.getLogger("service").setLevel(old_level)
    messages = [r.getMessage() for r in handler.records]
    gone = [m for m in messages if "abandoned by the client" in m]
    assert len(gone) == 3 and all(r.levelno == logging.INFO for r in handler.records if "abandoned" in r.getMessage())
    assert not any("Exception in ASGI application" in m or r.exc_info for m, r in zip(messages, handler.records,
                                                                                         strict=True)), messages
    assert jobs_on_disk(srv.data_dir) == []


def test_start_up_sweep_removes_what_a_killed_process_left(start, tmp_path):
    srv = start()
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        job = upload(c).json()["id"]  # workers=0: stays queued
    srv.__exit__(None, None, None)
    jobs = srv.data_dir / "jobs"
    (jobs / ("0" * 32)).mkdir()  # an empty job folder: mkdir done, killed before the first byte
    orphan = jobs / ("d" * 32)
    (orphan / "upload").mkdir(parents=True)
    (orphan / "upload" / "video.upload").write_bytes(b"half an upload")
    partial = jobs / job / ".results.abc123.partial"
    partial.mkdir()
    (partial / "keypoints.json").write_text("{")
    (jobs / "stray.tmp").write_text("x")
    (jobs / job / "results").mkdir()
    (jobs / job / "results" / "metrics.json").write_text("{}")
    (jobs / job / "results" / ".overlay.x1y2.part.mp4").write_bytes(b"half a video")  # killed mid-render
    srv2 = start()
    assert jobs_on_disk(srv2.data_dir) == [job]
    assert sorted(p.name for p in (jobs / job).iterdir()) == ["results", "upload"]
    assert sorted(p.name for p in (jobs / job / "results").iterdir()) == ["metrics.json"]
    with httpx.Client(base_url=srv2.url, timeout=10) as c:
        text = c.get("/metrics").text
        assert 'gaitpose_swept_total{kind="orphan_folders"} 2.0' in text
        assert 'gaitpose_swept_total{kind="partial_results"} 2.0' in text


def test_periodic_sweep_spares_uploads_in_flight(start):
    srv = start(sweep_interval_s=0.2, sweep_grace_s=0.0, upload_idle_timeout_s=3.0)
    sock = open_upload(srv.port, 200_000, part_head() + MP4_HEAD)
    time.sleep(0.3)
    assert len(jobs_on_disk(srv.data_dir)) == 1  # the upload in flight has a folder and no row yet
    orphan = srv.data_dir / "jobs" / ("e" * 32)
    orphan.mkdir()
    deadline = time.monotonic() + 5
    while orphan.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not orphan.exists()
    assert len(jobs_on_disk(srv.data_dir)) == 1  # still receiving: not swept
    assert read_response(sock, timeout=10)[0] == 408
    sock.close()
    assert jobs_on_disk(srv.data_dir) == []


def test_silent_and_slow_request_heads_are_closed(start):
    srv = start(request_head_timeout_s=1.0)
    t0 = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", srv.port))
    slow = socket.create_connection(("127.0.0.1", srv.port))
    slow.sendall(b"POST /v1/analyses HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")  # and never the rest
    for sock in (silent, slow):
        _status, text, _ = read_response(sock, timeout=10)
        sock.close()
        assert text == ""  # closed by the server, no answer needed
    assert 0.8 < time.monotonic() - t0 < 4
    with httpx.Client(base_url=srv.url, timeout=10) as c:  # a normal keep-alive client is unaffected
        for _ in range(3):
            assert c.get("/healthz").status_code == 200
            time.sleep(0.6)
        assert server_errors(c) == []


def test_oversized_request_head_is_refused(start):
    srv = start()
    sock = socket.create_connection(("127.0.0.1", srv.port))
    with contextlib.suppress(OSError):  # the server may close while the head is still being sent
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200_000)
        time.sleep(0.3)  # the server has read the 200 kB and the head is still open
        sock.sendall(b"\r\n\r\n")
    status, _text, _ = read_response(sock, timeout=10)
    sock.close()
    assert status == 431
    with httpx.Client(base_url=srv.url, timeout=10) as c:  # ordinary requests are unaffected
        assert c.get("/healthz", headers={"X-Normal": "a" * 4000}).status_code == 200
        assert server_errors(c) == []


def test_long_unicode_file_name_is_kept_within_file_system_limits(start):
    srv = start()
    name = "步态_" + "步态" * 70 + ".mp4"  # 3 bytes a character: over 255 bytes even after the 120-character cut
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        r = upload(c, name=name)
    assert r.status_code == 202, r.text
    stored = next((srv.data_dir / "jobs" / r.json()["id"] / "upload").iterdir())
    assert stored.name.startswith("步态_步态") and stored.suffix == ".mp4"
    assert len(stored.name.encode("utf-8")) <= 255


def test_stalled_pose_image_upload_is_cut_off(start):
    srv = start(upload_idle_timeout_s=1.0)
    head = (f"POST /v1/pose HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(head + part_head("frame.png", field="image") + b"\x89PNG\r\n\x1a\n" + b"\0" * 500)
    status, text, waited = read_response(sock, timeout=10)
    sock.close()
    assert status == 408 and "stalled" in text, text
    assert waited < 5
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        assert server_errors(c) == []
