"""Bounded load and robustness checks of the edge service, against 127.0.0.1 only.

Starts the real server (``python -m service.cli``) as a subprocess on a free loopback port with a
fresh data folder, then measures:

1. burst: N concurrent uploads of a short clip -> every answer is 202 or 429, every accepted job
   reaches a terminal state, no job lost (all listed) and none duplicated (unique ids);
2. crash: SIGKILL the server while jobs run, restart it on the same data folder -> every accepted
   job still reaches a terminal state (results or a reason);
3. pose: ``POST /v1/pose`` from C concurrent clients for S seconds -> requests/s, p50/p95 latency;
4. abuse: malformed multipart, huge header, zero-byte file, wrong key, traversal filename, ... ->
   all refused with 4xx (the traversal name is accepted but stored under a safe name) and the
   server is healthy afterwards;
5. stalled / slowheads: S uploads that send their head and a few bytes, then stall (C at once), while a
   well-behaved client keeps polling -> 5xx answers (from the server's own Prometheus counter and
   as seen by the polling client), folders left once the attack is over; and N connections that
   never finish their request head -> all closed by the server after the head timeout;
6. junk: K concurrent uploads of M MiB of random bytes (a repeated random block, streamed) ->
   answers, peak disk held under the data folder and peak reservation (both sampled every 50 ms)
   against the configured budget;
7. kill: SIGKILL the server with an upload in flight, and again while a job writes its results;
   restart -> folders and partial results no job owns, left on disk.

Parts 5-7 run on a second server with a 500 MiB upload limit, a short idle timeout
(``--idle-timeout``) and the default caps on uploads in flight and reserved disk.

Prints a markdown table. Models: the shipped ``models/`` when present, else tiny random-weight
models exported with torch (jobs then typically fail with "no person", which still exercises
the queue end to end). Example::

    .venv/bin/python -m benchmarks.load_service --uploads 20 --pose-clients 50 --pose-seconds 30
    .venv/bin/python -m benchmarks.load_service --parts stalled,junk,kill --stalled 10000 --junk 8x450
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "pose2sim_cam01.mp4"
KEY = "bench-key"
H = {"X-API-Key": KEY}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _models(tmp: Path, model_dir: Path) -> dict[str, str]:
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


# ---- hardening scenarios: stalled uploads, junk uploads, SIGKILL at any stage ---------------------------

BOUNDARY = "gaitposebench"


def _part_head(name: str = "walk.mp4") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"{name}\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()


def _request_head(declared: int) -> bytes:
    return (f"POST /v1/analyses HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}\r\nContent-Length: {declared}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode()


def server_5xx(url: str) -> int:
    """5xx answers the server itself counted (Prometheus ``gaitpose_http_requests_total``)."""
    text = httpx.get(url + "/metrics", timeout=30).text
    return int(sum(float(m.group(1)) for m in re.finditer(
        r'^gaitpose_http_requests_total\{[^}]*status="5\d\d"[^}]*\} ([0-9.e+]+)$', text, flags=re.M)))


def leftovers(data_dir: Path) -> tuple[int, int]:
    """(job folders with no job row, partial result folders) under ``data_dir``."""
    db = data_dir / "jobs.db"
    ids: set[str] = set()
    if db.is_file():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            ids = {r[0] for r in conn.execute("SELECT id FROM jobs")}
    root = data_dir / "jobs"
    folders = [p for p in root.iterdir()] if root.is_dir() else []
    orphans = sum(1 for p in folders if p.name not in ids)
    partial = sum(1 for p in folders for _ in p.glob(".results.*.partial"))
    return orphans, partial


class DiskSampler:
    """Peak bytes under a folder and peak ``gaitpose_upload_reserved_bytes``, sampled every 50 ms."""

    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url
        self.peak_disk = 0
        self.peak_reserved = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for f in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, f)).st_size
        return total

    def _run(self) -> None:
        with httpx.Client(timeout=5) as c:
            while not self._stop.is_set():
                self.peak_disk = max(self.peak_disk, self._size())
                try:
                    m = re.search(r"^gaitpose_upload_reserved_bytes ([0-9.e+]+)$", c.get(self.url + "/metrics").text,
                                  flags=re.M)
                    if m:
                        self.peak_reserved = max(self.peak_reserved, float(m.group(1)))
                except httpx.HTTPError:
                    pass
                self._stop.wait(0.05)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


class PoliteClient:
    """A well-behaved client polling /healthz and the job list while an attack runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.codes: dict[int, int] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self._stop.is_set():
                for path in ("/healthz", "/v1/analyses"):
                    try:
                        code = c.get(path, headers=H).status_code
                        self.codes[code] = self.codes.get(code, 0) + 1
                    except httpx.HTTPError:
                        self.errors += 1
                self._stop.wait(0.1)

    def __enter__(self) -> PoliteClient:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(20)

    def summary(self) -> str:
        bad = sum(n for code, n in self.codes.items() if code >= 500)
        return (f"{sum(self.codes.values())} requests, {bad} x 5xx, {self.errors} transport errors "
                f"(codes {dict(sorted(self.codes.items()))})")


