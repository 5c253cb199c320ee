"""ONNX Runtime CPU latency per crop (batch 1), the number that matters on an edge box.

Median and p90 over many timed runs after a warm-up, for each intra-op thread count, with a
session per model and thread count (ORT fixes its thread pool at session creation).

When several models are compared, their timed runs are interleaved in small blocks, so a burst
of load from other processes on a shared machine hits all of them alike instead of whichever
model happened to be measured at that moment.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from gaitpose.infer.session import make_session


def compare_latency(
    models: dict[str, str | os.PathLike[str]],
    threads: tuple[int, ...] = (1, 2),
    warmup: int = 10,
    runs: int = 100,
    block: int = 10,
    seed: int = 0,
    spinning: bool | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{name: {"threads=N": {"median_ms", "p90_ms", "mean_ms", "runs"}}}``, runs interleaved across models."""
    result: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in models}
    for n in threads:
        sessions = {name: make_session(path, n, spinning) for name, path in models.items()}
        feeds = {}
        for name, sess in sessions.items():
            inp = sess.get_inputs()[0]
            shape = [1 if not isinstance(d, int) else d for d in inp.shape]
            feeds[name] = {inp.name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}
            for _ in range(warmup):
                sess.run(None, feeds[name])
        times: dict[str, list[float]] = {name: [] for name in models}
        done = 0
        while done < runs:
            k = min(block, runs - done)
            for name, sess in sessions.items():
                feed = feeds[name]
                for _ in range(k):
                    t0 = time.perf_counter()
                    sess.run(None, feed)
                    times[name].append((time.perf_counter() - t0) * 1000.0)
            done += k
        for name, ts in times.items():
            arr = np.asarray(ts)
            result[name][f"threads={n}"] = {
                "median_ms": round(float(np.median(arr)), 4),
                "p90_ms": round(float(np.percentile(arr, 90)), 4),
                "mean_ms": round(float(arr.mean()), 4),
                "runs": len(arr),
            }
    return result


def measure_latency(
    onnx_path: str | os.PathLike[str],
    threads: tuple[int, ...] = (1, 2),
    warmup: int = 10,
    runs: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``{"threads=1": {"median_ms", "p90_ms", "mean_ms", "runs"}, ...}`` for one crop per call."""
    return compare_latency({"m": onnx_path}, threads, warmup=warmup, runs=runs, seed=seed)["m"]
