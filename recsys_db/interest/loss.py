"""The training loss of the stay-or-migrate heads: class vectors looked up once per step,
the full or sampled softmax of the migrate part, and one head's mixture negative
log-likelihood (see `train.py` for how a batch uses them)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from recsys_db.interest.encoder import LOGIT_BUDGET, InterestModel, StayOrMigrate


class Classes:
    """The class vectors and biases one training step uses, each table looked up once.

    Every use (inputs, stay keys, targets, negatives) indexes this step's rows instead of the
    embedding table, so autograd makes one dense table gradient per step, not one per use (at
    100k items those dense gradients cost more than the rest of the step). `ids` None: every
    class (the full softmax)."""

    def __init__(self, vectors: torch.Tensor, bias: torch.Tensor, ids: torch.Tensor | None,
                 n: int, id_vectors: torch.Tensor | None = None) -> None:
        self.vectors, self.bias_rows, self.id_vectors = vectors, bias, id_vectors
        self.local: torch.Tensor | None = None
        if ids is not None:
            self.local = torch.zeros(n + 1, dtype=torch.long)
            self.local[ids] = torch.arange(len(ids))

    @classmethod
    def items(cls, model: InterestModel, used: torch.Tensor | None,
              sparse: SparseTableGrads | None = None) -> Classes:
        """Item vectors (id + category embedding) and biases of the ids in `used` (all items
        for None); `id_vectors` keeps the id embeddings alone for the step inputs. With
        `sparse`, the item tables' gradients come as sparse rows into its buffers."""
        n = model.shape.n_items
        ids = None if used is None else torch.unique(used)
        rows = torch.arange(n + 1) if ids is None else ids
        if sparse is not None:
            sparse.touched = rows
        id_vectors = F.embedding(rows, model.item_in.weight, padding_idx=0,
                                 sparse=sparse is not None)
        vectors = id_vectors + model.category_in(model.item_category[rows])
        bias = F.embedding(rows, model.item_bias.weight, sparse=sparse is not None)[:, 0]
        return cls(vectors, bias, ids, n, id_vectors)

    @classmethod
    def categories(cls, model: InterestModel) -> Classes:
        return cls(model.category_in.weight, model.category_bias, None,
                   model.shape.n_categories)

    def _at(self, ids: torch.Tensor) -> torch.Tensor:
        return ids if self.local is None else self.local[ids]

    def rows(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.vectors if ids is None else take(self.vectors, self._at(ids))

    def bias(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.bias_rows if ids is None else take(self.bias_rows, self._at(ids))

    def id_rows(self, ids: torch.Tensor) -> torch.Tensor:
        assert self.id_vectors is not None
        return take(self.id_vectors, self._at(ids))


class SparseTableGrads:
    """Dense gradient buffers of the item tables (id embeddings, biases), kept across steps,
    into which each step's sparse row gradients accumulate.

    A step touches a few thousand of the tables' rows, but a dense embedding backward
    allocates and zero-fills a new items x dim gradient every step (16 MB at 64k items,
    3 ms of a 50 ms step: fresh memory each time). Looked up with sparse=True, autograd adds
    the rows into the buffer attached as .grad; `attach` zeroes only the rows the previous
    step touched. The gradient clipping and the optimizer see the same dense gradient as
    before, value for value (a step looks each row up once: Classes.items takes unique
    ids). Not under DDP, whose reducer wants dense gradients (distributed.py)."""

    def __init__(self, model: InterestModel) -> None:
        self.tables = [model.item_in.weight, model.item_bias.weight]
        self.buffers = [torch.zeros_like(t) for t in self.tables]
        self.touched: torch.Tensor | None = None  # rows of the last step (None: all)

    def attach(self) -> None:
        """Before a step's forward: zeroed buffers as the tables' .grad."""
        for table, buffer in zip(self.tables, self.buffers, strict=True):
            if self.touched is None:
                buffer.zero_()
            else:
                buffer.index_fill_(0, self.touched, 0.0)
            table.grad = buffer
        self.touched = None  # until this step's lookup says which rows it reads


class Softmax:
    """Log-likelihood of targets under a softmax over a vocabulary (index 0 = padding, never a
    class) without each row's excluded ids: full softmax up to `full_max` classes, else sampled
    softmax with `negatives` shared negatives drawn from unigram^0.75 per batch, log-Q
    corrected, accidental hits masked (excluded ids are not masked among the negatives)."""

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

    def draw(self) -> torch.Tensor | None:
        """This batch's shared negatives (None for the full softmax)."""
        if self.full:
            return None
        return torch.from_numpy(self.rng.choice(len(self.q), self.k, p=self.q))

    def log_likelihood(self, u: torch.Tensor, classes: Classes, target: torch.Tensor,
                       exclude: torch.Tensor, neg: torch.Tensor | None) -> torch.Tensor:
        """(R,) log P(target) for rows u (R, d) against `classes`; `exclude` (R, W) ids masked
        out (0 = none); `neg` the negatives from `draw()`."""
        if neg is None:
            weight, bias = classes.rows(), classes.bias()
            target_logit = (u * classes.rows(target)).sum(-1) + classes.bias(target)
            chunk = max(1, LOGIT_BUDGET // weight.shape[0])
            # each row's excluded ids and the padding column 0 are masked out
            exclude = torch.cat([exclude, exclude.new_zeros(len(exclude), 1)], 1)
            lse = torch.cat([MaskedLogSumExp.apply(u[lo:lo + chunk], weight, bias,
                                                   exclude[lo:lo + chunk], None)
                             for lo in range(0, len(u), chunk)])
            return target_logit - lse
        pos_logit = ((u * classes.rows(target)).sum(-1) + classes.bias(target)
                     - self.log_q[target])
        # accidental hits (a row's own target among the negatives) are rare: mask only them
        hits = None
        hit_rows = torch.isin(target, neg).nonzero()[:, 0]
        if len(hit_rows):
            r, c = (target[hit_rows, None] == neg[None, :]).nonzero(as_tuple=True)
            hits = (hit_rows[r], c)
        neg_lse = MaskedLogSumExp.apply(u, classes.rows(neg), classes.bias(neg) - self.log_q[neg],
                                        None, hits)
        return pos_logit - torch.logaddexp(pos_logit, neg_lse)


class MaskedLogSumExp(torch.autograd.Function):
    """(R,) logsumexp over the logits `u @ weight.T + bias` (R, C) with some entries masked
    out (-inf): `exclude` (R, W) columns per row, and/or `hits` (rows, columns) pairs.

    The same maths as autograd over addmm, masking and logsumexp, in fewer passes over the
    (R, C) block: forward keeps the exponentials exp(logit - row max) it summed, and backward
    turns them into the softmax gradient in place (one multiply) instead of re-reading the
    logits, exponentiating again and adding a gather's dense zero-filled gradient. The
    softmaxes are most of a training step's time; this halves theirs. Backward runs once
    (no retain_graph)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, weight: torch.Tensor,  # type: ignore[override]
                bias: torch.Tensor, exclude: torch.Tensor | None,
                hits: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        # the bias as one more input column: a plain product, twice as fast as addmm's
        # broadcast copy of the bias followed by an accumulating product
        e = torch.cat([u, u.new_ones(len(u), 1)], 1) @ torch.cat([weight, bias[:, None]], 1).T
        if exclude is not None:
            e.scatter_(1, exclude, float("-inf"))
        if hits is not None:
            e.index_put_(hits, e.new_tensor(float("-inf")))
        top = e.amax(-1, keepdim=True)
        top.masked_fill_(top == float("-inf"), 0.0)  # a fully masked row: -inf, no NaN
        total = e.sub_(top).exp_().sum(-1)
        ctx.save_for_backward(u, weight, e, total)
        return total.log().add_(top[:, 0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor  # type: ignore[override]
                 ) -> tuple[torch.Tensor | None, ...]:
        u, weight, e, total = ctx.saved_tensors
        # grad x softmax, in the saved block (a fully masked row, total 0, gets none)
        p = e.mul_((grad / total.clamp(min=1e-30))[:, None])
        return p @ weight, p.T @ u, p.sum(0), None, None


def take(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] along the first dimension by index_select: its backward is an index_add,
    where advanced indexing's is a sorting index_put (several ms a step at these sizes)."""
    return x.index_select(0, index.flatten()).view(*index.shape, *x.shape[1:])


def head_nll(head: StayOrMigrate, h: torch.Tensor, slot_logits: torch.Tensor,
              ids: torch.Tensor, target: torch.Tensor, softmax: Softmax,
              query: torch.Tensor, classes: Classes, neg: torch.Tensor | None
              ) -> torch.Tensor:
    """Summed -log P(target) of the mixture of one head: the stay part for rows whose target
    is in their window, else the migrate softmax (`query` against `classes`)."""
    keep = target > 0
    if not keep.all():
        rows = keep.nonzero()[:, 0]
        h, slot_logits, ids, target, query = (take(x, rows)
                                              for x in (h, slot_logits, ids, target, query))
    if len(target) == 0:
        return h.sum() * 0.0
    match = ids == target[:, None]
    stays = match.any(-1)
    log_stay, log_migrate = head.log_gate(h)
    log_migrate = log_migrate.masked_fill((ids == 0).all(-1), 0.0)
    total = h.new_zeros(())
    stay_rows, move_rows = stays.nonzero()[:, 0], (~stays).nonzero()[:, 0]
    if len(stay_rows):
        a = torch.log_softmax(take(slot_logits, stay_rows), dim=-1)
        stay_ll = a.masked_fill(~match[stay_rows], float("-inf")).logsumexp(-1)
        total = total - (take(log_stay, stay_rows) + stay_ll).sum()
    if len(move_rows):
        migrate_ll = softmax.log_likelihood(take(query, move_rows), classes, target[move_rows],
                                            ids[move_rows], neg)
        total = total - (take(log_migrate, move_rows) + migrate_ll).sum()
    return total
