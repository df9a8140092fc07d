"""Hyperparameter search for the interest model, on validation targets only (Optuna).

Every trial trains on the log without each user's last event and is scored on those held-out
last events (next-item NDCG@10, full ranking): the validation that training early-stops on
(`job.validation_split`); nothing else is read. Optuna's TPE sampler, seeded with the config's
seed, proposes the settings in `default_space`; the first trial is the given config itself, so
the search never ends below it on validation. Once two trials have finished, a median
pruner stops a trial after an epoch (from the second on) whose best NDCG so far is below the
median of the finished trials at that epoch.

Time budget: no trial starts after `minutes`, and a trial still running then stops after its
current epoch and keeps its best epoch (`train` re-reads `config.epochs` after each epoch, and
the trial lowers it on its own copy). The result is the best trial's model, its config the
chosen settings. Trials keep no checkpoints: an interrupted search starts again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from recsys_db.interest.train import (
    BatchCallback,
    EpochCallback,
    TrainConfig,
    TrainResult,
    Validation,
    train,
)
from recsys_db.interest.validation import validation_split
from recsys_db.sequences import EventLog

log = logging.getLogger(__name__)
TrialCallback = Callable[[dict[str, Any]], None]
WARMUP_EPOCHS = 2  # no pruning before the second epoch: the first is too noisy to judge


def default_space(encoder: str) -> dict[str, BaseDistribution]:
    """The TrainConfig fields searched and their ranges."""
    return {
        "dim": CategoricalDistribution((32, 64, 128)),
        "layers": CategoricalDistribution((1, 2, 3) if encoder == "attention" else (1, 2)),
        "lr": FloatDistribution(5e-4, 1e-2, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "batch_size": CategoricalDistribution((32, 64, 128, 256)),
        "weight_decay": FloatDistribution(1e-6, 1e-3, log=True),
        "window": IntDistribution(20, 200, step=10),  # the default, 100, mid-range
    }


def check_minutes(value: Any) -> float:
    """The budget in minutes as a float; ValueError unless a finite number > 0."""
    try:
        if isinstance(value, bool):
            raise TypeError
        minutes = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"tune minutes must be a number of minutes > 0, got {value!r}"
                         ) from None
    if not math.isfinite(minutes) or minutes <= 0:
        raise ValueError(f"tune minutes must be a number of minutes > 0, got {value!r}")
    return minutes


@dataclass
class Search:
    result: TrainResult  # the best trial's model (its best epoch)
    valid: Validation
    config: TrainConfig  # the chosen settings
    summary: dict[str, Any]  # budget, trials, best trial: stored in the run's metrics


def tune_on_log(log_: EventLog, base: TrainConfig, minutes: float, *,
                space: dict[str, BaseDistribution] | None = None,
                on_epoch: EpochCallback | None = None, on_batch: BatchCallback | None = None,
                on_trial: TrialCallback | None = None) -> Search:
    """Search the settings of `base` in `space` for `minutes` on `log_`'s validation targets."""
    minutes = check_minutes(minutes)
    train_log, items, categories, valid = validation_split(log_, None, base.max_valid_users,
                                                           base.seed)
    if valid is None:
        raise ValueError("tuning needs validation targets: no user has 3 or more events")
    space = default_space(base.encoder) if space is None else space
    unknown = set(space) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"search space names unknown settings {sorted(unknown)}")
    started = time.monotonic()
    deadline = started + minutes * 60
    best: dict[str, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, dist) for name, dist in space.items()}
        config = dataclasses.replace(base, **params)
        running = dataclasses.replace(config)  # the copy a deadline may shorten

        def epoch_done(record: dict[str, float]) -> None:
            if on_epoch:
                on_epoch(record)
            epoch = int(record["epoch"])
            trial.report(record["valid_ndcg10"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"below the median at epoch {epoch}")
            if time.monotonic() >= deadline and epoch < running.epochs:
                running.epochs = epoch
                trial.set_user_attr("stopped_at_deadline", True)

        result = train(train_log, running, valid, items=items, categories=categories,
                       on_epoch=epoch_done, on_batch=on_batch)
        trial.set_user_attr("best_epoch", result.best_epoch)
        value = result.history[result.best_epoch - 1]["valid_ndcg10"]  # of the epoch kept
        if not best or value > best["value"]:
            best.update(result=result, config=config, number=trial.number, value=value)
        return value

    def trial_done(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        record = _trial_record(trial)
        log.info("trial %d %s: valid NDCG@10 %s after %d epoch(s) in %.1f s; %s",
                 record["number"], record["state"], _fmt(record["value"]), record["epochs"],
                 record["seconds"], record["params"])
        if on_trial:
            on_trial(record)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=WARMUP_EPOCHS))
    study.enqueue_trial(_start_params(base, space))
    study.optimize(objective, timeout=minutes * 60, callbacks=[trial_done])
    if not best:
        raise RuntimeError("no trial finished")  # unreachable: the first one always does
    trials = [_trial_record(t) for t in study.trials]
    summary = {
        "minutes": minutes, "seconds": round(time.monotonic() - started, 1),
        "objective": "valid_ndcg10 (next item, each user's held-out last event)",
        "sampler": f"TPE(seed={base.seed})",
        "pruner": f"median(n_startup_trials=2, n_warmup_steps={WARMUP_EPOCHS})",
        "space": {name: repr(dist) for name, dist in space.items()},
        "trials": trials,
        "complete": sum(t["state"] == "COMPLETE" for t in trials),
        "pruned": sum(t["state"] == "PRUNED" for t in trials),
        "best_trial": best["number"], "best_value": best["value"],
        "best_params": {name: getattr(best["config"], name) for name in space},
    }
    return Search(best["result"], valid, best["config"], summary)


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    raise TypeError(f"{name}: unsupported distribution {dist!r}")


def _start_params(config: TrainConfig, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    """The config's own values of the searched settings (resolved where 0 means "the
    encoder's default", e.g. `resolved_layers()`), where the space contains them."""
    values = {}
    for name in space:
        resolve = getattr(config, f"resolved_{name}", None)
        values[name] = resolve() if resolve else getattr(config, name)
    return {name: v for name, v in values.items() if _contains(space[name], v)}


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(dist, FloatDistribution | IntDistribution):
        return dist.low <= value <= dist.high
    return False


def _trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    steps = sorted(trial.intermediate_values)
    seconds = trial.duration.total_seconds() if trial.duration else None
    return {"number": trial.number, "state": trial.state.name, "params": trial.params,
            "value": trial.value, "epochs": len(steps),
            "epoch_ndcg10": [round(trial.intermediate_values[s], 5) for s in steps],
            "seconds": round(seconds, 2) if seconds is not None else None,
            **trial.user_attrs}


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
