"""The interest encoder: LSTM (default), GRU or causal self-attention, with a stay-or-migrate head.

Each step embeds (item, category, behavior, gap bucket) and sums them. The encoder's output h at
a position is the user's interest state after that event. Two heads read it, one for the next
item and one for the next category, and each is a mixture in the spirit of RepeatNet (Ren et al.,
AAAI 2019):

    P(next = i) = p_stay * P_stay(i) + (1 - p_stay) * P_migrate(i)

* p_stay = sigmoid(gate(h)): will the next event stay among the user's last `window` events
  (their items for the item head, their categories for the category head)?
* P_stay: attention over those last `window` events. Slot j (item x_j, behavior b_j, j events
  back) gets the logit position_bias[j] + behavior_bias[b_j] + latest_bias[j] if no later
  slot holds x_j, + <stay_query(h), key(x_j)> in the category head (and in the item head with
  `item_stay_content`, off by default: without it the item head ranked a user's own items
  better after a break); an item's probability is the sum over the slots
  that hold it (a frequency count), and latest_bias lets the model rank by each id's latest
  occurrence as well (a recency order: on the Taobao sample's validation targets it raised
  next-item NDCG@10 in each of 4 seeds, 0.1076 -> 0.1122 on average). Keys are the items' own
  vectors.
* P_migrate: a softmax over the catalog without those recent items, with the item's vector
  e_i = item_id_embedding[i] + category_embedding[category(i)] (so rarely seen items still
  score) and a bias: logit_i = <user_vector(h), e_i> + b_i.

Both parts are exact probabilities, so the model's score of an item is log P(next = i): for a
recent item log p_stay + log P_stay(i), for any other log(1 - p_stay) + logit_i - log Z, where
Z sums exp(logit) over the catalog without the recent items. `user_vector` and `item_vector`
put both sides of the catalog part in one space with the bias folded in as an extra component
([u, 1] and [e_i, b_i]), so pgvector's inner product orders the migrate part exactly as the
model; the stay part is a handful of inner products with the same stored item vectors.

Recurrent state for continuing a sequence later: for the LSTM (h, c), for the GRU h, for
self-attention the steps of its context window; plus, for every encoder, the last `window`
steps read by the stay part (see `states.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recsys_db.interest.features import GAP_BUCKETS, MAX_BEHAVIORS
from recsys_db.sequences import BEHAVIOR_WEIGHTS

ENCODERS = ("lstm", "gru", "attention")
NEG_INF = float("-inf")
LOGIT_BUDGET = 1 << 25  # floats of one (rows, classes) logit block (128 MB)


# Where the stay attention's behavior biases start: log of each behavior's default weight in
# recsys.behavior_types (pv 1, fav 2, cart 3, buy 4; 0 for other keys), so a carted item starts
# log 3 ahead of a viewed one, as in the `history` source's behavior-weighted count. Training
# hardly moves these biases (a small, noisy gradient: zeros stayed within 0.13 of zero), so the
# start is what the model keeps. Taobao validation NDCG@10, zeros against this prior: time
# split 0.0917 / 0.0919 / 0.0902 against 0.0948 / 0.0945 / 0.0939 (seeds 0-2), leave-one-out
# 0.1122 / 0.1128 / 0.1129 against 0.1127 / 0.1135 / 0.1111, synthetic log 0.3333 / 0.3326.
def behavior_prior() -> torch.Tensor:
    """(MAX_BEHAVIORS,) the behavior biases' starting values (see the comment above)."""
    prior = torch.zeros(MAX_BEHAVIORS)
    prior[list(BEHAVIOR_WEIGHTS)] = torch.tensor(list(BEHAVIOR_WEIGHTS.values())).log()
    return prior


