"""One model location rule: the CLI and the service find the shipped models from any folder.

The server test starts the real ``gaitpose-serve`` as a subprocess from an empty temporary
working folder with a temporary HOME: /readyz must be 200 (models found) and nothing may be
written into the working folder (the data lands in the per-user data folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gaitpose.errors import InputError
from gaitpose.registry import (
    default_model_dir,
    default_service_data_dir,
    resolve_localizer_model,
    resolve_pose_model,
    user_data_dir,
)

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models"
needs_models = pytest.mark.skipif(not (SHIPPED / "student" / "model.onnx").is_file()
                                  or not (SHIPPED / "localizer" / "model.onnx").is_file(),
                                  reason="shipped models not installed")


def test_analyze_keeps_exporting_default_model_dir() -> None:
    from gaitpose.analyze import default_model_dir as from_analyze

    assert from_analyze is default_model_dir


def test_model_dir_does_not_depend_on_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAITPOSE_MODEL_DIR", raising=False)
    before = default_model_dir()
    monkeypatch.chdir(tmp_path)
    assert default_model_dir() == before and before.is_absolute()


def test_resolvers_name_the_missing_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GAITPOSE_MODEL_DIR") as exc:
        resolve_pose_model(model_dir=tmp_path)
    assert str(tmp_path / "general" / "blazepose_full.onnx") in str(exc.value)
    with pytest.raises(InputError, match="localizer model not found"):
        resolve_localizer_model(tmp_path / "nope.onnx")


def test_user_data_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import platformdirs  # noqa: F401
    except ImportError:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert user_data_dir() == tmp_path / "xdg" / "gaitpose"
        monkeypatch.delenv("XDG_DATA_HOME")
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert user_data_dir() == tmp_path / "home" / ".local" / "share" / "gaitpose"
    assert default_service_data_dir().parent == user_data_dir()


def test_service_settings_use_the_same_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.settings import ServiceSettings

    monkeypatch.delenv("GAITPOSE_MODEL_DIR", raising=False)
    monkeypatch.delenv("GAITPOSE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    s = ServiceSettings()
    assert s.pose_model_path == default_model_dir() / "general" / "blazepose_full.onnx"
    assert s.localizer_model_path == default_model_dir() / "localizer" / "model.onnx"
    assert s.data_dir == default_service_data_dir()


def test_a_specialise_output_folder_stands_for_its_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`gaitpose analyze --model OUT` and the service's GAITPOSE_POSE_MODEL=OUT both take the folder."""
    from gaitpose.infer.blazepose import load_pose_estimator
    from service.settings import ServiceSettings

    out = tmp_path / "clinic_model"
    out.mkdir()
    (out / "model.onnx").write_bytes(b"onnx")
    assert resolve_pose_model(out) == out / "model.onnx"
    monkeypatch.setenv("GAITPOSE_POSE_MODEL", str(out))
    assert ServiceSettings().pose_model_path == out / "model.onnx"
    empty = tmp_path / "empty"  # a folder without model.onnx is no model: refused, naming the folder
    empty.mkdir()
    with pytest.raises(InputError) as exc:
        load_pose_estimator(resolve_pose_model(empty))
    assert str(empty) in str(exc.value)


def test_serve_help_shows_the_data_folder() -> None:
    out = subprocess.run([sys.executable, "-m", "service.cli", "--help"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert str(default_service_data_dir()) in " ".join(out.split())


@needs_models
def test_server_started_elsewhere_is_ready(tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    home = tmp_path / "home"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAITPOSE_") and k != "XDG_DATA_HOME"}
    env.update(HOME=str(home), PYTHONPATH=str(REPO), GAITPOSE_WORKERS="0")
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "--port", str(port), "--log-level", "warning"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert status == 200, (status, proc.stdout.read1().decode() if proc.poll() is not None else "")
    finally:
        proc.terminate()
        proc.wait(20)
    assert list(cwd.iterdir()) == []  # nothing left in the folder it was started from
    assert (home / ".local" / "share" / "gaitpose" / "service" / "jobs.db").is_file() or \
        any((home / ".local" / "share").rglob("jobs.db"))
