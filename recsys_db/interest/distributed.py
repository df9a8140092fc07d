"""Training the interest encoder on several processes: torch.distributed DistributedDataParallel.

Two ways to start the processes, one training loop (`train.train` with a `Worker`):

- on one host, `train-interest` with `workers = N` runs rank 0 in its own process and spawns
  ranks 1..N-1 (start method spawn), meeting on a TCPStore at 127.0.0.1 on a free port;
- across hosts, `torchrun` starts every rank (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in
  the environment) with the same `recsys-db jobs run train-interest` command: rank 0 runs the
  job, every other rank only trains (`follow_torchrun`) and needs no database.

Rank 0 reads the events and broadcasts the training data (log, vocabularies, validation
targets, config), so every rank sees the same vocabularies even while events arrive. Windows are
sharded by user, balanced by window count; every rank runs the same number of steps per epoch
(the shorter shards wrap around) so the collectives never wait on a rank that has finished.
`batch_size` is per worker: the global batch is workers x batch_size. Rank 0 validates and
broadcasts the record, so every rank takes the same early-stopping decision; only rank 0 reads
and writes checkpoints (its resumed state is broadcast) and returns the model; the job writes the
version from rank 0 only. Each worker gets cores / N threads. Backend gloo: the training loop
runs on the CPU (NCCL needs CUDA tensors, which the loop does not make).

The item tables' gradients are dense tensors (items x dim per step, see loss.Classes), but with
the sampled softmax (more items than `full_softmax_max_items`) a step touches only its inputs'
and negatives' rows: a DDP communication hook all-reduces those tables by the union of the
rows the ranks touched (ids all-gathered first), the rest of the model densely; the result is
the same mean. With the full softmax every row has a gradient and the tables go whole.
Resuming restores rank 0 exactly; the other ranks' random streams restart from rank 0's.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from recsys_db.interest.encoder import InterestModel
from recsys_db.interest.features import Vocab
from recsys_db.interest.loss import Softmax
from recsys_db.interest.train import (
    BatchCallback,
    EpochCallback,
    TrainConfig,
    TrainResult,
    Validation,
    _Batch,
    _batch_loss,
    train,
    validate,
)
from recsys_db.interest.train_config import MAX_WORKERS
from recsys_db.sequences import EventLog

BACKEND = "gloo"
# The only buffer (each item's category) is the same on every rank: no broadcast every step.
_NO_BUFFER_SYNC = ({"forward_sync_buffers": False} if "forward_sync_buffers"
                   in inspect.signature(DistributedDataParallel).parameters
                   else {"broadcast_buffers": False})
TIMEOUT = timedelta(minutes=30)  # a collective waits this long (e.g. on rank 0's validation)
JOIN_POLL = timedelta(seconds=0.2)
DONE_GRACE = timedelta(seconds=60)  # after training, for the ranks to exit
FAILED_GRACE = timedelta(seconds=3)  # after a failure, for them to report theirs
DENSE_ENV = "RECSYS_DDP_DENSE_ITEM_GRADS"  # set: all-reduce the item tables whole (to compare)


@dataclasses.dataclass(frozen=True)
class Launch:
    """Where this process sits: its rank, the number of ranks, and how many share its host."""

    rank: int
    world_size: int
    local_world_size: int


def torchrun_launch() -> Launch | None:
    """The launch `torchrun` described in the environment; None when not under torchrun (or it
    started a single rank)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    world = int(os.environ["WORLD_SIZE"])
    if world <= 1:
        return None
    if world > MAX_WORKERS:
        raise ValueError(f"WORLD_SIZE {world} is above the {MAX_WORKERS} workers supported")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return Launch(int(os.environ["RANK"]), world, local)


