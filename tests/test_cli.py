"""The command line as a user meets it: one place for the commands, plug-ins, one progress line, one error line."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaitpose.cli.util import ProgressLine

REPO = Path(__file__).resolve().parents[1]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_library_cli_does_not_import_benchmarks_and_bench_plugs_in() -> None:
    code = ("import sys; from typer.testing import CliRunner; from gaitpose.cli import app; "
            "r = CliRunner().invoke(app, ['analyze', '--help']); assert r.exit_code == 0, r.output; "
            "assert not [m for m in sys.modules if m.startswith('benchmarks')], 'library imported benchmarks'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    from gaitpose.cli import app

    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    for name in ("analyze", "train", "prune", "export", "bench"):
        assert f" {name} " in res.output, name
    res = CliRunner().invoke(app, ["bench", "--help"])
    assert res.exit_code == 0 and "--throughput-video" in res.output
    assert "(default:" in res.output and "beside the checkout" in res.output  # not swallowed as rich markup


def test_progress_line_appears_only_once_work_starts_and_leaves_one_line() -> None:
    tty = _Tty()
    with ProgressLine("walk.mp4", stream=tty) as bar:
        assert tty.getvalue() == ""  # nothing before the job reports progress
        for p in (0.0, 0.25, 0.5, 1.0):
            bar.update(p)
    text = tty.getvalue()
    assert "walk.mp4" in text and "100%" in text
    assert text.count("\n") == 1, "more than one line left on the terminal"


def test_progress_line_is_removed_on_error_and_silent_without_terminal() -> None:
    tty = _Tty()
    with pytest.raises(ValueError), ProgressLine("walk.mp4", stream=tty) as bar:
        bar.update(0.3)
        raise ValueError("bad")
    shown = tty.getvalue()
    assert "walk.mp4" in shown and "\n" not in shown and shown.split("\r")[-2].strip() == "", shown
    pipe = io.StringIO()
    with ProgressLine("walk.mp4", stream=pipe) as bar:
        bar.update(0.5)
    assert pipe.getvalue() == ""


def test_progress_line_holds_back_info_logs_unless_verbose() -> None:
    gp = logging.getLogger("gaitpose")
    before = gp.level
    root = logging.getLogger()
    old_root = root.level
    try:
        root.setLevel(logging.INFO)
        with ProgressLine("x", stream=io.StringIO()):
            assert not gp.isEnabledFor(logging.INFO) and gp.isEnabledFor(logging.WARNING)
        assert gp.level == before
        root.setLevel(logging.DEBUG)
        with ProgressLine("x", stream=io.StringIO()):
            assert gp.isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(old_root)


def test_analyze_bad_input_prints_one_error_line_and_no_bar(tmp_path: Path) -> None:
    from gaitpose.cli import app

    bad = tmp_path / "walk.mp4"
    bad.write_bytes(b"not a video" * 50)
    res = CliRunner().invoke(app, ["analyze", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "walk.mp4" in lines[0], res.output
    assert "%" not in res.output