async def _stalled(port: int, n: int, concurrency: int, hold_s: float) -> dict[str, int]:
    first = _part_head() + CLIP.read_bytes()[:512]
    payload = _request_head(50_000_000) + first
    sem = asyncio.Semaphore(concurrency)
    stats: dict[str, int] = {}

    def count(key: str) -> None:
        stats[key] = stats.get(key, 0) + 1

    async def one() -> None:
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
            except (OSError, TimeoutError):
                count("connect failed")
                return
            try:
                writer.write(payload)
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), hold_s)  # stall: never send the rest
                parts = line.split(b" ")
                count(parts[1].decode() if len(parts) > 1 else "closed")
            except TimeoutError:
                count("no answer")
            except OSError:
                count("reset")
            finally:
                writer.close()

    await asyncio.gather(*(one() for _ in range(n)))
    return stats


def bench_stalled(srv: Server, n: int, concurrency: int, idle_timeout: float) -> list[tuple[str, str]]:
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    before = server_5xx(srv.url)
    t0 = time.perf_counter()
    with PoliteClient(srv.url) as polite:
        stats = asyncio.run(_stalled(srv.port, n, concurrency, idle_timeout + 10))
    wall = time.perf_counter() - t0
    time.sleep(1.0)
    orphans, partial = leftovers(srv.data_dir)
    fives = server_5xx(srv.url) - before
    ok = fives == 0 and orphans == 0 and partial == 0 and not any(c >= 500 for c in polite.codes)
    return [
        (f"stalled: {n} uploads ({concurrency} at once)", f"{wall:.1f} s; answers {dict(sorted(stats.items()))}"),
        ("stalled: polite client meanwhile", polite.summary()),
        ("stalled: server 5xx / folders left after", f"{fives} / {orphans} (+{partial} partial results)"),
        ("stalled: verdict", "PASS" if ok else "FAIL"),
    ]


async def _slow_heads(port: int, n: int, wait_s: float) -> tuple[int, int, float]:
    """Open ``n`` connections that send half a request head and stop; (closed by the server, still open, s)."""
    conns = []
    for _ in range(n):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        writer.write(b"POST /v1/analyses HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        conns.append((reader, writer))
    t0 = time.perf_counter()

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), wait_s) == b""
        except TimeoutError:
            return False
        except OSError:
            return True

    results = await asyncio.gather(*(closed(r) for r, _ in conns))
    wall = time.perf_counter() - t0
    for _, w in conns:
        w.close()
    return sum(results), len(results) - sum(results), wall


