"""The one place an ONNX Runtime session is built (runtime, benchmarks, teachers, export checks).

Why one factory: the runtime's settings (full graph optimisation, one inter-op thread, optional
no-spin workers) are what every latency figure must be measured with, and a model that fails to
load must give the same one-line ``InputError`` wherever it is opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError

__all__ = ["make_session"]


def make_session(
    path: str | os.PathLike[str],
    threads: int | None = None,
    spinning: bool | None = None,
    *,
    quiet: bool = False,
) -> Any:
    """CPU ``onnxruntime.InferenceSession`` for ``path``.

    ``threads``: intra-op threads (None: ORT's choice; then inter-op is left alone too).
    ``spinning=False`` stops idle worker threads busy-waiting, which halves wall time when several
    processes share few cores (ORT's default, None, spins). ``quiet`` hides ORT's warnings.
    Raises :class:`InputError` naming the file for a missing or unloadable model.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.exists():
        raise InputError(path, "model file does not exist")
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    if spinning is not None:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if quiet:
        opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InputError(path, f"not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
