"""The training loss of the stay-or-migrate heads: class vectors looked up once per step,
the full or sampled softmax of the migrate part, and one head's mixture negative
log-likelihood (see `train.py` for how a batch uses them)."""

from __future__ import annotations

import numpy as np
import torch

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
    def items(cls, model: InterestModel, used: torch.Tensor | None) -> Classes:
        """Item vectors (id + category embedding) and biases of the ids in `used` (all items
        for None); `id_vectors` keeps the id embeddings alone for the step inputs."""
        n = model.shape.n_items
        ids = None if used is None else torch.unique(used)
        rows = torch.arange(n + 1) if ids is None else ids
        id_vectors = model.item_in(rows)
        vectors = id_vectors + model.category_in(model.item_category[rows])
        return cls(vectors, model.item_bias(rows)[:, 0], ids, n, id_vectors)

    @classmethod
    def categories(cls, model: InterestModel) -> Classes:
        return cls(model.category_in.weight, model.category_bias, None,
                   model.shape.n_categories)

    def _at(self, ids: torch.Tensor) -> torch.Tensor:
        return ids if self.local is None else self.local[ids]

    def rows(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.vectors if ids is None else self.vectors[self._at(ids)]

    def bias(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.bias_rows if ids is None else self.bias_rows[self._at(ids)]

    def id_rows(self, ids: torch.Tensor) -> torch.Tensor:
        assert self.id_vectors is not None
        return self.id_vectors[self._at(ids)]


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
            chunk = max(1, LOGIT_BUDGET // weight.shape[0])
            parts = []
            for lo in range(0, len(u), chunk):
                logits = torch.addmm(bias, u[lo:lo + chunk], weight.T)
                mask_(logits, exclude[lo:lo + chunk])
                t = target[lo:lo + chunk]
                parts.append(logits.gather(1, t[:, None])[:, 0] - logits.logsumexp(-1))
            return torch.cat(parts)
        pos_logit = ((u * classes.rows(target)).sum(-1) + classes.bias(target)
                     - self.log_q[target])
        neg_logit = torch.addmm(classes.bias(neg) - self.log_q[neg], u, classes.rows(neg).T)
        # accidental hits (a row's own target among the negatives) are rare: mask only them
        hit_rows = torch.isin(target, neg).nonzero()[:, 0]
        if len(hit_rows):
            r, c = (target[hit_rows, None] == neg[None, :]).nonzero(as_tuple=True)
            neg_logit.index_put_((hit_rows[r], c), torch.tensor(float("-inf")))
        return pos_logit - torch.logaddexp(pos_logit, neg_logit.logsumexp(-1))


def mask_(logits: torch.Tensor, exclude: torch.Tensor) -> None:
    """Set each row's excluded ids (R, W) and the padding column 0 to -inf, in place (an
    (R, W) scatter instead of a dense (R, n) mask; addmm's backward does not read its
    output, so autograd allows it)."""
    rows = torch.arange(len(logits))[:, None].expand_as(exclude)
    logits.index_put_((rows, exclude), torch.tensor(float("-inf")))
    logits[:, 0] = float("-inf")


def head_nll(head: StayOrMigrate, h: torch.Tensor, slot_logits: torch.Tensor,
              ids: torch.Tensor, target: torch.Tensor, softmax: Softmax,
              query: torch.Tensor, classes: Classes, neg: torch.Tensor | None
              ) -> torch.Tensor:
    """Summed -log P(target) of the mixture of one head: the stay part for rows whose target
    is in their window, else the migrate softmax (`query` against `classes`)."""
    keep = target > 0
    h, slot_logits, ids, target, query = (x[keep] for x in (h, slot_logits, ids, target, query))
    if len(target) == 0:
        return h.sum() * 0.0
    match = ids == target[:, None]
    stays = match.any(-1)
    log_stay, log_migrate = head.log_gate(h)
    log_migrate = log_migrate.masked_fill((ids == 0).all(-1), 0.0)
    total = h.new_zeros(())
    if stays.any():
        a = torch.log_softmax(slot_logits[stays], dim=-1)
        stay_ll = a.masked_fill(~match[stays], float("-inf")).logsumexp(-1)
        total = total - (log_stay[stays] + stay_ll).sum()
    moves = ~stays
    if moves.any():
        migrate_ll = softmax.log_likelihood(query[moves], classes, target[moves], ids[moves],
                                            neg)
        total = total - (log_migrate[moves] + migrate_ll).sum()
    return total
