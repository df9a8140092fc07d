"""Run a trained encoder over whole histories: user states, scores, continuation.

`encode_histories` runs full sequences (the recurrent state carries across all of a user's
events). `advance` continues stored states through new events only; for the LSTM and GRU this
is the same computation as re-running the whole sequence, and for self-attention the stored
state is the context window, so it is the same too.

The stored state of a user (`Encoded.hidden`) is the encoder's part (the flattened recurrent
state, or the attention context) followed by the last `window` steps (item, category,
behavior) that the stay part of the heads attends over (`Encoded.recent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from recsys_db.interest.encoder import InterestModel
from recsys_db.interest.features import Steps

STEP_FIELDS = ("item", "category", "behavior", "gap")
RECENT_FIELDS = ("item", "category", "behavior")


@dataclass
class Encoded:
    """Per sequence: the encoder output after the last event and what continues it."""

    h: torch.Tensor  # (U, d) encoder output after the last event
    hidden: np.ndarray  # (U, H) float32: encoder state, then the recent window (see module doc)
    recent: np.ndarray  # (U, 3, window) int64: item, category, behavior of the last events,
    #                     oldest first, right-aligned (0 = empty slot)


def recent_windows(steps: Steps, offsets: np.ndarray, window: int) -> np.ndarray:
    """(U, 3, window): the last `window` steps of each sequence, right-aligned."""
    ends = offsets[1:].astype(np.int64)
    idx = ends[:, None] - window + np.arange(window)[None, :]
    valid = idx >= offsets[:-1, None]
    idx = np.where(valid, idx, 0)
    out = np.zeros((len(ends), len(RECENT_FIELDS), window), dtype=np.int64)
    for f, field in enumerate(RECENT_FIELDS):
        values = getattr(steps, field)
        if len(values):
            out[:, f] = np.where(valid, values[idx], 0)
    return out


def _merge_recent(prior: np.ndarray, steps: Steps, offsets: np.ndarray) -> np.ndarray:
    """Recent windows `prior` (U, 3, W) continued through each sequence's new steps."""
    window = prior.shape[2]
    new = recent_windows(steps, offsets, window)
    n_new = np.minimum(np.diff(offsets), window)
    out = np.empty_like(prior)
    for r, k in enumerate(n_new.tolist()):
        out[r] = np.concatenate([prior[r][:, k:], new[r][:, window - k:]], axis=1)
    return out


