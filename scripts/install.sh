#!/usr/bin/env bash
# Set up gaitpose in a virtual environment on a fresh machine.
#   bash scripts/install.sh serve   # runtime only: analyze + service, no torch
#   bash scripts/install.sh all     # everything: data tools, training, service, tests, browser
# The venv lives in $GAITPOSE_VENV (default .venv). Safe to rerun: pip skips what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-all}"
venv="${GAITPOSE_VENV:-.venv}"
py="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install -U pip wheel setuptools >/dev/null

case "$profile" in
  serve)
    "${pip[@]}" install -e ".[serve]"
    ;;
  all)
    # torch first and pinned: the CPU build on the machines' disk. Any unpinned request
    # would download a multi-GB CUDA build.
    "${pip[@]}" install "torch==2.13.0"
    # mediapipe 0.10.21 bundles the BlazePose full model (runs offline). Its metadata pins
    # jax/jaxlib/numpy<2 which Pose does not use; install it alone and add what Pose imports
    # (listed in the 'data' extra).
    "${pip[@]}" install --no-deps "mediapipe==0.10.21"
    "${pip[@]}" install -e ".[data,train,serve,ray,dev]"
    if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Debian chromium for the browser test"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "warning: could not install chromium; the browser test will be skipped"
    fi
    ;;
  *)
    echo "usage: scripts/install.sh serve|all" >&2
    exit 2
    ;;
esac
echo "gaitpose installed in $venv ($profile)"
