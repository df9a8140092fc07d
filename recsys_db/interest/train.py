"""Training of the interest encoder on every position of every sequence.

Sequences are cut into windows of `max_len` inputs (each event is a target exactly once) and
batched; at every position the model predicts the next item and the next category (one loss:
item CE + category_weight * category CE). Catalogs up to `full_softmax_max_items` use a full
softmax; larger ones a sampled softmax (shared negatives drawn from unigram^0.75, log-Q
corrected, accidental hits masked; the same for categories beyond
`full_softmax_max_categories`). AdamW with weight decay, dropout, early stopping on the sum
of next-item and next-category validation NDCG@10 (full ranking), fixed seed, and a
checkpoint after every epoch so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recsys_db.interest.encoder import InterestModel, ModelShape
from recsys_db.interest.features import Steps, Vocab, log_steps
from recsys_db.interest.states import encode_histories
from recsys_db.sequences import EventLog

LOGIT_BUDGET = 1 << 25  # floats of logits per chunk of the full softmax (128 MB)


@dataclass
class TrainConfig:
    encoder: str = "lstm"
    dim: int = 64
    epochs: int = 30
    batch_size: int = 256  # windows per batch
    max_len: int = 50
    lr: float = 5e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    category_weight: float = 1.0
    full_softmax_max_items: int = 20_000
    full_softmax_max_categories: int = 1_000
    negatives: int = 512
    patience: int = 4
    seed: int = 0
    threads: int | None = None


@dataclass
class Validation:
    """Histories (as steps, CSR offsets) and the model index of each next item."""

    steps: Steps
    offsets: np.ndarray
    target_item: np.ndarray
    target_category: np.ndarray


@dataclass
class TrainResult:
    model: InterestModel
    items: Vocab
    categories: Vocab
    config: TrainConfig
    epochs_run: int
    best_epoch: int
    best_metric: float
    history: list[dict[str, float]] = field(default_factory=list)
    events_per_s: float = 0.0
    resumed_from: int | None = None


EpochCallback = Callable[[dict[str, float]], None]
BatchCallback = Callable[[int, int, float], None]


def build_vocabs(log: EventLog) -> tuple[Vocab, Vocab]:
    categories = np.unique(log.category)
    return Vocab(np.unique(log.item)), Vocab(categories[categories > 0])


def windows(offsets: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, number of inputs) of every training window; inputs predict the next event."""
    starts, ends = offsets[:-1], offsets[1:]
    n_inputs = ends - starts - 1
    count = np.where(n_inputs > 0, -(-n_inputs // max_len), 0)
    user = np.repeat(np.arange(len(starts)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    w_start = starts[user] + k * max_len
    w_len = np.minimum(max_len, n_inputs[user] - k * max_len)
    return w_start.astype(np.int64), w_len.astype(np.int64)


def fingerprint(config: TrainConfig, log: EventLog) -> str:
    data = f"{len(log)}:{int(log.event_id.sum())}:{int(log.ts.sum())}"
    text = json.dumps(asdict(config), sort_keys=True) + data
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def train(log: EventLog, config: TrainConfig, valid: Validation | None = None, *,
          items: Vocab | None = None, categories: Vocab | None = None,
          checkpoint_dir: Path | None = None, on_epoch: EpochCallback | None = None,
          on_batch: BatchCallback | None = None, stop_after_epochs: int | None = None
          ) -> TrainResult:
    """Train on `log`; early-stop on `valid` when given (else keep the last epoch)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if items is None or categories is None:
        items, categories = build_vocabs(log)
    steps = log_steps(log, items, categories)
    shape = ModelShape(len(items), len(categories), config.dim, config.encoder, config.dropout,
                       config.max_len)
    model = InterestModel(shape)
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr,
                              weight_decay=config.weight_decay, fused=True)
    w_start, w_len = windows(log.offsets, config.max_len)
    if len(w_start) == 0:
        raise ValueError("no user has two or more events: nothing to learn from")
    item_softmax = _Softmax(steps.item, len(items), config.full_softmax_max_items,
                            config.negatives, rng)
    category_softmax = _Softmax(steps.category, len(categories),
                                config.full_softmax_max_categories, config.negatives, rng)

    state = _State(history=[], best_metric=-1.0, best_epoch=0, bad_epochs=0, epoch=0,
                   best_weights=None)
    ckpt = checkpoint_dir / f"interest-{fingerprint(config, log)}.pt" if checkpoint_dir else None
    resumed_from = None
    if ckpt is not None and ckpt.exists():
        resumed_from = _load_checkpoint(ckpt, model, optim, state, rng)
        item_softmax.rng = category_softmax.rng = rng

    n_events = int(w_len.sum())
    started = time.perf_counter()
    trained_epochs = 0
    while state.epoch < config.epochs and state.bad_epochs < config.patience:
        if stop_after_epochs is not None and trained_epochs >= stop_after_epochs:
            break
        t0 = time.perf_counter()
        loss = _train_epoch(model, optim, steps, w_start, w_len, config,
                            (item_softmax, category_softmax), rng, on_batch)
        trained_epochs += 1
        state.epoch += 1
        record = {"epoch": state.epoch, "loss": loss, "seconds": time.perf_counter() - t0}
        if valid is not None:
            record.update(validate(model, valid))
            # Both heads count: on sparse catalogs the next-item NDCG can stay near 0 for
            # epochs while the category head is still improving.
            metric = record["valid_ndcg10"] + record["valid_ndcg10_category"]
            record["valid_score"] = metric
        else:
            metric = -loss
        if metric > state.best_metric:
            state.best_metric, state.best_epoch, state.bad_epochs = metric, state.epoch, 0
            state.best_weights = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        state.history.append(record)
        if on_epoch:
            on_epoch(record)
        if ckpt is not None:
            _save_checkpoint(ckpt, model, optim, state, rng)
    elapsed = time.perf_counter() - started
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    model.eval()
    return TrainResult(model, items, categories, config, state.epoch, state.best_epoch,
                       state.best_metric, state.history,
                       n_events * trained_epochs / elapsed if trained_epochs else 0.0,
                       resumed_from)


@dataclass
class _State:
    history: list[dict[str, float]]
    best_metric: float
    best_epoch: int
    bad_epochs: int
    epoch: int
    best_weights: dict[str, torch.Tensor] | None


class _Softmax:
    """Cross-entropy over a vocabulary (index 0 = padding, never a class): full softmax up to
    `full_max` classes, else sampled softmax with `negatives` shared negatives drawn from
    unigram^0.75 per batch, log-Q corrected, accidental hits masked."""

    def __init__(self, ids: np.ndarray, n: int, full_max: int, negatives: int,
                 rng: np.random.Generator) -> None:
        self.full = n <= full_max
        counts = np.bincount(ids, minlength=n + 1).astype(np.float64)
        counts[0] = 0
        q = counts ** 0.75
        self.q = q / q.sum()
        self.log_q = torch.from_numpy(np.log(np.maximum(self.q, 1e-12))).float()
        self.k = min(negatives, n)
        self.rng = rng

    def loss(self, u: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
             target: torch.Tensor) -> torch.Tensor:
        keep = target > 0
        u, target = u[keep], target[keep]
        if len(target) == 0:
            return u.sum() * 0.0
        if self.full:
            chunk = max(1, LOGIT_BUDGET // weight.shape[0])
            total = u.new_zeros(())
            for lo in range(0, len(u), chunk):
                logits = u[lo:lo + chunk] @ weight.T + bias
                logits[:, 0] = float("-inf")
                total = total + F.cross_entropy(logits, target[lo:lo + chunk], reduction="sum")
            return total / len(u)
        neg = torch.from_numpy(self.rng.choice(len(self.q), self.k, p=self.q))
        pos_logit = (u * weight[target]).sum(-1) + bias[target] - self.log_q[target]
        neg_logit = u @ weight[neg].T + bias[neg] - self.log_q[neg]
        neg_logit = neg_logit.masked_fill(neg[None, :] == target[:, None], float("-inf"))
        logits = torch.cat([pos_logit[:, None], neg_logit], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(u), dtype=torch.long))


def _train_epoch(model: InterestModel, optim: torch.optim.Optimizer, steps: Steps,
                 w_start: np.ndarray, w_len: np.ndarray, config: TrainConfig,
                 softmaxes: tuple[_Softmax, _Softmax], rng: np.random.Generator,
                 on_batch: BatchCallback | None) -> float:
    model.train()
    order = rng.permutation(len(w_start))
    total, count = 0.0, 0
    n_batches = math.ceil(len(order) / config.batch_size)
    pos = np.arange(config.max_len + 1)
    for b in range(n_batches):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        starts, lens = w_start[idx], w_len[idx]
        valid = pos[None, :] < (lens + 1)[:, None]
        gather = np.where(valid, starts[:, None] + pos[None, :], 0)
        cols = []
        for name in ("item", "category", "behavior", "gap"):
            values = getattr(steps, name)[gather]
            values[~valid] = 0
            cols.append(torch.from_numpy(values))
        item, category, behavior, gap = cols
        inputs = [c[:, :-1] for c in cols]
        pad = torch.from_numpy(~valid[:, :-1])
        target_mask = torch.from_numpy(valid[:, 1:])
        out, _ = model.encode(model.embed(*inputs), pad)
        h = out[target_mask]
        target_item = item[:, 1:][target_mask]
        target_cat = category[:, 1:][target_mask]
        items_sm, categories_sm = softmaxes
        loss = items_sm.loss(model.user_vector(h), model.item_in.weight,
                             model.item_bias.weight[:, 0], target_item)
        if config.category_weight > 0:
            loss = loss + config.category_weight * categories_sm.loss(
                model.category_query(h), model.category_in.weight, model.category_bias,
                target_cat)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        n = int(target_mask.sum())
        total += loss.item() * n
        count += n
        if on_batch:
            on_batch(b + 1, n_batches, loss.item())
    return total / max(count, 1)


@torch.no_grad()
def validate(model: InterestModel, valid: Validation, k: int = 10) -> dict[str, float]:
    """Full-ranking next-item NDCG@k / HR@k and next-category NDCG@k on validation targets."""
    enc = encode_histories(model, valid.steps, valid.offsets)
    u = model.user_vector(enc.h)
    out: dict[str, float] = {}
    for name, scores, target in (
        ("", model.item_scores(u), valid.target_item),
        ("_category", model.category_logits(enc.h), valid.target_category),
    ):
        scores[:, 0] = float("-inf")
        t = torch.from_numpy(target)
        known = t > 0
        target_score = scores.gather(1, t.clamp(min=0)[:, None])
        rank = (scores > target_score).sum(1) + 1
        hit = known & (rank <= k)
        ndcg = torch.where(hit, 1.0 / torch.log2(rank.float() + 1), torch.zeros(()))
        out[f"valid_ndcg{k}{name}"] = float(ndcg.mean()) if len(t) else 0.0
        out[f"valid_hr{k}{name}"] = float(hit.float().mean()) if len(t) else 0.0
    return out


def _save_checkpoint(path: Path, model: InterestModel, optim: torch.optim.Optimizer,
                     state: _State, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optim": optim.state_dict(),
                "epoch": state.epoch, "best_metric": state.best_metric,
                "best_epoch": state.best_epoch, "bad_epochs": state.bad_epochs,
                "best_weights": state.best_weights, "history": json.dumps(state.history),
                "torch_rng": torch.get_rng_state(),
                "np_rng": json.dumps(rng.bit_generator.state)}, tmp)
    tmp.replace(path)  # atomic: a crash mid-write leaves the previous checkpoint


def _load_checkpoint(path: Path, model: InterestModel, optim: torch.optim.Optimizer,
                     state: _State, rng: np.random.Generator) -> int:
    data: dict[str, Any] = torch.load(path, weights_only=True)
    model.load_state_dict(data["model"])
    optim.load_state_dict(data["optim"])
    state.epoch, state.best_metric = int(data["epoch"]), float(data["best_metric"])
    state.best_epoch, state.bad_epochs = int(data["best_epoch"]), int(data["bad_epochs"])
    state.best_weights = data["best_weights"]
    state.history = json.loads(data["history"])
    torch.set_rng_state(data["torch_rng"])
    rng.bit_generator.state = json.loads(data["np_rng"])
    return state.epoch
