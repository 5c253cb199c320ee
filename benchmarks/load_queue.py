"""Load checks of the job queue and the API: burst of uploads, SIGKILL mid-job, /v1/pose under load, abuse.

Parts 1-4 of :mod:`benchmarks.load_service` (which documents each check and runs them).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import httpx

from benchmarks.load_server import CLIP, H, Server, wait_all

__all__ = ["bench_abuse", "bench_burst", "bench_crash", "bench_pose"]


async def _burst(url: str, n: int) -> list[httpx.Response]:
    body = CLIP.read_bytes()
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        return await asyncio.gather(*(c.post("/v1/analyses", headers=H, files={"video": (CLIP.name, body)})
                                      for _ in range(n)))


def bench_burst(srv: Server, n: int, timeout: float) -> list[tuple[str, str]]:
    t0 = time.perf_counter()
    answers = asyncio.run(_burst(srv.url, n))
    t_up = time.perf_counter() - t0
    codes = [r.status_code for r in answers]
    ids = [r.json()["id"] for r in answers if r.status_code == 202]
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        done = wait_all(c, ids, timeout)
        listed = {j["id"] for j in c.get("/v1/analyses", headers=H, params={"limit": 1000}).json()["jobs"]}
    t_all = time.perf_counter() - t0
    ok = set(codes) <= {202, 429} and len(done) == len(ids) and set(ids) <= listed and len(set(ids)) == len(ids)
    outcomes = {s: sum(1 for j in done.values() if j["status"] == s) for s in ("succeeded", "failed")}
    return [
        ("burst: concurrent uploads", f"{n} in {t_up:.1f} s -> {codes.count(202)} x 202, {codes.count(429)} x 429"
         + (f", other {sorted(set(codes) - {202, 429})}" if set(codes) - {202, 429} else "")),
        ("burst: accepted jobs terminal", f"{len(done)}/{len(ids)} in {t_all:.1f} s "
         f"({outcomes['succeeded']} succeeded, {outcomes['failed']} failed)"),
        ("burst: lost / duplicated", f"{len(set(ids) - listed)} lost, {len(ids) - len(set(ids))} duplicated"),
        ("burst: verdict", "PASS" if ok else "FAIL"),
    ]


def bench_crash(srv: Server, n: int, timeout: float) -> list[tuple[str, str]]:
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        ids = []
        for _ in range(n):
            r = c.post("/v1/analyses", headers=H, files={"video": (CLIP.name, CLIP.read_bytes())})
            if r.status_code == 202:
                ids.append(r.json()["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [c.get(f"/v1/analyses/{i}", headers=H).json()["status"] for i in ids]
            if "running" in states:
                break
            time.sleep(0.1)
    running_at_kill = states.count("running")
    srv.kill()
    t_restart = srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        done = wait_all(c, ids, timeout)
    reran = sum(1 for j in done.values() if j["attempts"] > 1)
    with_reason = all(j["status"] == "succeeded" or j["error"] for j in done.values())
    ok = len(done) == len(ids) and with_reason
    return [
        ("crash: SIGKILL mid-job", f"{len(ids)} accepted, {running_at_kill} running at kill; "
         f"restart ready in {t_restart:.1f} s"),
        ("crash: jobs terminal after restart", f"{len(done)}/{len(ids)} ({reran} re-run, all with results "
         f"or a reason: {with_reason})"),
        ("crash: verdict", "PASS" if ok else "FAIL"),
    ]


async def _pose_load(url: str, png: bytes, clients: int, seconds: float) -> tuple[list[float], int]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    data = {"x": "40", "y": "60", "w": "190", "h": "400"}

    async def one(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = await c.post("/v1/pose", headers=H, files={"image": ("f.png", png, "image/png")}, data=data)
            if r.status_code == 200 and len(r.json()["keypoints"]) == 21:
                lat.append(time.perf_counter() - t)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        await asyncio.gather(*(one(c) for _ in range(clients)))
    return lat, errors


def bench_pose(srv: Server, clients: int, seconds: float) -> list[tuple[str, str]]:
    import cv2

    cap = cv2.VideoCapture(str(CLIP))
    _ok, bgr = cap.read()
    cap.release()
    png = cv2.imencode(".png", bgr)[1].tobytes()
    t0 = time.perf_counter()
    lat, errors = asyncio.run(_pose_load(srv.url, png, clients, seconds))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return [
        (f"pose: {clients} clients x {seconds:.0f} s", f"{len(lat)} ok, {errors} errors, {len(lat) / wall:.1f} req/s"),
        ("pose: latency p50 / p95", f"{q[49] * 1000:.0f} ms / {q[94] * 1000:.0f} ms"),
    ]


def _raw(port: int, payload: bytes) -> int:
    """Send raw bytes, return the HTTP status (0 when the server just closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        try:
            head = s.recv(64)
        except (ConnectionResetError, TimeoutError):
            return 0
    parts = head.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def bench_abuse(srv: Server) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    results: list[bool] = []
    mp = {"Content-Type": "multipart/form-data; boundary=xyz"}
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        def check(name: str, r: httpx.Response, ok: bool) -> None:
            results.append(ok)
            rows.append((f"abuse: {name}", f"{r.status_code} {'ok' if ok else 'UNEXPECTED'}"))

        r = c.post("/v1/analyses", headers={**H, **mp}, content=b"--abc\r\nnot it\r\n--abc--\r\n")
        check("malformed multipart", r, 400 <= r.status_code < 500)
        r = c.post("/v1/analyses", headers={**H, "Content-Type": "multipart/form-data"}, content=b"x")
        check("multipart without boundary", r, 400 <= r.status_code < 500)
        r = c.post("/v1/analyses", headers=H, files={"video": ("a.mp4", b"")})
        check("zero-byte file", r, 400 <= r.status_code < 500)
        r = c.post("/v1/analyses", headers=H, files={"video": ("a.mp4", b"hello, I am text\n" * 64)})
        check("text renamed .mp4", r, r.status_code == 415)
        r = c.post("/v1/analyses", headers=H, files={"video": ("a.mp4", b"\0\0\0\x20ftypisom" + b"\0" * (6 << 20))})
        check("6 MiB upload over a 5 MiB limit", r, r.status_code == 413)
        r = c.get("/v1/analyses", headers={"X-API-Key": "wrong"})
        check("wrong key", r, r.status_code == 401)
        r = c.get("/v1/analyses")
        check("missing key", r, r.status_code == 401)
        r = c.get("/v1/analyses/ffffffffffffffffffffffffffffffff", headers=H)
        check("unknown id", r, r.status_code == 404)
        r = c.post("/v1/analyses", headers=H, files={"video": ("../../../etc/passwd.mp4", CLIP.read_bytes())})
        safe = r.status_code == 202 and r.json()["filename"] == "passwd.mp4"
        check("traversal filename (stored as 'passwd.mp4')", r, safe)
        if r.status_code == 202:
            c.delete(f"/v1/analyses/{r.json()['id']}", headers=H)
        code = _raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        ok = 400 <= code < 500 or code == 0
        results.append(ok)
        rows.append(("abuse: 200 kB header", f"{code or 'connection closed'} {'ok' if ok else 'UNEXPECTED'}"))
        code = _raw(srv.port, b"POST /v1/analyses HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        ok = 400 <= code < 500 or code == 0
        results.append(ok)
        rows.append(("abuse: bad Content-Length", f"{code or 'connection closed'} {'ok' if ok else 'UNEXPECTED'}"))
        healthy = c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    rows.append(("abuse: healthy afterwards", str(healthy)))
    rows.append(("abuse: verdict", "PASS" if all(results) and healthy else "FAIL"))
    return rows