def rows_per_block(n_classes: int, most: int = 256) -> int:
    """Rows of a (rows, n_classes) score block within LOGIT_BUDGET (at most `most`): scoring
    every item for many users at once takes several such blocks at a time, so at a million
    items 256 rows would take gigabytes."""
    return max(1, min(most, LOGIT_BUDGET // max(1, n_classes)))


@dataclass(frozen=True)
class ModelShape:
    n_items: int  # vocabulary size, without the padding index 0
    n_categories: int
    dim: int = 64
    encoder: str = "lstm"
    dropout: float = 0.2
    max_len: int = 50  # training window; the attention encoder's context
    heads: int = 2
    layers: int = 1
    window: int = 100  # recent events the stay part attends over (TrainConfig.window)
    item_stay_content: bool = False  # the item stay logits' <query(h), key> term (StayOrMigrate)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.dim < 4 or self.dim % self.heads:
            raise ValueError(f"dim must be >= 4 and divisible by heads ({self.heads})")
        if self.window < 1 or self.layers < 1:
            raise ValueError("window and layers must be >= 1")


class CausalAttention(nn.Module):
    """A causal Transformer in the SASRec recipe: learned positions, pre-norm blocks."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.positions = nn.Embedding(shape.max_len, shape.dim)
        layer = nn.TransformerEncoderLayer(shape.dim, shape.heads, shape.dim,
                                           dropout=shape.dropout, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, shape.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(shape.dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        x = x + self.positions(torch.arange(t, device=x.device))[None]
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1)
        out = self.blocks(x, mask=causal, src_key_padding_mask=pad, is_causal=False)
        return self.norm(out)


class StayOrMigrate(nn.Module):
    """The gate and the stay attention of one head (items or categories). With `content`, a
    slot's logit has the term <query(h), key> besides its biases; without it (the item head's
    default since 2026-12-02) the stay attention orders the window by the slot biases alone,
    and h only sets the gate."""

    def __init__(self, dim: int, window: int, content: bool = False) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, 1)
        self.content = content
        if content:
            self.query = nn.Linear(dim, dim)
        # a mild recency prior: nearer slots start ahead, one nat per 49 slots back (slot
        # window-1 is the latest event; -1 to 0 over the 50 slots of the former default window)
        self.position_bias = nn.Parameter((torch.arange(window) - (window - 1)) / 49.0)
        # a behavior's bias starts at the log of its default weight (behavior_prior)
        self.behavior_bias = nn.Embedding(MAX_BEHAVIORS, 1)
        with torch.no_grad():
            self.behavior_bias.weight.copy_(behavior_prior()[:, None])
        # more position bias for a slot that holds its id's latest occurrence in the window
        self.latest_bias = nn.Parameter(torch.zeros(window))

    def log_gate(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p_stay, log p_migrate), each (...,)."""
        g = self.gate(h)[..., 0]
        return F.logsigmoid(g), F.logsigmoid(-g)

    def stay_query(self, h: torch.Tensor) -> torch.Tensor:
        """The query the slot keys are scored against (zeros without `content`)."""
        return self.query(h) if self.content else h.new_zeros(h.shape)

    def slot_bias(self, behavior: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Position + behavior + latest-occurrence bias of each slot (..., window)."""
        return (self.position_bias + self.behavior_bias(behavior)[..., 0]
                + self.latest_bias * latest_occurrence(ids))

    def slot_logits(self, h: torch.Tensor, keys: torch.Tensor, ids: torch.Tensor,
                    behavior: torch.Tensor) -> torch.Tensor:
        """Attention logits (R, window) of rows h (R, d) over slot keys (R, window, d);
        empty slots (id 0) are -inf."""
        e = self.slot_bias(behavior, ids)
        if self.content:
            e = e + torch.einsum("rd,rwd->rw", self.query(h), keys)
        return e.masked_fill(ids == 0, NEG_INF)

    def band_logits(self, h: torch.Tensor, keys: torch.Tensor | None, behavior: torch.Tensor,
                    latest: torch.Tensor) -> torch.Tensor:
        """Training form of `slot_logits` for whole windows: h (B, T, d) and the keys and
        behaviors of the window - 1 steps before the first position and of every position
        (B, window - 1 + T, d) and (B, window - 1 + T) -> (B, T, window), slot j of position
        t being step t + j; `latest` (B, T, window) whether that slot holds the latest
        occurrence of its id in position t's window (`keys` None without `content`). Empty
        slots are not masked here."""
        t, w = h.shape[1], len(self.position_bias)
        # a step's behavior bias is the same in every window that holds it: add it per step
        full = self.behavior_bias(behavior)[:, None, :, 0].expand(len(h), t, -1)
        if self.content:
            assert keys is not None
            full = self.query(h) @ keys.transpose(1, 2) + full
        band = torch.arange(t)[:, None] + torch.arange(w)[None, :]
        return (full.gather(2, band.expand(len(h), t, w)) + self.position_bias
                + self.latest_bias * latest)


def latest_occurrence(ids: torch.Tensor) -> torch.Tensor:
    """(..., window) float: 1 where no later slot (higher index) holds the same id."""
    later = torch.ones(ids.shape[-1], ids.shape[-1], dtype=torch.bool).triu(1)
    return ~((ids[..., :, None] == ids[..., None, :]) & later).any(-1)


def stay_log_probs(slot_logits: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """log P_stay over all n + 1 ids (R, n + 1) from slot logits (R, window): -inf where the id
    is not in the window. Rows with no filled slot are all -inf."""
    a = torch.softmax(slot_logits, dim=-1).nan_to_num(0.0)
    p = torch.zeros(len(ids), n + 1, dtype=a.dtype).scatter_add_(1, ids, a)
    p[:, 0] = 0.0
    return torch.log(p)


def recent_mask(ids: torch.Tensor, n: int) -> torch.Tensor:
    """(R, n + 1) bool: the ids in each row's window, and the padding column 0."""
    mask = torch.zeros(len(ids), n + 1, dtype=torch.bool).scatter_(1, ids, True)
    mask[:, 0] = True
    return mask


LOG_Z_USERS, LOG_Z_ITEMS = 256, 4096  # a (users, items) block of log_partition: 4 MB


def log_partition(u: torch.Tensor, vectors: torch.Tensor, ids: torch.Tensor,
                  users: int = LOG_Z_USERS, items: int = LOG_Z_ITEMS) -> torch.Tensor:
    """log sum_i exp(<u_r, vectors_i>) for each row r of u (R, d) over the classes of
    `vectors` (n + 1, d) except column 0 (padding) and the row's recent `ids` (R, window):
    the log Z of the migrate softmax, exact. Streamed over small (users, items) blocks with a
    running max and sum, so each block stays in cache: 3.6x faster at 591k items on 2 cores
    than a logsumexp over whole rows, which wrote and re-read 130 MB of logits a block."""
    out = torch.empty(len(u))
    n = len(vectors)
    for lo in range(0, len(u), users):
        rows, recent = u[lo:lo + users], ids[lo:lo + users]
        top = torch.full((len(rows),), NEG_INF)
        total = torch.zeros(len(rows))
        for first in range(0, n, items):
            logits = rows @ vectors[first:first + items].T
            if first == 0:
                logits[:, 0] = NEG_INF
            r, slot = torch.nonzero((recent >= first) & (recent < first + items),
                                    as_tuple=True)
            logits[r, recent[r, slot] - first] = NEG_INF
            new_top = torch.maximum(top, logits.amax(1))
            shift = torch.where(torch.isinf(new_top), 0.0, new_top)  # a row all excluded so far
            total = total * torch.exp(top - shift) + torch.exp(logits - shift[:, None]).sum(1)
            top = new_top
        out[lo:lo + users] = top + torch.log(total)
    return out


class InterestModel(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.shape = shape
        d = shape.dim
        self.item_in = nn.Embedding(shape.n_items + 1, d, padding_idx=0)
        self.category_in = nn.Embedding(shape.n_categories + 1, d, padding_idx=0)
        self.behavior_in = nn.Embedding(MAX_BEHAVIORS, d)
        self.gap_in = nn.Embedding(GAP_BUCKETS, d)
        self.dropout = nn.Dropout(shape.dropout)
        if shape.encoder == "lstm":
            self.rnn: nn.Module = nn.LSTM(d, d, shape.layers, batch_first=True)
        elif shape.encoder == "gru":
            self.rnn = nn.GRU(d, d, shape.layers, batch_first=True)
        else:
            self.rnn = CausalAttention(shape)
        self.user_proj = nn.Linear(d, d)
        self.item_bias = nn.Embedding(shape.n_items + 1, 1)
        self.category_proj = nn.Linear(d, d)
        self.category_bias = nn.Parameter(torch.zeros(shape.n_categories + 1))
        self.item_stay = StayOrMigrate(d, shape.window, shape.item_stay_content)
        # the category head keeps the term: a few categories sit in every window, and which
        # one comes next depends on where the user is (a planted Markov chain: tests)
        self.category_stay = StayOrMigrate(d, shape.window, content=True)
        # the category of each item (model indices), so an item's vector includes its category's
        self.register_buffer("item_category", torch.zeros(shape.n_items + 1, dtype=torch.long))
        nn.init.normal_(self.item_in.weight, std=0.05)
        nn.init.zeros_(self.item_bias.weight)
        with torch.no_grad():
            self.item_in.weight[0].zero_()
            self.category_in.weight[0].zero_()

    @property
    def recurrent(self) -> bool:
        return self.shape.encoder != "attention"

    def set_item_categories(self, item_category: torch.Tensor) -> None:
        self.item_category.copy_(item_category)

    def embed(self, item: torch.Tensor, category: torch.Tensor, behavior: torch.Tensor,
              gap: torch.Tensor, item_x: torch.Tensor | None = None) -> torch.Tensor:
        """Step inputs (B, T, d); `item_x` is item_in(item) when the caller looked it up."""
        item_x = self.item_in(item) if item_x is None else item_x
        x = item_x + self.category_in(category) + self.behavior_in(behavior) + self.gap_in(gap)
        return self.dropout(x)

    def encode(self, x: torch.Tensor, pad: torch.Tensor | None = None,
               state: tuple[torch.Tensor, ...] | None = None
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Outputs at every position (B, T, d), and the recurrent state after the last one."""
        if self.recurrent:
            if state is not None and len(state) == 1:
                state = state[0]
            out, new = self.rnn(x, state)
            new = new if isinstance(new, tuple) else (new,)
            return out, new
        if pad is None:
            pad = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        return self.rnn(x, pad), None

    # --- the item head -------------------------------------------------------------------
    def item_matrix(self) -> torch.Tensor:
        """(n_items + 1, d): each item's id embedding plus its category's (row 0 is zero)."""
        return self.item_in.weight + self.category_in.weight[self.item_category]

    def item_rows(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `ids` of `item_matrix()` (all rows for None), computing only those rows."""
        if ids is None:
            return self.item_matrix()
        return self.item_in(ids) + self.category_in(self.item_category[ids])

    def category_rows(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Rows `ids` of the category embeddings (all rows for None)."""
        return self.category_in.weight if ids is None else self.category_in(ids)

    def user_vector(self, h: torch.Tensor) -> torch.Tensor:
        return self.user_proj(self.dropout(h))

    def item_scores(self, u: torch.Tensor, matrix: torch.Tensor | None = None) -> torch.Tensor:
        """Migrate-part logits of every item (column 0 is padding) for user vectors u (..., d);
        `matrix`: item_matrix() when the caller scores many blocks (computed once)."""
        matrix = self.item_matrix() if matrix is None else matrix
        return u @ matrix.T + self.item_bias.weight[:, 0]

    def item_vectors(self) -> torch.Tensor:
        """(n_items + 1, d + 1): [item vector, bias] - row i is model item index i."""
        return torch.cat([self.item_matrix(), self.item_bias.weight], dim=1)

    @staticmethod
    def pgvector_user(u: torch.Tensor) -> torch.Tensor:
        """[u, 1]: the inner product with item_vectors() equals item_scores(u)."""
        return torch.cat([u, torch.ones(*u.shape[:-1], 1, dtype=u.dtype)], dim=-1)

    def item_slot_logits(self, h: torch.Tensor, ids: torch.Tensor, behavior: torch.Tensor
                         ) -> torch.Tensor:
        return self.item_stay.slot_logits(h, self.item_rows(ids), ids, behavior)

    def item_log_probs(self, h: torch.Tensor, ids: torch.Tensor, behavior: torch.Tensor,
                       matrix: torch.Tensor | None = None) -> torch.Tensor:
        """log P(next item) over every item (R, n_items + 1) for states h (R, d) whose last
        `window` events hold items `ids` (R, window; 0 = empty slot); `matrix` as in
        item_scores."""
        logits = self.item_scores(self.user_vector(h), matrix)
        return self._mixture(self.item_stay, h, logits,
                             self.item_slot_logits(h, ids, behavior), ids)

    # --- the category head ---------------------------------------------------------------
    def category_query(self, h: torch.Tensor) -> torch.Tensor:
        return self.category_proj(self.dropout(h))

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Migrate-part logits of every category (column 0, "unknown", is -inf)."""
        logits = self.category_query(h) @ self.category_in.weight.T + self.category_bias
        logits[..., 0] = NEG_INF
        return logits

    def category_slot_logits(self, h: torch.Tensor, ids: torch.Tensor, behavior: torch.Tensor
                             ) -> torch.Tensor:
        return self.category_stay.slot_logits(h, self.category_in(ids), ids, behavior)

    def category_log_probs(self, h: torch.Tensor, ids: torch.Tensor, behavior: torch.Tensor
                           ) -> torch.Tensor:
        """log P(next category) over every category (R, n_categories + 1)."""
        return self._mixture(self.category_stay, h, self.category_logits(h),
                             self.category_slot_logits(h, ids, behavior), ids)

    @staticmethod
    def _mixture(head: StayOrMigrate, h: torch.Tensor, logits: torch.Tensor,
                 slot_logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        n = logits.shape[-1] - 1
        log_stay, log_migrate = head.log_gate(h)
        log_migrate = log_migrate.masked_fill((ids == 0).all(-1), 0.0)  # nothing to stay with
        recent = recent_mask(ids, n)
        explore = torch.log_softmax(logits.masked_fill(recent, NEG_INF), dim=-1)
        stay = stay_log_probs(slot_logits, ids, n)
        out = torch.where(recent, log_stay[:, None] + stay, log_migrate[:, None] + explore)
        out[:, 0] = NEG_INF
        return out
