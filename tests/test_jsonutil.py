"""The one JSON encoder: NaN/inf become null, numpy values become plain JSON, output is strict JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gaitpose.jsonutil import dumps, to_jsonable


@dataclass
class _Row:
    name: str
    value: float


def test_nan_inf_and_numpy_values_become_plain_json() -> None:
    obj = {
        "nan": float("nan"), "inf": np.float32("inf"), "f32": np.float32(0.5), "i64": np.int64(7),
        "flag": np.bool_(True), "arr": np.array([[1.0, np.nan], [2.0, 3.0]]), "tuple": (1, np.nan),
        "path": Path("a") / "b.mp4", "row": _Row("x", float("nan")), 3: "int key",
    }
    out = to_jsonable(obj)
    assert out == {
        "nan": None, "inf": None, "f32": 0.5, "i64": 7, "flag": True, "arr": [[1.0, None], [2.0, 3.0]],
        "tuple": [1, None], "path": str(Path("a") / "b.mp4"), "row": {"name": "x", "value": None}, "3": "int key",
    }
    assert type(out["i64"]) is int and type(out["flag"]) is bool
    text = dumps(obj, indent=1)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["arr"][0][1] is None


def test_dumps_refuses_what_json_cannot_represent() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
