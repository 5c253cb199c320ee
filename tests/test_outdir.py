"""``--out`` safety: a user's files are never lost, and a bad output folder fails before any decoding.

Runs the real ``gaitpose analyze`` command (typer's runner, in process) on a real video with the
shipped models; the refusals must come back in well under a second, long before an analysis
could have finished.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaitpose.errors import InputError
from gaitpose.fsutil import RESULT_MARKER, check_out_dir, is_result_dir, staged_dir

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "pose2sim_cam01.mp4"
MODELS = REPO / "models"
needs_models = pytest.mark.skipif(not (MODELS / "student" / "model.onnx").is_file()
                                  or not (MODELS / "localizer" / "model.onnx").is_file(),
                                  reason="shipped models not installed")


def _analyze(args: list[str]) -> tuple[int, str, float]:
    from gaitpose.cli import app

    t0 = time.perf_counter()
    res = CliRunner().invoke(app, ["analyze", str(CLIP), *args])
    return res.exit_code, res.output, time.perf_counter() - t0


def _error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture(autouse=True)
def _warm_imports() -> None:
    """Import the command once so the timings below measure the check, not Python's imports."""
    import gaitpose.analyze
    import gaitpose.cli  # noqa: F401


@needs_models
def test_user_files_survive_and_error_is_one_line_before_decoding(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("1,2,3")
    code, output, dt = _analyze(["--out", str(out), "--no-overlay"])
    assert code != 0
    line = _error_line(output)
    assert str(out) in line and "--overwrite" in line
    assert dt < 0.5, f"refusal took {dt:.2f} s: the check must run before decoding"
    assert (out / "thesis.docx").read_text() == "years of work"
    assert (out / "sub" / "data.csv").read_text() == "1,2,3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left behind


@needs_models
@pytest.mark.parametrize("kind", ["file", "cwd", "parent_of_cwd", "unwritable", "under_a_file"])
def test_bad_out_is_a_one_line_error_before_decoding(kind: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    notes = work / "notes.txt"
    notes.write_text("keep me")
    locked = tmp_path / "locked"
    if kind == "file":
        out = str(notes)
    elif kind == "cwd":
        out = "."
    elif kind == "parent_of_cwd":
        out = ".."
    elif kind == "under_a_file":
        out = str(notes / "results")
    else:
        if os.geteuid() == 0:  # root may write anywhere mode bits say no; /proc refuses even root
            out = "/proc/gaitpose-results"
        else:
            locked.mkdir()
            locked.chmod(0o555)
            out = str(locked / "results")
    code, output, dt = _analyze(["--out", out, "--no-overlay"])
    assert code != 0
    line = _error_line(output)
    assert out in line
    assert dt < 0.5, f"refusal took {dt:.2f} s: the check must run before decoding"
    assert notes.read_text() == "keep me"
    assert not (work / ".notes.txt.old").exists()
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]


@needs_models
def test_previous_result_is_replaced_and_overwrite_replaces_user_folder(tmp_path: Path) -> None:
    out = tmp_path / "results"
    code, output, _ = _analyze(["--out", str(out), "--no-overlay"])
    assert code == 0, output
    assert is_result_dir(out) and (out / "metrics.json").is_file()
    stale = out / "stale-from-first-run.txt"
    stale.write_text("x")
    code, output, _ = _analyze(["--out", str(out), "--no-overlay"])  # a marked result: replaced
    assert code == 0, output
    assert (out / "metrics.json").is_file() and not stale.exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "old.txt").write_text("replace me on purpose")
    code, output, _ = _analyze(["--out", str(mine), "--no-overlay", "--overwrite"])
    assert code == 0, output
    assert is_result_dir(mine) and not (mine / "old.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "results"]


def test_check_out_dir_accepts_new_empty_and_marked_folders(tmp_path: Path) -> None:
    assert check_out_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # the check creates nothing
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / RESULT_MARKER).write_text("")
    (tmp_path / "res" / "metrics.json").write_text("{}")
    check_out_dir(tmp_path / "res")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "res")
    with pytest.raises(InputError, match="not a folder"):
        check_out_dir(link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "link", "res"]  # no probe left


def test_staged_dir_refuses_an_unmarked_folder_even_without_the_preflight(tmp_path: Path) -> None:
    """Defence in depth: a folder that appears during the work is not replaced either."""
    out = tmp_path / "out"
    with pytest.raises(InputError, match="not a gaitpose result"), staged_dir(out) as tmp:
        (tmp / "result.txt").write_text("new")
        out.mkdir()
        (out / "user.txt").write_text("mine")
    assert (out / "user.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_dir_never_moves_a_file_aside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError, match="not a folder"), staged_dir(out) as tmp:
        (tmp / "result.txt").write_text("new")
        out.write_text("user file")
    assert out.read_text() == "user file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_dir_replaces_marked_result_and_keeps_user_dot_old(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert is_result_dir(out)
    user_old = tmp_path / ".out.old"  # the name the old code used for the folder it then deleted
    user_old.mkdir()
    (user_old / "keep.txt").write_text("mine")
    with staged_dir(out) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [RESULT_MARKER, "b.txt"]
    assert (user_old / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.old", "out"]
