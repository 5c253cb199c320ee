"""Where gaitpose finds its models and keeps its data: one rule for the CLI and the service.

Why one module: the CLI found the shipped models from any folder while the service looked for
``models/`` in the folder it was started from, so ``gaitpose-serve`` started elsewhere came up
without models. Both now ask these functions. Nothing here is read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from gaitpose.errors import InputError

MODEL_DIR_ENV = "GAITPOSE_MODEL_DIR"
POSE_MODEL = Path("general") / "blazepose_full.onnx"
"""The default pose model of `gaitpose analyze`, the service and `gaitpose evaluate`: the general model."""
STUDENT_POSE_MODEL = Path("student") / "model.onnx"
"""The shipped fast student (a specialised model: its domain check reference sits in ``student/meta.json``)."""
LOCALIZER_MODEL = Path("localizer") / "model.onnx"
GENERAL_POSE_MODEL = Path("general") / "blazepose_full.onnx"
"""The general pose model: MediaPipe's BlazePose full landmark network converted to ONNX by
``scripts/convert_blazepose.py`` (its detector lies beside it); teacher-grade keypoints on people
and rooms no model here was trained on. Load it with ``gaitpose.infer.blazepose.load_pose_estimator``."""


def default_model_dir() -> Path:
    """Where the shipped models live: ``$GAITPOSE_MODEL_DIR``, else ``models/`` beside the package.

    Looks at the repository layout (``<repo>/models`` next to ``gaitpose/``) and at a ``models``
    folder installed inside the package; returns the first that exists (the repository path if none).
    Never the current folder: the answer must not depend on where a command was started.
    """
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env)
    pkg = Path(__file__).resolve().parent
    candidates = [pkg.parent / "models", pkg / "models"]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def model_path(path: str | os.PathLike[str] | None, default_rel: Path, model_dir: str | os.PathLike[str] | None = None
               ) -> Path:
    """``path`` when given, else ``default_rel`` inside ``model_dir`` (default :func:`default_model_dir`).

    A given folder holding a ``model.onnx`` (the output of ``gaitpose specialise``) stands for that
    file, for the CLI's ``--model`` and the service's ``GAITPOSE_POSE_MODEL`` alike.
    """
    if path is not None:
        p = Path(path)
        return p / "model.onnx" if p.is_dir() and (p / "model.onnx").is_file() else p
    return Path(model_dir if model_dir is not None else default_model_dir()) / default_rel


def resolve_model(path: str | os.PathLike[str] | None, default_rel: Path, what: str, option: str,
                  model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The model file to load; :class:`InputError` (naming the file and how to fix it) when absent."""
    p = model_path(path, default_rel, model_dir)
    if not p.exists():
        hint = "" if path is not None else f"; pass {option} or set {MODEL_DIR_ENV}"
        raise InputError(p, f"{what} model not found{hint}")
    return p


def resolve_pose_model(path: str | os.PathLike[str] | None = None,
                       model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The default pose model: ``path``, else ``<model dir>/general/blazepose_full.onnx`` (the general model)."""
    return resolve_model(path, POSE_MODEL, "pose", "--model", model_dir)


def resolve_general_model(path: str | os.PathLike[str] | None = None,
                          model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The general pose model: ``path``, else ``<model dir>/general/blazepose_full.onnx``."""
    return resolve_model(path, GENERAL_POSE_MODEL, "general pose", "--model", model_dir)


def resolve_localizer_model(path: str | os.PathLike[str] | None = None,
                            model_dir: str | os.PathLike[str] | None = None) -> Path:
    """The person localiser ONNX model: ``path``, else ``<model dir>/localizer/model.onnx``."""
    return resolve_model(path, LOCALIZER_MODEL, "localizer", "--localizer", model_dir)


def user_data_dir() -> Path:
    """Per-user data folder: ``platformdirs`` when installed, else ``$XDG_DATA_HOME/gaitpose``
    (``~/.local/share/gaitpose``). Why not the current folder: a service started in a source
    tree must not litter it, and must find its jobs again wherever it is started from.
    """
    try:
        import platformdirs
    except ImportError:
        xdg = os.environ.get("XDG_DATA_HOME", "").strip()
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
        return base / "gaitpose"
    return Path(platformdirs.user_data_dir("gaitpose", appauthor=False))


def default_service_data_dir() -> Path:
    """The service's uploads, results and job database: ``<user data dir>/service``."""
    return user_data_dir() / "service"
