#!/usr/bin/env bash
# Rebuild the shipped default models in models/ from the shared videos with the project's own
# one-command pipeline, `gaitpose specialise` (extract -> label -> split -> train -> prune to the
# per-crop budget -> polish -> export with parity -> INT8 verdict -> evaluate on the held-out view -> model
# card), then train the person localiser on the same labels and install both into models/.
#
#   bash scripts/build_default_model.sh [VIDEOS_DIR] [WORK_DIR]
# Env: MINUTES (wall-time budget of `gaitpose specialise`, default 60), DEVICE (auto|cpu|cuda),
# THREADS, LOC_EPOCHS, INIT (a starting network for --init; default: random weights, since the default
# model must not start from itself), EPOCHS (fixed training epochs instead of the budget's choice).
# Re-running the same command resumes: finished stages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
VIDEOS="${1:-../shared/data/videos}"
WORK="${2:-runs/default}"
STAGES="$WORK"/work  # gaitpose specialise keeps its intermediate files here
MINUTES="${MINUTES:-60}"
DEVICE="${DEVICE:-auto}"
THREADS="${THREADS:-2}"
LOC_EPOCHS="${LOC_EPOCHS:-30}"
BIN="${GAITPOSE_VENV:-.venv}/bin"

# Three lab views and the Sports2D walk train; the fourth lab view (cam04, from behind) is held out
# for the evaluation. No --subjects-csv: the four lab views show the same man, and a subject-level
# split would leave nothing to evaluate on; the model card says so.
init_args=(--no-init)
if [[ -n "${INIT:-}" ]]; then init_args=(--init "$INIT"); fi
epoch_args=()
if [[ -n "${EPOCHS:-}" ]]; then epoch_args=(--epochs "$EPOCHS"); fi
echo "== 1. gaitpose specialise (${MINUTES} min budget)"
"$BIN/gaitpose" specialise "$VIDEOS"/pose2sim_single_cam0{1,2,3}.mp4 "$VIDEOS/sports2d_demo.mp4" \
    --held-out "$VIDEOS/pose2sim_single_cam04.mp4" --out "$WORK" --minutes "$MINUTES" --device "$DEVICE" \
    --threads "$THREADS" "${init_args[@]}" "${epoch_args[@]}"

echo "== 2. person localiser on the same training labels"
mkdir -p "$WORK/localizer"
"$BIN/gaitpose" train-localizer --train "$STAGES/split/train.json" --out "$WORK/localizer" \
    --epochs "$LOC_EPOCHS" --threads "$THREADS" --export "$WORK/localizer/model.onnx"

echo "== 3. install into models/"
mkdir -p models/student models/localizer
cp "$WORK/model.onnx" models/student/model.onnx
rm -f models/student/model.int8.onnx models/student/model.fp32.onnx
for f in model.int8.onnx model.fp32.onnx; do
    if [[ -f "$WORK/$f" ]]; then cp "$WORK/$f" "models/student/$f"; fi
done
# The unpruned network is what `gaitpose specialise` starts a clinic's model from by default.
if [[ -f "$STAGES/unpruned.onnx" ]]; then
    cp "$STAGES/unpruned.onnx" models/student/model.unpruned.onnx
else
    cp "$STAGES/model.fp32.onnx" models/student/model.unpruned.onnx
fi
cp "$WORK/meta.json" models/student/meta.json
cp "$WORK/MODEL_CARD.md" models/MODEL_CARD.md
cp "$WORK/localizer/model.onnx" models/localizer/model.onnx
cp "$WORK/localizer/meta.json" models/localizer/meta.json
echo "done: models/ updated; see models/MODEL_CARD.md and $WORK/report.html"
