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
import sys
import tempfile
from pathlib import Path

from benchmarks.load_hardening import bench_junk, bench_kill, bench_slow_heads, bench_stalled
from benchmarks.load_queue import bench_abuse, bench_burst, bench_crash, bench_pose
from benchmarks.load_server import REPO, Server, server_models


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
        models = server_models(tmp, args.model_dir)
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
