"""Network slimming (Liu et al. 2017) of the pose student with Torch-Pruning.

Recipe
1. Sparsity phase: train with an L1 penalty on every BatchNorm scale (``BNScalePruner.regularize``
   after backward), which drives the scales of unneeded channels towards zero.
2. Iterative pruning: ``steps`` rounds, each removing channels until the MACs reach the next point
   on a linear path from 1.0 to ``target_macs`` of the original, followed by fine-tuning. Global
   ranking (one threshold across layers) lets the network decide where width is cheap.
3. Baselines: the same schedule with L2 weight-magnitude or random channel importance.

Torch-Pruning builds the dependency graph (residual adds, depthwise groups, FPN adds tie channels
together), so no coupling is hand-written here. The heatmap ``head`` is ignored (its 21 outputs
are the keypoints) and every pruned width is a multiple of ``round_to`` (SIMD-friendly kernels).

Each step searches the pruning ratio that reaches the MACs target by bisection on copies of the
model: Torch-Pruning's ratio counts channels, not MACs, and the relation depends on the layer.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

IMPORTANCES = ("bn-scale", "magnitude", "random")
SCOPES = ("uniform", "global")

# finetune(model, epochs, regularizer or None, tag) -> metrics dict. ``regularizer(model)`` is called
# after backward and before the optimiser step.
FinetuneFn = Callable[[Any, int, Callable[[Any], None] | None, str], dict[str, Any]]


@dataclass
class PruneConfig:
    """Options of ``gaitpose prune``."""

    target_macs: float = 0.5  # fraction of the original MACs to keep
    importance: str = "bn-scale"  # bn-scale | magnitude | random
    sparsity_epochs: int | None = None  # None: 10 for bn-scale, 0 for the baselines
    reg: float = 1e-4  # L1 coefficient on BN scales during the sparsity phase
    steps: int = 4
    finetune_epochs: int = 5  # after each pruning step
    final_epochs: int = 20  # longer plain fine-tune after the last step, where most accuracy is lost
    round_to: int = 8
    max_layer_ratio: float = 0.75  # at most this fraction of a layer's channels removed per step
    # "uniform": every layer loses the same fraction of its channels, the importance picks which ones;
    # "global": one ranking across layers (network slimming as published). On the student, global
    # ranking reached half the MACs by cutting the stride-2 stem and the decoder's laterals to 8-16
    # channels (they hold most MACs and had the smallest BN scales) and lost 19 PCK points on test.
    scope: str = "uniform"
    # Module-name prefixes whose output channels are never pruned (besides the head), e.g. the
    # stride-2 stem and the decoder, which hold few channels but most of the MACs at high resolution.
    protect: tuple[str, ...] = ()
    # Pruning from scratch (Wang et al. 2020): after the structure is found, also re-initialise it
    # and train it for this many epochs at the full learning rate (distilled like every fine-tune);
    # the better of the two on the validation split is kept. 0 = off.
    scratch_epochs: int = 0
    seed: int = 0
    # Every fine-tune (sparsity phase included) also distils from the original, unpruned model; the
    # loss is (1 - distill_weight) * label MSE + distill_weight * teacher MSE (see train_model).
    distill: bool = True
    distill_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.importance not in IMPORTANCES:
            raise ValueError(f"--importance must be one of {', '.join(IMPORTANCES)}, got {self.importance!r}")
        if not 0.0 < self.target_macs <= 1.0:
            raise ValueError(f"--target-macs must be in (0, 1], got {self.target_macs}")
        if self.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {self.steps}")
        if self.round_to < 1:
            raise ValueError(f"--round-to must be at least 1, got {self.round_to}")
        if self.scratch_epochs < 0:
            raise ValueError(f"--scratch-epochs must be >= 0, got {self.scratch_epochs}")
        if self.scope not in SCOPES:
            raise ValueError(f"--scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"--distill-weight must be in [0, 1], got {self.distill_weight}")

    @property
    def resolved_sparsity_epochs(self) -> int:
        if self.sparsity_epochs is not None:
            return int(self.sparsity_epochs)
        return 10 if self.importance == "bn-scale" else 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sparsity_epochs"] = self.resolved_sparsity_epochs
        return d


def model_cost(model: Any) -> tuple[int, int]:
    """(params, MACs) of a student for one crop of its configured input size."""
    from gaitpose.nn import count_params_macs

    cfg = model.cfg
    return count_params_macs(model, tuple(cfg.input_size), int(cfg.in_channels))


def _example_inputs(model: Any) -> Any:
    import torch

    p = next(model.parameters())
    return torch.zeros(1, int(model.cfg.in_channels), *map(int, model.cfg.input_size), device=p.device)


def make_importance(name: str) -> Any:
    import torch_pruning as tp

    if name == "bn-scale":
        # Raw scales, one global threshold: the original network-slimming criterion.
        return tp.importance.BNScaleImportance(normalizer=None)
    if name == "magnitude":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "random":
        return tp.importance.RandomImportance()
    raise ValueError(f"unknown importance {name!r}; choose from {', '.join(IMPORTANCES)}")


def make_pruner(model: Any, importance: str, *, ratio: float = 0.0, round_to: int = 8, reg: float = 1e-4,
                max_layer_ratio: float = 0.75, scope: str = "uniform", protect: tuple[str, ...] = ()) -> Any:
    """A Torch-Pruning pruner over the student except the heatmap head and ``protect``-ed modules
    (``scope`` and ``protect``: see PruneConfig; a protect entry is a name prefix or a glob)."""
    from fnmatch import fnmatch

    import torch_pruning as tp
    from torch import nn

    ignored = [model.head] + [m for name, m in model.named_modules()
                              if isinstance(m, nn.Conv2d) and any(name.startswith(p) or fnmatch(name, p)
                                                                  for p in protect)]
    kwargs = dict(
        importance=make_importance(importance), pruning_ratio=ratio, global_pruning=scope == "global",
        ignored_layers=ignored, round_to=round_to, max_pruning_ratio=max_layer_ratio,
    )
    if importance == "bn-scale":
        return tp.pruner.BNScalePruner(model, _example_inputs(model), reg=reg, **kwargs)
    return tp.pruner.MagnitudePruner(model, _example_inputs(model), **kwargs)


def bn_regularizer(model: Any, reg: float) -> Callable[[Any], None]:
    """L1 penalty on BN scales (sub-gradient added to ``.grad``), the network-slimming sparsity term."""
    pruner = make_pruner(model, "bn-scale", reg=reg)

    def regularize(m: Any) -> None:
        pruner.regularize(m)

    return regularize


def prune_to_macs(model: Any, importance: str, target_macs: int, *, round_to: int = 8,
                  max_layer_ratio: float = 0.75, seed: int = 0, iters: int = 10,
                  tolerance: float = 0.02, scope: str = "uniform",
                  protect: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """Smallest channel ratio whose pruned copy has MACs <= ``target_macs``; returns (copy, info).

    Bisection over copies keeps the input model intact; the best copy is returned so what was
    measured is exactly what is kept (random importance would not reproduce otherwise). The search
    stops early once a copy lands within ``tolerance`` (relative) below the target.
    """
    import torch

    base_macs = model_cost(model)[1]
    best: tuple[Any, float, int] | None = None
    closest: tuple[Any, float, int] | None = None
    lo, hi = 0.0, 0.95
    for _ in range(iters):
        ratio = 0.5 * (lo + hi)
        torch.manual_seed(seed)
        cand = copy.deepcopy(model)
        pruner = make_pruner(cand, importance, ratio=ratio, round_to=round_to, max_layer_ratio=max_layer_ratio,
                             scope=scope, protect=protect)
        pruner.step()
        del pruner
        macs = model_cost(cand)[1]
        if macs <= target_macs:
            best = (cand, ratio, macs)
            hi = ratio
            if macs >= (1.0 - tolerance) * target_macs:
                break
        else:
            if closest is None or macs < closest[2]:
                closest = (cand, ratio, macs)
            lo = ratio
    chosen = best or closest
    assert chosen is not None
    cand, ratio, macs = chosen
    if best is None:
        log.warning("could not reach %d MACs with %s importance (layer cap %.2f); got %d", target_macs,
                    importance, max_layer_ratio, macs)
    return cand, {"ratio": round(ratio, 4), "macs_before": base_macs, "macs_after": macs,
                  "target_macs": int(target_macs), "reached": best is not None}


def channel_widths(model: Any) -> dict[str, int]:
    """Output channels of every convolution (for reports and the round_to check)."""
    from torch import nn

    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def slim(
    model: Any,
    cfg: PruneConfig,
    finetune: FinetuneFn,
    *,
    sparse_model: Any | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Sparsity phase + iterative prune/fine-tune toward ``cfg.target_macs``; returns (model, history).

    ``sparse_model``: a model that already went through the sparsity phase (sweeps share it).
    The input model is not modified.
    """
    import torch

    torch.manual_seed(cfg.seed)
    model.cpu()
    base_params, base_macs = model_cost(model)
    history: dict[str, Any] = {"config": cfg.to_dict(), "base": {"params": base_params, "macs": base_macs},
                               "steps": []}
    if sparse_model is not None:
        work = copy.deepcopy(sparse_model)
    else:
        work = copy.deepcopy(model)
        if cfg.resolved_sparsity_epochs > 0:
            history["sparsity"] = run_sparsity(work, cfg, finetune)
    for k in range(1, cfg.steps + 1):
        frac = 1.0 - (1.0 - cfg.target_macs) * k / cfg.steps
        work.cpu().eval()
        work, info = prune_to_macs(work, cfg.importance, int(frac * base_macs), round_to=cfg.round_to,
                                   max_layer_ratio=cfg.max_layer_ratio, seed=cfg.seed + k, scope=cfg.scope,
                                   protect=tuple(cfg.protect))
        params, macs = model_cost(work)
        info.update(step=k, params=params, macs_fraction=round(macs / base_macs, 4))
        log.info("prune step %d/%d: MACs %.1fM (%.1f%% of original), params %.0fk", k, cfg.steps, macs / 1e6,
                 100 * macs / base_macs, params / 1e3)
        epochs = cfg.final_epochs if k == cfg.steps and cfg.final_epochs > 0 else cfg.finetune_epochs
        if epochs > 0:
            # Keep the sparsity pressure between steps for bn-scale, so the next step finds small
            # scales again; the last fine-tune is plain.
            reg = bn_regularizer(work, cfg.reg) if cfg.importance == "bn-scale" and k < cfg.steps else None
            info["finetune"] = _clean(finetune(work, epochs, reg, f"prune-step{k}"))
            work.cpu()
        history["steps"].append(info)
    params, macs = model_cost(work)
    history["final"] = {"params": params, "macs": macs, "macs_fraction": round(macs / base_macs, 4),
                        "params_fraction": round(params / base_params, 4), "widths": channel_widths(work)}
    work.eval()
    return work, history


def run_sparsity(model: Any, cfg: PruneConfig, finetune: FinetuneFn) -> dict[str, Any]:
    """Train in place with the BN-scale L1 penalty; returns the fine-tune metrics and scale statistics."""
    import torch

    epochs = cfg.resolved_sparsity_epochs
    log.info("sparsity phase: %d epoch(s), L1 %.1e on BN scales", epochs, cfg.reg)
    out = _clean(finetune(model, epochs, bn_regularizer(model, cfg.reg), "sparsity"))
    model.cpu()
    scales = torch.cat([m.weight.detach().abs().flatten() for m in model.modules()
                        if isinstance(m, torch.nn.BatchNorm2d)])
    out["bn_scale_quantiles"] = {f"q{int(q * 100)}": round(float(torch.quantile(scales, q)), 5)
                                 for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
    return out


def _clean(metrics: Any) -> dict[str, Any]:
    """JSON-safe scalars of a training result."""
    if not isinstance(metrics, dict):
        return {}
    from gaitpose.jsonutil import to_jsonable

    plain = to_jsonable(metrics)  # 0-d tensors and numpy scalars become numbers, NaN None
    return {k: v for k, v in plain.items() if isinstance(v, bool | int | float | str) or v is None}