def worker_threads(threads: int | None, per_host: int) -> int:
    """Threads of one worker: the run's threads (all cores when unset) split among the workers
    on this host, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (threads or cores or 1) // per_host)


def fit(train_log: EventLog, config: TrainConfig, valid: Validation | None, *, items: Vocab,
        categories: Vocab, checkpoint_dir: Path | None = None,
        on_epoch: EpochCallback | None = None, on_batch: BatchCallback | None = None,
        item_category: np.ndarray | None = None) -> TrainResult:
    """`train` on `config.workers` local processes (or the ranks torchrun started, when this
    is rank 0 under torchrun); returns rank 0's result."""
    vocab = (items, categories, item_category)
    launch = torchrun_launch()
    if launch is not None:
        if config.workers not in (1, launch.world_size):
            raise ValueError(f"workers = {config.workers} but torchrun started "
                             f"{launch.world_size} ranks: set workers to 1 or "
                             f"{launch.world_size}")
        if launch.rank != 0:
            raise RuntimeError("only rank 0 runs the job; other ranks call follow_torchrun")
        saved_threads = torch.get_num_threads()
        try:
            with _process_group(0, launch.world_size, init_method="env://"):
                return _lead(train_log, config, valid, vocab, launch, checkpoint_dir,
                             on_epoch, on_batch)
        finally:
            torch.set_num_threads(saved_threads)
    n = config.workers
    launch = Launch(0, n, n)
    ctx = mp.get_context("spawn")
    errors = ctx.SimpleQueue()
    store = dist.TCPStore("127.0.0.1", 0, n, is_master=True, timeout=TIMEOUT,
                          wait_for_workers=False)
    threads = worker_threads(config.threads, n)
    procs = [ctx.Process(target=_spawned_follower, daemon=True, name=f"train-interest-{rank}",
                         args=(rank, n, store.port, threads, errors))
             for rank in range(1, n)]
    for p in procs:
        p.start()
    saved_threads = torch.get_num_threads()
    try:
        _await_followers(store, procs, errors)
        with _process_group(0, n, store=store):
            result = _lead(train_log, config, valid, vocab, launch, checkpoint_dir,
                           on_epoch, on_batch)
    except BaseException as exc:
        _stop(procs, FAILED_GRACE)  # a rank waiting in a collective may not notice for long
        failure = _follower_failure(procs, errors)
        if failure and isinstance(exc, RuntimeError):  # rank 0's collective failed: why
            raise RuntimeError(f"a training worker failed: {failure}") from exc
        raise
    finally:
        torch.set_num_threads(saved_threads)
    _stop(procs, DONE_GRACE)
    return result


def follow_torchrun() -> None:
    """A rank other than 0 under torchrun: train on the data rank 0 broadcasts, then return."""
    launch = torchrun_launch()
    if launch is None or launch.rank == 0:
        raise RuntimeError("follow_torchrun is for ranks 1.. of a torchrun launch")
    with _process_group(launch.rank, launch.world_size, init_method="env://"):
        _follow(launch, worker_threads(None, launch.local_world_size))