def split_hidden(model: InterestModel, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stored states -> (encoder part (U, H), recent windows (U, 3, window) int64)."""
    w = model.shape.window
    cut = hidden.shape[1] - len(RECENT_FIELDS) * w
    recent = np.rint(hidden[:, cut:]).astype(np.int64).reshape(len(hidden), len(RECENT_FIELDS), w)
    return hidden[:, :cut], recent


def _with_recent(h: torch.Tensor, encoder_part: np.ndarray, recent: np.ndarray) -> Encoded:
    flat = recent.reshape(len(recent), -1).astype(np.float32)  # model indices < 2**24: exact
    return Encoded(h, np.concatenate([encoder_part, flat], axis=1).astype(np.float32), recent)


def _tensor(steps: Steps, idx: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(getattr(steps, f)[idx]) for f in STEP_FIELDS]


def _padded(steps: Steps, starts: np.ndarray, lengths: np.ndarray) -> tuple[list[torch.Tensor],
                                                                              torch.Tensor]:
    width = int(lengths.max())
    pos = np.arange(width)
    valid = pos[None, :] < lengths[:, None]
    idx = np.where(valid, starts[:, None] + pos[None, :], 0)
    cols = []
    for field in STEP_FIELDS:
        values = getattr(steps, field)[idx]
        values[~valid] = 0
        cols.append(torch.from_numpy(values))
    return cols, torch.from_numpy(~valid)


@torch.no_grad()
def encode_histories(model: InterestModel, steps: Steps, offsets: np.ndarray,
                     batch_size: int = 256, initial: np.ndarray | None = None) -> Encoded:
    """Encode each sequence `steps[offsets[i]:offsets[i+1]]` (all must be non-empty).

    With `initial` (recurrent encoders: stored states, see `split_hidden`), sequences continue
    from those states.
    """
    model.eval()
    n = len(offsets) - 1
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    lengths = ends - starts
    if n and lengths.min() < 1:
        raise ValueError("every sequence needs at least one event")
    prior = None
    if initial is not None:
        initial, prior = split_hidden(model, initial)
    hs, hidden = [], []
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        if model.recurrent:
            init = None if initial is None else unflatten(model, initial[lo:hi])
            h, state = _encode_recurrent(model, steps, starts[lo:hi], lengths[lo:hi], init)
            hidden.append(flatten(state))
        else:
            h, window = _encode_attention(model, steps, starts[lo:hi], lengths[lo:hi])
            hidden.append(window)
        hs.append(h)
    d = model.shape.dim
    recent = (recent_windows(steps, offsets, model.shape.window) if prior is None
              else _merge_recent(prior, steps, offsets))
    return _with_recent(torch.cat(hs) if hs else torch.zeros(0, d),
                        np.concatenate(hidden) if hidden else np.zeros((n, 0), np.float32),
                        recent)


def _encode_recurrent(model: InterestModel, steps: Steps, starts: np.ndarray,
                      lengths: np.ndarray, init: tuple[torch.Tensor, ...] | None
                      ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    cols, _ = _padded(steps, starts, lengths)
    x = model.embed(*cols)
    packed = pack_padded_sequence(x, torch.from_numpy(lengths), batch_first=True,
                                  enforce_sorted=False)
    rnn_init = None if init is None else (init if len(init) == 2 else init[0])
    _, state = model.rnn(packed, rnn_init)
    state = state if isinstance(state, tuple) else (state,)
    return state[0][-1], state


def _encode_attention(model: InterestModel, steps: Steps, starts: np.ndarray,
                      lengths: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    window = model.shape.max_len
    use = np.minimum(lengths, window)
    begin = starts + lengths - use
    cols, pad = _padded(steps, begin, use)
    out, _ = model.encode(model.embed(*cols), pad)
    h = out[torch.arange(len(use)), torch.from_numpy(use - 1)]
    # State: the last (window - 1) steps, right-aligned, as float32 (index values are exact).
    keep = window - 1
    ctx = np.zeros((len(use), 4, keep), dtype=np.float32)
    for r, (b, u) in enumerate(zip(begin, use, strict=True)):
        take = min(int(u), keep)
        src = slice(int(b + u - take), int(b + u))
        for f, field in enumerate(STEP_FIELDS):
            ctx[r, f, keep - take:] = getattr(steps, field)[src]
    return h, ctx.reshape(len(use), -1)


def flatten(state: tuple[torch.Tensor, ...]) -> np.ndarray:
    """(layers, U, d) tensors -> (U, parts * layers * d) float32."""
    parts = [s.permute(1, 0, 2).reshape(s.shape[1], -1) for s in state]
    return torch.cat(parts, dim=1).numpy().astype(np.float32)


def unflatten(model: InterestModel, flat: np.ndarray) -> tuple[torch.Tensor, ...]:
    layers, d = model.shape.layers, model.shape.dim
    parts = 2 if model.shape.encoder == "lstm" else 1
    t = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float32))
    t = t.reshape(len(flat), parts, layers, d).permute(1, 2, 0, 3).contiguous()
    return tuple(t[p] for p in range(parts))


def context_steps(hidden: np.ndarray, window: int) -> Steps:
    """The stored attention context (U, 4*(window-1)) back as Steps (padding included)."""
    ctx = hidden.reshape(len(hidden), 4, window - 1).astype(np.int64)
    return Steps(*(ctx[:, f, :].reshape(-1) for f in range(4)))


@torch.no_grad()
def advance(model: InterestModel, hidden: np.ndarray, steps: Steps, offsets: np.ndarray
            ) -> Encoded:
    """Continue stored states (one row per user) through each user's new steps."""
    if model.recurrent:
        return encode_histories(model, steps, offsets, initial=hidden)
    context, prior = split_hidden(model, hidden)
    keep = model.shape.max_len - 1
    ctx = context_steps(context, model.shape.max_len)
    n = len(offsets) - 1
    merged: dict[str, list[np.ndarray]] = {f: [] for f in STEP_FIELDS}
    new_offsets = [0]
    for r in range(n):
        old = slice(r * keep, (r + 1) * keep)
        new = slice(int(offsets[r]), int(offsets[r + 1]))
        real = ctx.item[old] != 0
        real |= ctx.category[old] != 0
        real |= ctx.behavior[old] != 0
        for field in STEP_FIELDS:
            merged[field].append(np.concatenate([getattr(ctx, field)[old][real],
                                                 getattr(steps, field)[new]]))
        new_offsets.append(new_offsets[-1] + int(real.sum()) + new.stop - new.start)
    all_steps = Steps(*(np.concatenate(merged[f]) for f in STEP_FIELDS))
    enc = encode_histories(model, all_steps, np.asarray(new_offsets, dtype=np.int64))
    context_part, _ = split_hidden(model, enc.hidden)
    return _with_recent(enc.h, context_part, _merge_recent(prior, steps, offsets))
