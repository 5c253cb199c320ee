"""Shrink a virtual environment for the container image without dropping a feature.

Run by the Dockerfile's builder stage: ``python3 scripts/trim_venv.py /opt/venv``.

- removes the packages' own test suites (``site-packages/**/tests``);
- strips debug symbols from native libraries, one file at a time, and keeps the stripped file
  only when it still loads: libraries that auditwheel patched with patchelf can be corrupted by
  ``strip`` ("ELF load command address/offset not page-aligned"), so each one is loaded in a
  fresh process after stripping and restored from its original when that fails.

Prints the bytes saved. Needs ``strip`` (binutils) on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LOAD = "import ctypes, sys; ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)"


def tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def remove_tests(site: Path) -> None:
    for d in sorted(site.rglob("tests")):
        if d.is_dir() and not d.is_symlink():
            shutil.rmtree(d, ignore_errors=True)


def loads(path: Path, python: str) -> bool:
    return subprocess.run([python, "-c", LOAD, str(path)], capture_output=True, timeout=60).returncode == 0


def strip_libraries(root: Path, python: str) -> tuple[int, int]:
    """(stripped, kept as they were) native libraries under ``root``."""
    stripped = kept = 0
    for lib in sorted(root.rglob("*.so*")):
        if not lib.is_file() or lib.is_symlink() or not loads(lib, python):
            continue  # not loadable on its own before stripping either: leave it alone
        backup = lib.with_name(lib.name + ".orig")
        shutil.copy2(lib, backup)
        ok = subprocess.run(["strip", "--strip-unneeded", str(lib)], capture_output=True).returncode == 0
        if ok and loads(lib, python) and lib.stat().st_size < backup.stat().st_size:
            backup.unlink()
            stripped += 1
        else:
            os.replace(backup, lib)
            kept += 1
    return stripped, kept


def main(argv: list[str]) -> int:
    venv = Path(argv[1] if len(argv) > 1 else "/opt/venv")
    python = str(venv / "bin" / "python")
    before = tree_size(venv)
    for site in venv.glob("lib/python3*/site-packages"):
        remove_tests(site)
    stripped, kept = strip_libraries(venv / "lib", python)
    after = tree_size(venv)
    print(f"trim_venv: {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB "
          f"({stripped} libraries stripped, {kept} kept as they were)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