class Worker:
    """One rank's part in `train`: agree on rank 0's starting state, train on this rank's users
    through DDP for the same number of steps as every rank, agree on the epoch's loss and on
    rank 0's validation record."""

    def __init__(self, launch: Launch, seed: int) -> None:
        self.rank, self.world_size, self.seed = launch.rank, launch.world_size, seed
        self.steps_windows = 0  # windows per epoch on every rank (after wrapping around)
        self.ddp: DistributedDataParallel | None = None

    def join(self, model: InterestModel, optim: torch.optim.Optimizer, state: Any,
             rng: np.random.Generator, offsets: np.ndarray,
             win: tuple[np.ndarray, np.ndarray, np.ndarray], config: TrainConfig
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Take rank 0's (possibly resumed) model, optimizer, loop state and random stream (then
        jump the stream by rank), wrap the model in DDP; returns this rank's windows."""
        start = [(model.state_dict(), optim.state_dict(), dataclasses.asdict(state),
                  rng.bit_generator.state)] if self.rank == 0 else [None]
        dist.broadcast_object_list(start, src=0)
        if self.rank != 0:
            weights, optim_state, loop_state, rng_state = start[0]
            model.load_state_dict(weights)
            optim.load_state_dict(optim_state)
            for name, value in loop_state.items():
                setattr(state, name, value)
            rng.bit_generator.state = rng_state
            # another stream per rank (negatives, window order); rank 0 keeps the 1-worker one
            rng.bit_generator.state = rng.bit_generator.jumped(self.rank).state
        mine = shard_windows(offsets, win[1], self.rank, self.world_size, self.seed)
        counts = torch.tensor([len(mine), -len(mine)], dtype=torch.int64)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)  # the most and (negated) the fewest
        if int(counts[1]) == 0:
            raise ValueError(f"a worker has no training windows: fewer users with 2+ events "
                             f"than the {self.world_size} workers; use fewer workers")
        self.steps_windows = int(counts[0])
        self.ddp = DistributedDataParallel(
            _LossOfBatch(model), gradient_as_bucket_view=True,
            find_unused_parameters=config.category_weight == 0, **_NO_BUFFER_SYNC)
        sampled = model.shape.n_items > config.full_softmax_max_items
        if sampled and not os.environ.get(DENSE_ENV):  # a step touches few item rows
            tables = [model.item_in.weight, model.item_bias.weight]
            # (a lambda: DDP checks the hook's annotations, which are strings in this module)
            self.ddp.register_comm_hook(_RowTables(tables, self.world_size),
                                        lambda state, bucket: _reduce_bucket(state, bucket))
        return win[0][mine], win[1][mine], win[2][mine]

    def order(self, order: np.ndarray) -> np.ndarray:
        """This epoch's window order, wrapped around to the windows every rank runs."""
        return np.resize(order, self.steps_windows) if len(order) else order

    def loss(self, model: nn.Module, batch: _Batch, config: TrainConfig,
             softmaxes: tuple[Softmax, Softmax]) -> tuple[torch.Tensor, int]:
        """The batch loss through DDP's forward, so its backward all-reduces the gradients."""
        assert self.ddp is not None, "join() first"
        return self.ddp(batch, config, softmaxes)

    def mean_loss(self, total: float, count: int) -> float:
        """The epoch's mean loss over every rank's rows (the same number on every rank)."""
        sums = torch.tensor([total, float(count)], dtype=torch.float64)
        dist.all_reduce(sums)
        return float(sums[0] / max(float(sums[1]), 1.0))

    def validate(self, model: nn.Module, valid: Validation) -> dict[str, float]:
        """Rank 0's validation record, on every rank."""
        record = [validate(model, valid)] if self.rank == 0 else [None]  # type: ignore[arg-type]
        dist.broadcast_object_list(record, src=0)
        return record[0]


def shard_windows(offsets: np.ndarray, w_start: np.ndarray, rank: int, world_size: int,
                  seed: int) -> np.ndarray:
    """Indices of the windows of this rank's users: users in a seeded random order, cut into
    `world_size` runs of about the same number of windows (off by at most one user's)."""
    user = np.searchsorted(offsets, w_start, side="right") - 1
    n_users = len(offsets) - 1
    per_user = np.bincount(user, minlength=n_users)
    order = np.random.default_rng([seed, 15]).permutation(n_users)
    before = np.cumsum(per_user[order]) - per_user[order]
    owner = np.empty(n_users, dtype=np.int64)
    owner[order] = before * world_size // max(int(per_user.sum()), 1)
    return np.flatnonzero(owner[user] == rank)


class _LossOfBatch(nn.Module):
    """The model whose forward is the batch loss: what DDP wraps (the loss calls the model's
    parts, not its forward, so DDP would see no forward otherwise)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: _Batch, config: TrainConfig,
                softmaxes: tuple[Softmax, Softmax]) -> tuple[torch.Tensor, int]:
        return _batch_loss(self.model, batch, config, softmaxes)  # type: ignore[arg-type]


class _RowTables:
    """The parameters whose gradients are all-reduced by rows (the item tables), and the
    number of ranks to average over."""

    def __init__(self, tables: list[nn.Parameter], world_size: int) -> None:
        self.ids = {id(t) for t in tables}
        self.world_size = world_size


def _reduce_bucket(state: _RowTables, bucket: dist.GradBucket
                   ) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: the mean of the bucket's gradients over the ranks, the item
    tables' by the rows any rank touched (their union; every other row is zero everywhere)
    instead of items x dim floats, the rest densely. Buckets are reduced in the same order on
    every rank, so the collectives inside line up."""
    buffer = bucket.buffer()
    dense, offset = [], 0
    for param in bucket.parameters():
        view = buffer[offset:offset + param.numel()].view(param.shape)
        offset += param.numel()
        if id(param) in state.ids:
            _reduce_rows(view, state.world_size)
        else:
            dense.append(view)
    if dense:
        flat = torch.cat([v.reshape(-1) for v in dense])
        dist.all_reduce(flat)
        flat /= state.world_size
        at = 0
        for v in dense:
            v.copy_(flat[at:at + v.numel()].view(v.shape))
            at += v.numel()
    done: torch.futures.Future[torch.Tensor] = torch.futures.Future()
    done.set_result(buffer)
    return done


