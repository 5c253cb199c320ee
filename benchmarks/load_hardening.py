"""Hardening checks of the service: stalled uploads, never-finished request heads, junk uploads, SIGKILL at any stage.

Parts 5-7 of :mod:`benchmarks.load_service` (which documents each check and runs them), on a
server with a large upload limit and short timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from benchmarks.load_server import CLIP, KEY, H, Server, wait_all

__all__ = ["bench_junk", "bench_kill", "bench_slow_heads", "bench_stalled"]

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
