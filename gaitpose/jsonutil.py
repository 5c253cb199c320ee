"""One JSON encoder for every file and summary gaitpose writes.

Why one: a metric with nothing to measure is NaN, numpy hands out ``float32``/``int64``/``bool_``
scalars and arrays, and strict JSON readers (browsers, ``jq``, the web page) reject NaN and
cannot read numpy types. Four hand-written sanitisers used to do this with small differences;
this module is the only one, so every output treats NaN, infinities and numpy values the same way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: NaN and +-inf -> None, numpy/torch scalars and arrays -> Python, paths -> str.

    Mappings keep their order (keys become strings), tuples and sets become lists, dataclasses
    become dicts of their fields. Anything else is returned unchanged (``json`` then decides).
    """
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    tolist = getattr(obj, "tolist", None)  # numpy arrays and scalars, torch tensors
    if callable(tolist):
        return to_jsonable(tolist())
    return obj


def dumps(obj: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``obj`` (through :func:`to_jsonable`; never emits ``NaN``)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