def _reduce_rows(grad: torch.Tensor, world_size: int) -> None:
    """Average the nonzero rows of `grad` (rows, dim) over the ranks, in place."""
    # amax and amin stream over the table (ne(0).any and aminmax are 4-10x slower)
    rows = ((grad.amax(dim=1) != 0) | (grad.amin(dim=1) != 0)).nonzero().flatten()
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size)]
    dist.all_gather(sizes, torch.tensor([len(rows)], dtype=torch.int64))
    padded = torch.full((int(max(sizes).item()),), -1, dtype=torch.int64)
    padded[:len(rows)] = rows
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded)
    union = torch.unique(torch.cat(gathered))
    union = union[union >= 0]
    values = grad[union]
    dist.all_reduce(values)
    grad[union] = values / world_size


@contextmanager
def _process_group(rank: int, world_size: int, *, init_method: str | None = None,
                   store: dist.Store | None = None) -> Iterator[None]:
    dist.init_process_group(BACKEND, init_method=init_method, store=store, rank=rank,
                            world_size=world_size, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _lead(train_log: EventLog, config: TrainConfig, valid: Validation | None,
          vocab: tuple[Vocab, Vocab, np.ndarray | None], launch: Launch,
          checkpoint_dir: Path | None, on_epoch: EpochCallback | None,
          on_batch: BatchCallback | None) -> TrainResult:
    items, categories, item_category = vocab
    data = [(train_log, config, valid, items, categories, item_category)]
    dist.broadcast_object_list(data, src=0)
    local = dataclasses.replace(config, threads=worker_threads(config.threads,
                                                               launch.local_world_size))
    return train(train_log, local, valid, items=items, categories=categories,
                 checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_batch=on_batch,
                 worker=Worker(launch, config.seed), item_category=item_category)


def _follow(launch: Launch, threads: int) -> None:
    data: list[Any] = [None]
    dist.broadcast_object_list(data, src=0)
    train_log, config, valid, items, categories, item_category = data[0]
    local = dataclasses.replace(config, threads=threads)
    train(train_log, local, valid, items=items, categories=categories,
          worker=Worker(launch, config.seed), item_category=item_category)


def _spawned_follower(rank: int, world_size: int, port: int, threads: int,
                      errors: Any) -> None:
    """Entry of a spawned rank: meet rank 0's store, train, report an error to rank 0."""
    try:
        torch.set_num_threads(threads)
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=TIMEOUT)
        store.set(f"ready/{rank}", "1")
        with _process_group(rank, world_size, store=store):
            _follow(Launch(rank, world_size, world_size), threads)
    except BaseException:
        errors.put(f"rank {rank}: {traceback.format_exc()}")
        raise SystemExit(1) from None


def _await_followers(store: dist.TCPStore, procs: list[Any], errors: Any) -> None:
    """Wait until every spawned rank has reached the store; fail at once if one died."""
    waiting = [f"ready/{p.name.rsplit('-', 1)[1]}" for p in procs]
    deadline = time.monotonic() + TIMEOUT.total_seconds()
    while not store.check(waiting):
        failure = _follower_failure(procs, errors)
        if failure:
            raise RuntimeError(f"a training worker failed to start: {failure}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"training workers did not start within {TIMEOUT}")
        time.sleep(JOIN_POLL.total_seconds())


def _stop(procs: list[Any], grace: timedelta) -> None:
    """Wait up to `grace` for the spawned ranks to end, then end the rest."""
    deadline = time.monotonic() + grace.total_seconds()
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join()


def _follower_failure(procs: list[Any], errors: Any) -> str | None:
    if not errors.empty():
        return str(errors.get())
    dead = [p for p in procs if p.exitcode not in (None, 0)]
    if dead:
        return f"{dead[0].name} exited with code {dead[0].exitcode}"
    return None
