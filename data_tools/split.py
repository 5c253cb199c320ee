"""``gaitpose-data split``: train/val/test COCO files split by recording (and by subject).

Frames of one recording are near-duplicates, and one person's gait is recognisable across
recordings, so a frame-level or recording-level split that lets a subject appear on both sides
measures memorisation. Recordings that share a subject are grouped (union-find) and a group
goes to exactly one split. Groups are shuffled with ``seed`` and assigned to test, then val,
until each holds at least its fraction of the annotations (at least one group each when the
fraction is > 0); the rest is train. ``--test-recordings``/``--val-recordings`` pin groups
first. Image and annotation ids are kept from the source file, so a result can be traced back.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import typer

from gaitpose.cli.util import cli_errors
from gaitpose.errors import InputError
from gaitpose.fsutil import write_json_atomic
from gaitpose.labels import frames_root, load_coco, relative_root

SPLITS = ("train", "val", "test")


def recording_groups(images: list[dict[str, Any]]) -> list[list[str]]:
    """Recordings connected by a shared subject, each group sorted, groups in sorted order."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    by_subject: dict[str, str] = {}
    for img in images:
        rec = str(img.get("recording", ""))
        parent.setdefault(rec, rec)
        subj = img.get("subject")
        if subj not in (None, ""):
            other = by_subject.setdefault(str(subj), rec)
            ra, rb = find(rec), find(other)
            if ra != rb:
                parent[ra] = rb
    groups: dict[str, list[str]] = {}
    for rec in parent:
        groups.setdefault(find(rec), []).append(rec)
    return sorted(sorted(g) for g in groups.values())


def assign_splits(
    groups: list[list[str]],
    weights: dict[str, int],
    val: float,
    test: float,
    seed: int = 0,
    val_recordings: list[str] | None = None,
    test_recordings: list[str] | None = None,
    source: str | os.PathLike[str] | None = None,
) -> dict[str, str]:
    """recording -> split name. ``weights`` is the annotation count per recording."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"--val {val} and --test {test} must be in [0, 1) with a sum below 1")
    rec_group = {r: i for i, g in enumerate(groups) for r in g}
    out: dict[str, str] = {}
    pinned: dict[int, str] = {}
    for split, recs in (("test", test_recordings or []), ("val", val_recordings or [])):
        for r in recs:
            if r not in rec_group:
                raise InputError(source, f"--{split}-recordings names {r!r}, which is not in the label file")
            gi = rec_group[r]
            if pinned.get(gi, split) != split:
                raise InputError(source, f"recording {r!r} shares a subject with recordings pinned to {pinned[gi]}")
            pinned[gi] = split
    free = [i for i in range(len(groups)) if i not in pinned]
    random.Random(seed).shuffle(free)
    total = sum(weights.values()) or 1
    fractions = {"test": test, "val": val}
    for split in ("test", "val"):
        have = sum(weights.get(r, 0) for gi, s in pinned.items() if s == split for r in groups[gi])
        explicit = (test_recordings if split == "test" else val_recordings) or []
        if explicit or fractions[split] <= 0:
            continue
        while free and (have < fractions[split] * total or have == 0):
            if len(free) == 1:
                break  # the last free group is train's
            gi = free.pop(0)
            pinned[gi] = split
            have += sum(weights.get(r, 0) for r in groups[gi])
        if have == 0:
            need = 1 + (test > 0 and not test_recordings) + (val > 0 and not val_recordings)
            raise InputError(
                source,
                f"too few recordings to split: {len(groups)} independent recording group(s) (recordings sharing a "
                f"subject count as one), need at least {need} for train/val/test as requested",
            )
    if not free:
        raise InputError(source, "no recording left for train after val/test; lower --val/--test or pin fewer")
    for gi in free:
        pinned[gi] = "train"
    for gi, split in pinned.items():
        for r in groups[gi]:
            out[r] = split
    return out


def split_labels(
    label_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    val_recordings: list[str] | None = None,
    test_recordings: list[str] | None = None,
) -> dict[str, dict[str, int]]:
    """Write ``train.json``, ``val.json``, ``test.json`` (only non-empty requested splits); returns counts."""
    try:
        data = load_coco(label_path)
    except ValueError as exc:
        raise InputError(None, str(exc)) from None
    root = frames_root(label_path, data)
    groups = recording_groups(data["images"])
    img_rec = {img["id"]: str(img.get("recording", "")) for img in data["images"]}
    weights: dict[str, int] = {r: 0 for g in groups for r in g}
    for ann in data["annotations"]:
        weights[img_rec[ann["image_id"]]] += 1
    which = assign_splits(groups, weights, val, test, seed, val_recordings, test_recordings, label_path)
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        recs = sorted(r for r, s in which.items() if s == split)
        if not recs:
            continue
        keep = set(recs)
        images = [img for img in data["images"] if str(img.get("recording", "")) in keep]
        ids = {img["id"] for img in images}
        anns = [a for a in data["annotations"] if a["image_id"] in ids]
        info = dict(data.get("info", {}))
        path = out_dir / f"{split}.json"
        info["frames_root"] = relative_root(path, root)
        info["split"] = {"name": split, "recordings": recs, "seed": seed, "source": os.path.basename(label_path)}
        write_json_atomic(path, {**data, "info": info, "images": images, "annotations": anns})
        subjects = {img.get("subject") for img in images if img.get("subject") not in (None, "")}
        counts[split] = {"recordings": len(recs), "subjects": len(subjects), "images": len(images),
                         "annotations": len(anns)}
    return counts


def split_command(
    labels: Path = typer.Argument(..., help="COCO label file from `gaitpose-data label`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for train.json, val.json, test.json."),
    val: float = typer.Option(0.15, "--val", help="Fraction of annotations for validation."),
    test: float = typer.Option(0.15, "--test", help="Fraction of annotations for test."),
    seed: int = typer.Option(0, "--seed"),
    test_recordings: str | None = typer.Option(None, "--test-recordings", help="Comma-separated, pinned to test."),
    val_recordings: str | None = typer.Option(None, "--val-recordings", help="Comma-separated, pinned to val."),
) -> None:
    """Split labels by recording (and subject) into train/val/test; deterministic by seed."""

    def names(text: str | None) -> list[str] | None:
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    with cli_errors():
        counts = split_labels(labels, out, val, test, seed, names(val_recordings), names(test_recordings))
    for split, c in counts.items():
        print(f"{split}: {c['recordings']} recordings, {c['subjects']} subjects, {c['images']} images, "
              f"{c['annotations']} annotations -> {out / (split + '.json')}")


def register(app: typer.Typer) -> None:
    app.command("split")(split_command)
