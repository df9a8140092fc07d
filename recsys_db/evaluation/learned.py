"""The interest encoders (lstm, gru, attention) as evaluation methods.

`fit` trains on the split's training events only, early-stopping on the split's validation
instances; `score` runs the encoder over each instance's history and scores every catalog
column. Catalog items the model never saw in training cannot be scored and rank last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.splits import Instances
from recsys_db.interest.features import Steps, Vocab, make_steps, sequence_starts
from recsys_db.interest.states import encode_histories
from recsys_db.interest.train import TrainConfig, TrainResult, Validation, build_vocabs, train
from recsys_db.sequences import EventLog

UNSCORABLE = -1e30


def instance_steps(instances: Instances, batch: slice, items: Vocab, categories: Vocab
                   ) -> tuple[Steps, np.ndarray]:
    offsets, sl = instances.batch_history(batch)
    first = sequence_starts(offsets, sl.stop - sl.start)
    steps = make_steps(items, categories, instances.hist_item[sl], instances.hist_category[sl],
                       instances.hist_behavior[sl], instances.hist_ts[sl], first)
    return steps, offsets


class InterestEncoderMethod:
    """An encoder trained like the production job, on the evaluation split's training part."""

    def __init__(self, encoder: str, config: TrainConfig | None = None,
                 valid: Instances | None = None,
                 on_epoch: Callable[[dict[str, float]], None] | None = None) -> None:
        self.name = encoder
        self.config = dataclasses.replace(config or TrainConfig(), encoder=encoder)
        self.valid = valid
        self.on_epoch = on_epoch
        self.result: TrainResult | None = None

    def fit(self, train_log: EventLog, catalog: Catalog) -> None:
        items, categories = build_vocabs(train_log)
        valid = None
        if self.valid is not None and len(self.valid):
            steps, offsets = instance_steps(self.valid, slice(0, len(self.valid)), items,
                                            categories)
            valid = Validation(steps, offsets, items.index(self.valid.target_item),
                               categories.index(self.valid.target_category))
        self.result = train(train_log, self.config, valid, items=items, categories=categories,
                            on_epoch=self.on_epoch)
        self._item_cols = items.index(catalog.items)  # model index of each catalog column
        self._category_cols = categories.index(catalog.categories)

    @torch.no_grad()
    def score(self, instances: Instances, batch: slice, target: str) -> np.ndarray:
        assert self.result is not None, "fit first"
        model = self.result.model
        steps, offsets = instance_steps(instances, batch, self.result.items,
                                        self.result.categories)
        enc = encode_histories(model, steps, offsets)
        behavior = torch.from_numpy(enc.recent[:, 2])
        if target == "item":
            scores = model.item_log_probs(enc.h, torch.from_numpy(enc.recent[:, 0]), behavior)
            cols = self._item_cols
        else:
            scores = model.category_log_probs(enc.h, torch.from_numpy(enc.recent[:, 1]),
                                              behavior)
            cols = self._category_cols
        out = scores.numpy()[:, cols].astype(np.float64)
        out[:, cols == 0] = UNSCORABLE
        return out
