"""Training of the interest encoder on every position of every sequence.

Sequences are cut into windows of `max_len` inputs (each event is a target exactly once) and
batched; at every position the model predicts the next item and the next category with its
stay-or-migrate heads (see `encoder.py`), and the loss is the negative log-likelihood of the
mixture: -log(p_stay * P_stay(target)) when the target is among the user's last `window` events
(the stay part reads them across window boundaries), else -log((1 - p_stay) * P_migrate(target)).
Item loss + category_weight * category loss. The migrate softmax is a full cross-entropy over
the catalog (recent items masked) up to `full_softmax_max_items` items - full CE is what makes
SASRec strong (Klenitskiy & Vasilev, RecSys 2023) - and a sampled softmax beyond (`negatives`
shared negatives drawn from unigram^0.75 per batch, log-Q corrected, accidental hits masked;
recent items are not masked among sampled negatives). Adam(W), dropout, early stopping on
next-item validation NDCG@10 (full ranking), fixed seed, and a checkpoint after every epoch so
an interrupted run resumes where it stopped. The loss pieces (class vectors, softmaxes, one
head's mixture NLL) are in `loss.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from recsys_db.interest.encoder import (
    InterestModel,
    ModelShape,
    rows_per_block,
)
from recsys_db.interest.features import Steps, Vocab, log_steps
from recsys_db.interest.loss import Classes, Softmax, SparseTableGrads, head_nll, take
from recsys_db.interest.states import Encoded, encode_histories
from recsys_db.interest.train_config import TrainConfig
from recsys_db.sequences import EventLog


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


class RankHooks(Protocol):
    """What `train` asks of one rank of a multi-process run (distributed.Worker)."""

    def join(self, model: InterestModel, optim: torch.optim.Optimizer, state: _State,
             rng: np.random.Generator, offsets: np.ndarray,
             win: tuple[np.ndarray, np.ndarray, np.ndarray], config: TrainConfig
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def order(self, order: np.ndarray) -> np.ndarray: ...
    def loss(self, model: InterestModel, batch: _Batch, config: TrainConfig,
             softmaxes: tuple[Softmax, Softmax]) -> tuple[torch.Tensor, int]: ...
    def mean_loss(self, total: float, count: int) -> float: ...
    def validate(self, model: InterestModel, valid: Validation) -> dict[str, float]: ...


def build_vocabs(log: EventLog) -> tuple[Vocab, Vocab]:
    categories = np.unique(log.category)
    return Vocab(np.unique(log.item)), Vocab(categories[categories > 0])


def item_categories(log: EventLog, items: Vocab, categories: Vocab) -> np.ndarray:
    """(len(items) + 1,) model category index of each model item (its latest category)."""
    out = np.zeros(len(items) + 1, dtype=np.int64)
    order = np.argsort(log.ts, kind="stable")  # later events overwrite earlier ones
    out[items.index(log.item[order])] = categories.index(log.category[order])
    out[0] = 0
    return out


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


CHECKPOINT_FORMAT = 4  # 2: the stay heads' latest_bias; 3: the item stay head without its
# content term; 4: the behavior biases' starting prior; a checkpoint of another format is not
# resumed (its name differs), the run starts over


def fingerprint(config: TrainConfig, log: EventLog) -> str:
    data = f"{len(log)}:{int(log.event_id.sum())}:{int(log.ts.sum())}:{CHECKPOINT_FORMAT}"
    text = json.dumps(asdict(config), sort_keys=True) + data
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def train(log: EventLog, config: TrainConfig, valid: Validation | None = None, *,
          items: Vocab | None = None, categories: Vocab | None = None,
          checkpoint_dir: Path | None = None, on_epoch: EpochCallback | None = None,
          on_batch: BatchCallback | None = None, stop_after_epochs: int | None = None,
          worker: RankHooks | None = None, item_category: np.ndarray | None = None
          ) -> TrainResult:
    """Train on `log`; early-stop on `valid` when given (else keep the last epoch). With a
    `worker`, this is one rank of a DDP run (see distributed.py). `item_category`: each model
    item's category index (default: from `log`; given when `log` is a sample of users and the
    vocabularies are the whole catalog's)."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if items is None or categories is None:
        items, categories = build_vocabs(log)
    steps = log_steps(log, items, categories)
    shape = ModelShape(len(items), len(categories), config.dim, config.encoder, config.dropout,
                       config.max_len, layers=config.resolved_layers(), window=config.window,
                       item_stay_content=config.item_stay_content)
    model = InterestModel(shape)
    if item_category is None:
        item_category = item_categories(log, items, categories)
    model.set_item_categories(torch.from_numpy(item_category))
    optim = torch.optim.AdamW(model.parameters(), lr=config.resolved_lr(),
                              weight_decay=config.weight_decay, fused=True)
    w_start, w_len = windows(log.offsets, config.max_len)
    w_first = log.offsets[np.searchsorted(log.offsets, w_start, side="right") - 1]
    if len(w_start) == 0:
        raise ValueError("no user has two or more events: nothing to learn from")
    item_softmax = Softmax(steps.item, len(items), config.full_softmax_max_items,
                            config.negatives, rng)
    category_softmax = Softmax(steps.category, len(categories),
                                config.full_softmax_max_categories, config.negatives, rng)

    state = _State(history=[], best_metric=-1.0, best_epoch=0, bad_epochs=0, epoch=0,
                   best_weights=None)
    ckpt = checkpoint_dir / f"interest-{fingerprint(config, log)}.pt" if checkpoint_dir else None
    resumed_from = None
    if ckpt is not None and ckpt.exists():
        resumed_from = _load_checkpoint(ckpt, model, optim, state, rng)
        item_softmax.rng = category_softmax.rng = rng

    n_events = int(w_len.sum())
    if worker is not None:  # rank 0's start state; this rank's users' windows
        w_first, w_start, w_len = worker.join(model, optim, state, rng, log.offsets,
                                              (w_first, w_start, w_len), config)
    started = time.perf_counter()
    trained_epochs = 0
    while state.epoch < config.epochs and state.bad_epochs < config.patience:
        if stop_after_epochs is not None and trained_epochs >= stop_after_epochs:
            break
        t0 = time.perf_counter()
        loss = _train_epoch(model, optim, steps, (w_first, w_start, w_len), config,
                            (item_softmax, category_softmax), rng, on_batch, worker)
        trained_epochs += 1
        state.epoch += 1
        record = {"epoch": state.epoch, "loss": loss, "seconds": time.perf_counter() - t0}
        if valid is not None:
            record.update(validate(model, valid) if worker is None
                          else worker.validate(model, valid))
            # Next-item NDCG alone: a sum lets the easy category head decide.
            metric = record["valid_ndcg10"]
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


