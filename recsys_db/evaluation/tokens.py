"""Event sequences as catalog column indices ("tokens") for one target (item or category).

A token is the score-matrix column of an event's item (target "item") or category (target
"category"). Events whose key has no column (category 0 = unknown) are dropped, so a category
sequence is the sequence of known categories. Methods use these to fit on training logs and
to read the histories of a batch of instances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.splits import Instances
from recsys_db.sequences import EventLog


@dataclass
class TokenSequences:
    """Sequence i is `tokens[offsets[i]:offsets[i+1]]` (oldest first; may be empty)."""

    tokens: np.ndarray  # int64 column index
    ts: np.ndarray  # int64 unix seconds of each token's event
    offsets: np.ndarray  # int64, len = n_sequences + 1

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence_id(self) -> np.ndarray:
        """Sequence number of each token."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths())

    def recency(self) -> np.ndarray:
        """Per token: 0 for the last token of its sequence, 1 for the one before, ..."""
        return np.repeat(self.offsets[1:], self.lengths()) - 1 - np.arange(len(self.tokens))

    def pairs(self, gap: int) -> tuple[np.ndarray, np.ndarray]:
        """(earlier, later) tokens `gap` steps apart within the same sequence."""
        if len(self.tokens) <= gap:
            empty = np.array([], dtype=np.int64)
            return empty, empty
        seq = self.sequence_id()
        same = seq[:-gap] == seq[gap:]
        return self.tokens[:-gap][same], self.tokens[gap:][same]


def _tokens(keys: np.ndarray, ts: np.ndarray, offsets: np.ndarray, catalog: Catalog,
            target: str) -> TokenSequences:
    cols = catalog.index(target, keys)
    keep = cols >= 0
    if keep.all():
        return TokenSequences(cols, ts.astype(np.int64), offsets.astype(np.int64))
    kept_before = np.r_[0, np.cumsum(keep, dtype=np.int64)]
    return TokenSequences(cols[keep], ts[keep].astype(np.int64), kept_before[offsets])


def train_tokens(log: EventLog, catalog: Catalog, target: str) -> TokenSequences:
    """One token sequence per user of a (training) log."""
    keys = log.item if target == "item" else log.category
    return _tokens(keys, log.ts, log.offsets, catalog, target)


def history_tokens(instances: Instances, batch: slice, catalog: Catalog,
                   target: str) -> TokenSequences:
    """The histories of the instances in `batch`, one token sequence per instance."""
    offsets, span = instances.batch_history(batch)
    keys = instances.hist_item[span] if target == "item" else instances.hist_category[span]
    return _tokens(keys, instances.hist_ts[span], offsets, catalog, target)


def last_tokens_matrix(seqs: TokenSequences, weights: np.ndarray, n_columns: int
                       ) -> sp.csr_matrix:
    """(n_sequences, n_columns) sparse: the last len(weights) tokens of each sequence, the
    most recent weighted weights[0], the one before weights[1], ... (repeats add up)."""
    recency = seqs.recency()
    keep = recency < len(weights)
    rows = seqs.sequence_id()[keep]
    return sp.csr_matrix((np.asarray(weights, np.float64)[recency[keep]],
                          (rows, seqs.tokens[keep])), shape=(len(seqs), n_columns))
