#!/usr/bin/env bash
# Build the gaitpose edge image with podman and smoke-test it: start, health, readiness, one
# small upload (tests/data/pose2sim_cam01.mp4), poll to a terminal state, fetch the results.
#
# Works on machines without a Docker engine or registry access (see docs/container-testing.md
# in the shared docs): podman + runc, a containers.conf that picks runc and sane ulimits, and,
# when python:3.11-slim cannot be pulled, a Debian bookworm stand-in built with debootstrap.
#
# Needs: podman runc debootstrap curl (apt-get install -y podman runc debootstrap curl), root for
# debootstrap. Without shipped models (models/student/model.onnx) tiny random-weight models are
# exported with the repo's .venv and mounted; the job may then fail with "no person", which
# still proves the whole path (upload -> worker -> DB -> API) works in the container.
#
# Env: GAITPOSE_SMOKE_PORT (default 18080), GAITPOSE_SMOKE_CACHE (default ~/.cache/gaitpose-smoke),
#      GAITPOSE_SMOKE_KEEP=1 keeps the container running afterwards.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${GAITPOSE_SMOKE_PORT:-18080}"
CACHE="${GAITPOSE_SMOKE_CACHE:-$HOME/.cache/gaitpose-smoke}"
IMAGE="gaitpose:ci"
NAME="gaitpose-smoke-$$"
KEY="smoke-key-$$"
PY="${PYTHON:-$REPO/.venv/bin/python}"
mkdir -p "$CACHE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gaitpose-smoke.XXXXXX")"

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "FAIL: $*"; exit 1; }
cleanup() {
  if [[ "${GAITPOSE_SMOKE_KEEP:-0}" != 1 ]]; then podman rm -f "$NAME" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in podman runc curl; do command -v "$tool" >/dev/null || die "$tool not installed (apt-get install -y podman runc debootstrap curl)"; done

# 1. podman configuration: runc (crun refuses this cgroup setup) and ulimits the host allows
hard_nofile="$(ulimit -Hn)"
cat > "$CACHE/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=${hard_nofile}:${hard_nofile}", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$CACHE/containers.conf"

# 2. base image: use python:3.11-slim if present or pullable, else build the Debian stand-in
if ! podman image exists docker.io/library/python:3.11-slim; then
  if ! timeout 60 podman pull -q docker.io/library/python:3.11-slim >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || die "debootstrap not installed and python:3.11-slim cannot be pulled"
    tarball="$CACHE/debian-py-bookworm.tar"
    if [[ ! -s "$tarball" ]]; then
      log "building Debian bookworm stand-in base image with debootstrap (a few minutes)"
      root="$WORK/rootfs"
      debootstrap --variant=minbase --include=ca-certificates,python3,python3-pip,python3-venv \
        bookworm "$root" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
      if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
        cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
      fi
      chroot "$root" update-ca-certificates >/dev/null
      rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
      # the official image has `python`; the stand-in gets the same name
      ln -sf python3 "$root/usr/bin/python"
      tar -C "$root" -cf "$tarball" .
      rm -rf "$root"
    fi
    podman import -q "$tarball" localhost/debian-py:bookworm >/dev/null
    podman tag localhost/debian-py:bookworm docker.io/library/python:3.11-slim
  fi
fi

# 3. build
log "building $IMAGE"
t0=$SECONDS
podman build --format docker -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; die "build failed"; }
size="$(podman image inspect "$IMAGE" --format '{{.Size}}')"
base_size="$(podman image inspect docker.io/library/python:3.11-slim --format '{{.Size}}' 2>/dev/null || echo 0)"
log "built in $((SECONDS - t0)) s; size $(awk -v s="$size" 'BEGIN {printf "%.0f MB", s/1e6}') \
($(awk -v s="$size" -v b="$base_size" 'BEGIN {printf "%.0f MB", (s-b)/1e6}') on top of the $(awk -v b="$base_size" 'BEGIN {printf "%.0f MB", b/1e6}') base image)"
podman image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}' | grep -q healthz || die "image has no HEALTHCHECK"