def _band(values: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """(B, window - 1 + T) -> (B, T, window): the window ending at each of the T positions."""
    return values.unfold(1, window, 1)[:, :length]


def band_latest(ids: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """(B, window - 1 + T) ids -> (B, T, window): 1.0 where slot j of position t holds the
    latest occurrence of its id in that position's window (encoder.latest_occurrence, for
    every position at once): the id's next occurrence in the row comes after step t."""
    b, e = ids.shape
    flat = (ids + torch.arange(b)[:, None] * (int(ids.max()) + 1)).flatten()
    order = torch.argsort(flat, stable=True)  # by row and id, positions ascending
    same = flat[order[1:]] == flat[order[:-1]]
    nxt = torch.full((b * e,), e + window, dtype=torch.long)
    nxt[order[:-1][same]] = order[1:][same] % e
    last = torch.arange(length)[None, :, None] + window - 1
    return (_band(nxt.view(b, e), length, window) > last).float()


@dataclass
class _Batch:
    """One batch of training windows: step columns (B, T + 1) - inputs are [:, :-1], targets
    [:, 1:] - and the stay part's slots (B, window - 1 + T): each input position's last
    `window` events, across the window's start (within the user's own sequence)."""

    item: torch.Tensor
    category: torch.Tensor
    behavior: torch.Tensor
    gap: torch.Tensor
    pad: torch.Tensor  # (B, T) input is padding
    target_mask: torch.Tensor  # (B, T) position has a next event
    slot_item: torch.Tensor
    slot_category: torch.Tensor
    slot_behavior: torch.Tensor


def _make_batch(steps: Steps, first: np.ndarray, starts: np.ndarray, lens: np.ndarray,
                t_max: int, back: int) -> _Batch:
    pos = np.arange(t_max + 1)
    valid = pos[None, :] < (lens + 1)[:, None]
    gather = np.where(valid, starts[:, None] + pos[None, :], 0)
    ext_pos = np.arange(-back, t_max)
    ext = starts[:, None] + ext_pos[None, :]
    ext_ok = (ext >= first[:, None]) & (ext_pos[None, :] < lens[:, None])
    ext = np.where(ext_ok, ext, 0)

    def take(name: str, at: np.ndarray, ok: np.ndarray) -> torch.Tensor:
        values = getattr(steps, name)[at]
        values[~ok] = 0
        return torch.from_numpy(values)

    return _Batch(*(take(name, gather, valid) for name in ("item", "category", "behavior",
                                                            "gap")),
                  torch.from_numpy(~valid[:, :-1]), torch.from_numpy(valid[:, 1:]),
                  *(take(name, ext, ext_ok) for name in ("item", "category", "behavior")))


def _batch_loss(model: InterestModel, batch: _Batch, config: TrainConfig,
                softmaxes: tuple[Softmax, Softmax], sparse: SparseTableGrads | None = None
                ) -> tuple[torch.Tensor, int]:
    """Mean negative log-likelihood of the batch's next events, and how many there are.
    With `sparse`, the item tables' gradients come as sparse rows into its buffers."""
    items_sm, categories_sm = softmaxes
    t_max, window = batch.pad.shape[1], model.shape.window
    mask = batch.target_mask
    neg = items_sm.draw()
    content = model.shape.item_stay_content  # only then the stay slots need item vectors
    used = None if neg is None else torch.cat(
        [batch.item.flatten(), *([batch.slot_item.flatten()] if content else []), neg])
    items = Classes.items(model, used, sparse)
    x = model.embed(batch.item[:, :-1], batch.category[:, :-1], batch.behavior[:, :-1],
                    batch.gap[:, :-1], item_x=items.id_rows(batch.item[:, :-1]))
    out, _ = model.encode(x, batch.pad)
    rows = mask.flatten().nonzero()[:, 0]  # the positions that have a next event

    def at(x: torch.Tensor) -> torch.Tensor:  # (B, T, ...) -> (rows, ...)
        return take(x.flatten(0, 1), rows)

    h = at(out)
    item_ids = at(_band(batch.slot_item, t_max, window))
    item_keys = items.rows(batch.slot_item) if content else None
    item_slots = at(model.item_stay.band_logits(out, item_keys,
                                                batch.slot_behavior,
                                                band_latest(batch.slot_item, t_max, window)))
    item_slots = item_slots.masked_fill(item_ids == 0, float("-inf"))
    loss = head_nll(model.item_stay, h, item_slots, item_ids,
                     at(batch.item[:, 1:]), items_sm, model.user_vector(h), items, neg)
    if config.category_weight > 0:
        cat_ids = at(_band(batch.slot_category, t_max, window))
        cat_keys = model.category_in(batch.slot_category)
        cat_slots = at(model.category_stay.band_logits(
            out, cat_keys, batch.slot_behavior, band_latest(batch.slot_category, t_max, window)))
        cat_slots = cat_slots.masked_fill(cat_ids == 0, float("-inf"))
        loss = loss + config.category_weight * head_nll(
            model.category_stay, h, cat_slots, cat_ids, at(batch.category[:, 1:]),
            categories_sm, model.category_query(h), Classes.categories(model),
            categories_sm.draw())
    n_rows = len(h)
    return loss / max(n_rows, 1), n_rows


def _train_epoch(model: InterestModel, optim: torch.optim.Optimizer, steps: Steps,
                 win: tuple[np.ndarray, np.ndarray, np.ndarray], config: TrainConfig,
                 softmaxes: tuple[Softmax, Softmax], rng: np.random.Generator,
                 on_batch: BatchCallback | None, worker: RankHooks | None = None) -> float:
    model.train()
    w_first, w_start, w_len = win
    order = rng.permutation(len(w_start))
    tables = None
    loss_of: Callable[..., tuple[torch.Tensor, int]]
    if worker is not None:  # as many steps as every rank; gradients all-reduced
        order, loss_of = worker.order(order), worker.loss
    else:
        tables = SparseTableGrads(model)
        loss_of = partial(_batch_loss, sparse=tables)
    total, count = 0.0, 0
    n_batches = math.ceil(len(order) / config.batch_size)
    for b in range(n_batches):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        batch = _make_batch(steps, w_first[idx], w_start[idx], w_len[idx], config.max_len,
                            model.shape.window - 1)
        optim.zero_grad(set_to_none=True)
        if tables is not None:
            tables.attach()
        loss, n_rows = loss_of(model, batch, config, softmaxes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optim.step()
        total += loss.item() * n_rows
        count += n_rows
        if on_batch:
            on_batch(b + 1, n_batches, loss.item())
    return total / max(count, 1) if worker is None else worker.mean_loss(total, count)


@torch.no_grad()
def validate(model: InterestModel, valid: Validation, k: int = 10) -> dict[str, float]:
    """Full-ranking next-item NDCG@k / HR@k and next-category NDCG@k on validation targets,
    scored by the whole model (stay and migrate parts)."""
    enc = encode_histories(model, valid.steps, valid.offsets)
    matrix = model.item_matrix()
    out: dict[str, float] = {}
    for name, score, target, n in (
        ("", lambda lo, hi: model.item_log_probs(enc.h[lo:hi], *_recent(enc, lo, hi, 0),
                                                 matrix),
         valid.target_item, model.shape.n_items + 1),
        ("_category",
         lambda lo, hi: model.category_log_probs(enc.h[lo:hi], *_recent(enc, lo, hi, 1)),
         valid.target_category, model.shape.n_categories + 1),
    ):
        t = torch.from_numpy(target)
        rank = torch.empty(len(t), dtype=torch.long)  # filled in place: see store.state_rows
        rows = rows_per_block(n)
        for lo in range(0, len(t), rows):
            scores = score(lo, min(lo + rows, len(t)))
            target_score = scores.gather(1, t[lo:lo + rows].clamp(min=0)[:, None])
            torch.sum(scores > target_score, 1, out=rank[lo:lo + rows])
        rank += 1
        hit = (t > 0) & (rank <= k)
        ndcg = torch.where(hit, 1.0 / torch.log2(rank.float() + 1), torch.zeros(()))
        out[f"valid_ndcg{k}{name}"] = float(ndcg.mean()) if len(t) else 0.0
        out[f"valid_hr{k}{name}"] = float(hit.float().mean()) if len(t) else 0.0
    return out


def _recent(enc: Encoded, lo: int, hi: int, field: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, behaviors) of the recent windows of rows lo:hi; field 0 items, 1 categories."""
    return (torch.from_numpy(enc.recent[lo:hi, field]), torch.from_numpy(enc.recent[lo:hi, 2]))


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