def bench_slow_heads(srv: Server, n: int, head_timeout: float) -> list[tuple[str, str]]:
    before = server_5xx(srv.url)
    with PoliteClient(srv.url) as polite:
        closed, still_open, wall = asyncio.run(_slow_heads(srv.port, n, head_timeout + 10))
    fives = server_5xx(srv.url) - before
    ok = still_open == 0 and fives == 0 and not any(c >= 500 for c in polite.codes)
    return [
        (f"slow heads: {n} half-sent request heads", f"{closed} closed by the server within {wall:.1f} s, "
         f"{still_open} still open after {head_timeout + 10:.0f} s"),
        ("slow heads: polite client meanwhile", polite.summary()),
        ("slow heads: verdict", "PASS" if ok else "FAIL"),
    ]


def _junk_upload(url: str, mib: int, block: bytes) -> str:
    head = _part_head("junk.mp4")
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    size = len(head) + mib * len(block) + len(tail)

    def body():
        yield head
        for _ in range(mib):
            yield block
        yield tail

    headers = {**H, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(size)}
    try:
        return str(httpx.post(url + "/v1/analyses", headers=headers, content=body(), timeout=600).status_code)
    except httpx.HTTPError as exc:  # the server answered early and closed while we were still sending
        return f"closed early ({type(exc).__name__})"


def bench_junk(srv: Server, count: int, mib: int, budget_mib: float) -> list[tuple[str, str]]:
    block = os.urandom(1 << 20)
    before = server_5xx(srv.url)
    t0 = time.perf_counter()
    with DiskSampler(srv.data_dir / "jobs", srv.url) as disk:
        threads: list[threading.Thread] = []
        answers: list[str] = []
        for _ in range(count):
            t = threading.Thread(target=lambda: answers.append(_junk_upload(srv.url, mib, block)))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    wall = time.perf_counter() - t0
    orphans, _partial = leftovers(srv.data_dir)
    fives = server_5xx(srv.url) - before
    ok = disk.peak_disk <= budget_mib * 1048576 and fives == 0 and orphans == 0
    tally = {a: answers.count(a) for a in sorted(set(answers))}
    return [
        (f"junk: {count} x {mib} MiB random bytes", f"{wall:.1f} s; answers {tally}"),
        ("junk: peak disk held / peak reserved / budget",
         f"{disk.peak_disk / 1048576:.2f} MiB / {disk.peak_reserved / 1048576:.0f} MiB / {budget_mib:.0f} MiB"),
        ("junk: server 5xx / folders left after", f"{fives} / {orphans}"),
        ("junk: verdict", "PASS" if ok else "FAIL"),
    ]


