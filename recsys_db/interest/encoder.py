"""The interest encoder: LSTM (default), GRU or causal self-attention over behavior steps.

Each step embeds (item, category, behavior, gap bucket) and sums them. The encoder's output at a
position is the user's interest state after that event; two heads read it:

* next item: score(u, i) = <user_vector(h), item_in[i]> + item_bias[i]  (full or sampled softmax;
  input and output item embeddings are tied, as in SASRec, so a state near recently seen items
  scores them high - repeat views are the strongest signal in shop logs)
* next category: softmax(<category_proj(h), category_in[c]> + category_bias[c]) - tied to the
  category input embeddings the same way

`user_vector` and `item_vector` put both sides in one space with the bias folded in as an extra
component ([u, 1] and [w_i, b_i]), so pgvector's inner product orders items exactly as the model.

Recurrent state for continuing a sequence later (`State`): for the LSTM (h, c), for the GRU h,
and for self-attention the step indices of the last `max_len - 1` events (the context window).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from recsys_db.interest.features import GAP_BUCKETS, MAX_BEHAVIORS

ENCODERS = ("lstm", "gru", "attention")


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

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.dim < 4 or self.dim % self.heads:
            raise ValueError(f"dim must be >= 4 and divisible by heads ({self.heads})")


class CausalAttention(nn.Module):
    """A small causal Transformer (SASRec-style) with learned positions."""

    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        self.positions = nn.Embedding(shape.max_len, shape.dim)
        layer = nn.TransformerEncoderLayer(shape.dim, shape.heads, 2 * shape.dim,
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
        nn.init.normal_(self.item_in.weight, std=0.05)
        nn.init.zeros_(self.item_bias.weight)
        with torch.no_grad():
            self.item_in.weight[0].zero_()
            self.category_in.weight[0].zero_()

    @property
    def recurrent(self) -> bool:
        return self.shape.encoder != "attention"

    def embed(self, item: torch.Tensor, category: torch.Tensor, behavior: torch.Tensor,
              gap: torch.Tensor) -> torch.Tensor:
        x = self.item_in(item) + self.category_in(category) + self.behavior_in(behavior) \
            + self.gap_in(gap)
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

    def user_vector(self, h: torch.Tensor) -> torch.Tensor:
        return self.user_proj(self.dropout(h))

    def item_scores(self, u: torch.Tensor) -> torch.Tensor:
        """Scores of every item (column 0 is padding) for user vectors u (..., d)."""
        return u @ self.item_in.weight.T + self.item_bias.weight[:, 0]

    def category_query(self, h: torch.Tensor) -> torch.Tensor:
        return self.category_proj(self.dropout(h))

    def category_logits(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.category_query(h) @ self.category_in.weight.T + self.category_bias
        logits[..., 0] = float("-inf")  # never predict "unknown"
        return logits

    def item_vectors(self) -> torch.Tensor:
        """(n_items + 1, d + 1): [item embedding, bias] - row i is model item index i."""
        return torch.cat([self.item_in.weight, self.item_bias.weight], dim=1)

    @staticmethod
    def pgvector_user(u: torch.Tensor) -> torch.Tensor:
        """[u, 1]: the inner product with item_vectors() equals item_scores(u)."""
        return torch.cat([u, torch.ones(*u.shape[:-1], 1, dtype=u.dtype)], dim=-1)
