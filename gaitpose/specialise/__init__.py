"""``gaitpose specialise``: a clinic's recordings -> its own fast pose model, in one command.

The stages are the project's own (each a library call, not a subprocess):

    extract -> label -> split -> train -> prune -> polish -> export (+ parity) -> INT8 verdict
    -> evaluate -> domain reference -> card + report

Why it is built this way:

* one wall-time budget (``minutes``) for the whole run. Extraction and labelling cost what the
  recordings cost (labelling is thinned with a stride planned from the frame count, once per
  configuration, so a re-run labels the same frames); then one training epoch is timed and the
  training epochs and pruning epochs/steps are chosen to fit what is left, minus a reserve for
  export, INT8 and evaluation;
* every stage writes a done-marker ``work/state/<stage>.json`` holding the hash of its
  configuration and of every upstream stage, so re-running the same command skips finished stages
  (extraction and labelling also resume inside a stage, training resumes from ``last.pt``); a
  changed option redoes the stage it changes and everything after it;
* bad input (a missing or unreadable recording, a subjects CSV that does not parse, a bad ``--roi``,
  fewer than two independent recordings to hold one out) is refused in one line before any long work;
* training starts from the shipped pretrained student when there is one (``--init``; by default
  ``models/student/pretrained.pt``, else the shipped default student ``model.onnx``) and
  distils from that starting network beside the clinic's pseudo-labels, so the clinic's few minutes
  of video refine a network that already knows people instead of teaching one from random weights;
* the output folder holds ``model.onnx`` (with its metadata embedded, so ``gaitpose analyze
  --model OUT/model.onnx`` needs nothing else), ``meta.json`` (with the domain check's reference, so
  every ``analyze`` run of the model is checked against the clinic's recordings), ``MODEL_CARD.md`` and ``report.html``
  with figures against the general default; the intermediate files stay under ``work/``.

The code is split by what it does: ``options`` (what the command takes, the shared constants),
``preflight`` (input checks), ``state`` (hashes, done-markers, the clock), ``planning`` (the budget),
``starting_network`` (``--init``, with the ONNX -> torch rebuild), one module per group of stages
(``data``, ``training``, ``compress``, ``evaluation``, ``domain_stage``, ``report``: mixins over
``context.RunContext``)
and ``runner`` (the stage sequence and resume). This package re-exports the public API.
"""

from gaitpose.specialise.evaluation import evaluate_onnx_model
from gaitpose.specialise.options import (
    DEFAULT_INPUT_SIZE,
    MAX_EPOCHS,
    MAX_PRUNE_LOSS,
    OUT_MARKER,
    PROBE_RECORDS,
    PROTECT,
    SPEEDUP_TARGET,
    STAGES,
    STATE_VERSION,
    SpecialiseOptions,
)
from gaitpose.specialise.planning import (
    pick_target_macs,
    plan_label_stride,
    plan_prune,
    plan_training,
    steady_epoch_seconds,
)
from gaitpose.specialise.preflight import default_init, preflight
from gaitpose.specialise.report import model_card, report_html
from gaitpose.specialise.runner import Specialiser, specialise
from gaitpose.specialise.starting_network import load_init, model_from_onnx
from gaitpose.specialise.state import _labels_digest

__all__ = [
    "DEFAULT_INPUT_SIZE",
    "MAX_EPOCHS",
    "MAX_PRUNE_LOSS",
    "OUT_MARKER",
    "PROBE_RECORDS",
    "PROTECT",
    "SPEEDUP_TARGET",
    "STAGES",
    "STATE_VERSION",
    "SpecialiseOptions",
    "Specialiser",
    "_labels_digest",
    "default_init",
    "evaluate_onnx_model",
    "load_init",
    "model_card",
    "model_from_onnx",
    "pick_target_macs",
    "plan_label_stride",
    "plan_prune",
    "plan_training",
    "preflight",
    "report_html",
    "specialise",
    "steady_epoch_seconds",
]