def bench_kill(srv: Server) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    results: list[bool] = []
    # 1. an upload in flight (its folder exists, its job row does not yet)
    sock = socket.create_connection(("127.0.0.1", srv.port))
    sock.sendall(_request_head(5_000_000) + _part_head() + CLIP.read_bytes()[:100_000])
    time.sleep(0.5)
    during = leftovers(srv.data_dir)
    srv.kill()
    sock.close()
    srv.start()
    after = leftovers(srv.data_dir)
    results.append(after == (0, 0))
    rows.append(("kill: mid-upload -> left after restart", f"{after[0]} folders, {after[1]} partial "
                 f"(before the kill: {during[0]} folder in flight)"))
    # 2. a job writing its results (progress past 86 %: the result folder is being staged)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        r = c.post("/v1/analyses", headers=H, files={"video": (CLIP.name, CLIP.read_bytes())})
        job = r.json()["id"]
        deadline = time.monotonic() + 300
        seen = 0.0
        while time.monotonic() < deadline:
            j = c.get(f"/v1/analyses/{job}", headers=H).json()
            seen = j["progress"]
            if j["status"] != "queued" and (seen >= 86 or j["status"] in ("succeeded", "failed")):
                break
            time.sleep(0.02)
    staged = any((srv.data_dir / "jobs" / job).glob(".results.*.partial"))
    srv.kill()
    time.sleep(1.0)  # the orphaned worker notices its parent is gone and exits
    srv.start()
    after = leftovers(srv.data_dir)
    results.append(after == (0, 0))
    rows.append(("kill: while a job writes results -> left after restart",
                 f"{after[0]} folders, {after[1]} partial (killed at {seen:.0f} %, partial folder present: {staged})"))
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        done = wait_all(c, [job], 300)
    rows.append(("kill: that job after restart", done.get(job, {}).get("status", "not terminal")))
    rows.append(("kill: verdict", "PASS" if all(results) else "FAIL"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--uploads", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--max-queue", type=int, default=8)
    p.add_argument("--crash-jobs", type=int, default=4)
    p.add_argument("--pose-clients", type=int, default=50)
    p.add_argument("--pose-seconds", type=float, default=30.0)
    p.add_argument("--job-timeout", type=float, default=600.0)
    p.add_argument("--model-dir", type=Path, default=REPO / "models")
    p.add_argument("--parts", default="burst,crash,pose,abuse,stalled,slowheads,junk,kill",
                   help="comma list of checks to run")
    p.add_argument("--stalled", type=int, default=500, help="stalled uploads (the issue's attack: 10000)")
    p.add_argument("--stalled-concurrency", type=int, default=500, help="stalled uploads open at once")
    p.add_argument("--junk", default="4x20", help="COUNTxMIB junk uploads (the issue's attack: 8x450)")
    p.add_argument("--idle-timeout", type=float, default=3.0, help="upload idle timeout of the second server, s")
    p.add_argument("--slow-heads", type=int, default=500, help="connections that never finish their request head")
    p.add_argument("--head-timeout", type=float, default=3.0, help="request head timeout of the second server, s")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))

    with tempfile.TemporaryDirectory(prefix="gaitpose-load-") as tmp_s:
        tmp = Path(tmp_s)
        models = _models(tmp, args.model_dir)
        srv = Server(tmp / "data", models, args.workers, args.max_queue)
        rows: list[tuple[str, str]] = [("models", models["_kind"]), ("workers / max queue",
                                                                      f"{args.workers} / {args.max_queue}")]
        try:
            rows.append(("server start to ready", f"{srv.start():.1f} s"))
            if "burst" in parts:
                rows += bench_burst(srv, args.uploads, args.job_timeout)
            if "crash" in parts:
                rows += bench_crash(srv, args.crash_jobs, args.job_timeout)
            if "pose" in parts:
                rows += bench_pose(srv, args.pose_clients, args.pose_seconds)
            if "abuse" in parts:
                rows += bench_abuse(srv)
        finally:
            srv.stop()
        if parts & {"stalled", "slowheads", "junk", "kill"}:
            budget = 2048.0  # the service's default GAITPOSE_UPLOAD_DISK_BUDGET_MB
            hard = Server(tmp / "data2", models, 1, args.max_queue, upload_limit_mb="500",
                          upload_idle_timeout_s=str(args.idle_timeout), upload_disk_budget_mb=str(budget),
                          request_head_timeout_s=str(args.head_timeout))
            rows.append(("second server", f"500 MiB upload limit, {args.idle_timeout:.0f} s idle timeout, "
                         f"{args.head_timeout:.0f} s request head timeout, "
                         f"{budget:.0f} MiB upload disk budget, 4 uploads in flight"))
            try:
                hard.start()
                if "stalled" in parts:
                    rows += bench_stalled(hard, args.stalled, args.stalled_concurrency, args.idle_timeout)
                if "slowheads" in parts:
                    rows += bench_slow_heads(hard, args.slow_heads, args.head_timeout)
                if "junk" in parts:
                    count, mib = (int(v) for v in args.junk.lower().split("x"))
                    rows += bench_junk(hard, count, mib, budget)
                if "kill" in parts:
                    rows += bench_kill(hard)
            finally:
                hard.stop()
            log_text = (tmp / "server.log").read_text(errors="replace")
            tracebacks = log_text.count("Traceback (most recent call last)")
            rows.append(("server log (both servers, level warning)",
                         f"{len(log_text.encode()) / 1024:.0f} KiB, {tracebacks} tracebacks, "
                         f"{log_text.count('Exception in ASGI application')} 'Exception in ASGI application'"))
    print("| check | result |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    return 0 if all("FAIL" not in v for _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
