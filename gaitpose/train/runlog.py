"""A training run's logs: ``log.csv``, ``log.json`` and ``curves.png`` in the run folder.

Kept apart from the loop so the loop reads as training only; these are rewritten after every
epoch so an interrupted run can be inspected.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_bytes_atomic, write_json_atomic, write_text_atomic
from gaitpose.labels import PoseRecord

log = logging.getLogger(__name__)


def describe_data(train_records: Sequence[PoseRecord], val_records: Sequence[PoseRecord]) -> dict[str, Any]:
    return {
        "train_samples": len(train_records),
        "val_samples": len(val_records),
        "train_recordings": sorted({r.recording for r in train_records}),
        "val_recordings": sorted({r.recording for r in val_records}),
    }


def plot_curves(history: list[dict[str, Any]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4), dpi=100)
    ax1.plot(epochs, [h["train_loss"] for h in history], color="tab:blue", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train loss", color="tab:blue")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    val = [(h["epoch"], h["val_pck"]) for h in history if h.get("val_pck") is not None]
    if val:
        ax2.plot(*zip(*val, strict=True), "o-", color="tab:orange", label="val PCK@0.1")
    ax2.set_ylabel("val PCK@0.1", color="tab:orange")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_logs(out_dir: Path, history: list[dict[str, Any]], plot: bool = True) -> None:
    cols = ["epoch", "lr", "train_loss", "val_pck", "val_pck_0.05", "best", "images_per_s", "seconds"]
    if any("distill_loss" in h for h in history):
        cols[3:3] = ["label_loss", "distill_loss"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for h in history:
        writer.writerow({k: ("" if h.get(k) is None else h.get(k)) for k in cols})
    write_text_atomic(out_dir / "log.csv", buf.getvalue())
    write_json_atomic(out_dir / "log.json", history, indent=1)
    if not plot:
        return
    try:
        write_bytes_atomic(out_dir / "curves.png", plot_curves(history))
    except Exception as exc:  # a plotting failure must not kill a long training run
        log.warning("could not draw curves.png: %s", exc)