# 4. models: shipped ones are inside the image; otherwise export tiny ones and mount them
mount_args=()
if [[ ! -f "$REPO/models/student/model.onnx" || ! -f "$REPO/models/localizer/model.onnx" ]]; then
  log "no shipped models: exporting tiny random-weight models for the smoke test"
  mkdir -p "$WORK/models/student" "$WORK/models/localizer"
  (cd "$REPO" && "$PY" - "$WORK/models" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from service_fixtures import export_tiny_localizer, export_tiny_pose_model
root = Path(sys.argv[1])
export_tiny_pose_model(root / "student" / "model.onnx")
export_tiny_localizer(root / "localizer" / "model.onnx")
PYEOF
  )
  chmod -R a+rX "$WORK/models"
  mount_args=(-v "$WORK/models:/app/models:ro,Z")
fi

# 5. run (refuses to start on 0.0.0.0 without keys: check that first)
if podman run --rm "$IMAGE" >"$WORK/nokey.log" 2>&1; then die "container started without API keys"; fi
grep -q "refusing" "$WORK/nokey.log" || die "no-key refusal message missing: $(cat "$WORK/nokey.log")"
podman run -d --name "$NAME" -p "127.0.0.1:$PORT:8000" -e GAITPOSE_API_KEYS="$KEY" "${mount_args[@]}" "$IMAGE" >/dev/null
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 120); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "$base/healthz" >/dev/null || { podman logs "$NAME" | tail -40; die "healthz never answered"; }
curl -fsS "$base/readyz" || { podman logs "$NAME" | tail -40; die "not ready"; }
echo
[[ "$(podman exec "$NAME" id -u)" != 0 ]] || die "container runs as root"
podman exec "$NAME" python3 -c "import sys, service.app; assert 'torch' not in sys.modules" || die "torch importable path"
code="$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/analyses")"
[[ "$code" == 401 ]] || die "expected 401 without key, got $code"
# security headers on the page and on an API answer
for path in / /v1/analyses; do
  headers="$(curl -s -D - -o /dev/null "$base$path" | tr -d '\r' | tr 'A-Z' 'a-z')"
  for h in "content-security-policy: default-src 'self'" "x-content-type-options: nosniff" \
           "x-frame-options: deny" "referrer-policy: no-referrer"; do
    grep -qF "$h" <<<"$headers" || die "$path: header missing: $h"
  done
done
code="$(curl -s -o /dev/null -w '%{http_code}' "$base/docs")"
[[ "$code" == 404 ]] || die "expected /docs off (404) by default, got $code"

# 6. one upload, poll to a terminal state, fetch results
resp="$(curl -fsS -H "X-API-Key: $KEY" -F "video=@$REPO/tests/data/pose2sim_cam01.mp4" "$base/v1/analyses")"
id="$(printf '%s' "$resp" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
log "job $id accepted"
status=""
for _ in $(seq 1 600); do
  job="$(curl -fsS -H "X-API-Key: $KEY" "$base/v1/analyses/$id")"
  status="$(printf '%s' "$job" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
  [[ "$status" == succeeded || "$status" == failed ]] && break
  sleep 0.5
done
log "job $id: $status"
printf '%s\n' "$job"
case "$status" in
  succeeded)
    for f in keypoints.json metrics.json keypoints.csv events.csv report.html clinical.json angles.png angles_cycle.png; do
      curl -fsS -H "X-API-Key: $KEY" -o "$WORK/$f" "$base/v1/analyses/$id/$f" || die "cannot fetch $f"
      [[ -s "$WORK/$f" ]] || die "$f is empty"
    done
    # overlay.mp4 is rendered by the worker after the job has succeeded: wait for it
    for _ in $(seq 1 240); do
      curl -fsS -H "X-API-Key: $KEY" -o "$WORK/overlay.mp4" "$base/v1/analyses/$id/overlay.mp4" 2>/dev/null && break
      sleep 0.5
    done
    [[ -s "$WORK/overlay.mp4" ]] || die "overlay.mp4 was not rendered after the job succeeded"
    log "all 9 result files fetched (overlay rendered after the result)" ;;
  failed)
    [[ ${#mount_args[@]} -gt 0 ]] || die "job failed with the shipped models"
    printf '%s' "$job" | python3 -c 'import json, sys; e = json.load(sys.stdin)["error"]; assert e and "Traceback" not in e, e' \
      || die "failed job has no clear reason"
    log "failed with a clear reason (tiny random models)" ;;
  *) die "job did not reach a terminal state" ;;
esac
curl -fsS "$base/metrics" | grep -q gaitpose_jobs_finished_total || die "metrics missing"
log "OK"
