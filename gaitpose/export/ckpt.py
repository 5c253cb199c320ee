"""Loading training checkpoints for export/pruning with one-line errors for bad files.

The checkpoint format belongs to ``gaitpose.nn.checkpoint``; this module only turns the
ways a user can hand us the wrong file into :class:`~gaitpose.errors.InputError`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gaitpose.errors import InputError


def load_student(path: str | os.PathLike[str]) -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, ModelConfig, checkpoint dict) from a gaitpose checkpoint (pruned or not)."""
    import pickle
    import zipfile

    import torch

    from gaitpose.nn.checkpoint import load_model

    path = Path(path)
    if not path.exists():
        raise InputError(path, "checkpoint file does not exist")
    if path.is_dir():
        raise InputError(path, "expected a checkpoint file, got a folder")
    try:
        model, cfg, ckpt = load_model(path, map_location="cpu")
    except InputError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, KeyError, TypeError,
            AttributeError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise InputError(path, f"not a loadable gaitpose checkpoint ({reason})") from None
    if not isinstance(model, torch.nn.Module):
        raise InputError(path, "checkpoint did not yield a torch model")
    model.eval()
    return model, cfg, ckpt
