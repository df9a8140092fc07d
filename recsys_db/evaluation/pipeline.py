"""The SQL serving pipeline as evaluation methods: `fused` (candidates + features + compiled
ranker, exactly what recsys.recommend serves) and each candidate source alone (`vector`, `cf`,
`session`, `trending`, ranked by that source's own score).

Time split only: everything is trained on events before the test cut-off T - the interest
encoder on the split's training part (like the `lstm` method), CF and item statistics as of T,
the ranker on label windows before T - and written as inactive versions, which are dropped
again afterwards (the active model is never touched). Each test user's candidates and features
come from `recsys.candidate_features(user, T, ...)`, the function serving uses. The ranker's
lists get their vector scores from an encoder trained (same settings) on the events before its
first label window, as the train-ranker job does. Items that are not candidates cannot be
recommended by the pipeline and rank last.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from recsys_db.evaluation.catalog import Catalog
from recsys_db.evaluation.learned import UNSCORABLE, InterestEncoderMethod
from recsys_db.evaluation.splits import Instances, Split
from recsys_db.interest import store
from recsys_db.interest.train import TrainConfig
from recsys_db.ranker.train import RankerConfig, asof_versions, train_ranker
from recsys_db.registry import drop_versions
from recsys_db.sequences import EventLog

# method -> (feature index of its score, candidate source it ranks); `history` is the
# long-memory repeat score (feature 16) over the user's own items
SOURCES = {"vector": (0, "vector"), "cf": (1, "cf"), "session": (2, "session"),
           "trending": (3, "trending"), "history": (15, "session")}
PIPELINE_METHODS = ("fused", *SOURCES)


class SqlPipeline:
    """Trains the pipeline once for a split and scores its test users with the serving SQL."""

    def __init__(self, conn: psycopg.Connection, split: Split, config: TrainConfig | None = None,
                 ranker: RankerConfig | None = None) -> None:
        if "cutoff_ts" not in split.params:
            raise ValueError("the SQL pipeline is evaluated on the time split only")
        self.conn = conn
        self.split = split
        self.config = config
        self.ranker_config = ranker or RankerConfig()
        self.cutoff = datetime.fromtimestamp(split.params["cutoff_ts"], UTC)
        self.helpers: list[int] = []
        self.scores: dict[int, dict[str, dict[int, float]]] | None = None

    def prepare(self, train: EventLog, catalog: Catalog) -> None:
        if self.scores is not None:
            return
        encoder = InterestEncoderMethod("lstm", self.config, self.split.valid)
        encoder.fit(train, catalog)
        assert encoder.result is not None
        loaded = store.LoadedModel(-1, encoder.result.model, encoder.result.items,
                                   encoder.result.categories)
        try:
            ranker = train_ranker(self.conn, self.ranker_config, end=self.cutoff,
                                  activate=False, interest=encoder.config)
            self.helpers.append(ranker["version_id"])
            interest, cf = asof_versions(self.conn, self.cutoff, loaded)
            self.helpers += [interest, cf]
            self.scores = self._score_users(interest, cf, ranker["version_id"])
        finally:
            self._cleanup()

    def _score_users(self, interest: int, cf: int, ranker: int) -> dict[int, dict[str, Any]]:
        users = np.unique(self.split.test.user).tolist()
        rows = self.conn.execute(
            f"SELECT u.user_key, f.item_key, f.sources, f.features, "
            f"recsys.ranker_score_v{int(ranker)}(f.features) "
            "FROM unnest(%s::integer[]) AS u(user_key) CROSS JOIN LATERAL "
            "recsys.candidate_features(u.user_key, %s, %s, %s) f",
            (users, self.cutoff, interest, cf)).fetchall()
        out: dict[int, dict[str, dict[int, float]]] = {}
        for user, item, sources, features, fused in rows:
            per = out.setdefault(user, {m: {} for m in PIPELINE_METHODS})
            per["fused"][item] = fused
            for name, (index, source) in SOURCES.items():
                if source in sources and features[index] is not None:
                    per[name][item] = features[index]
        self.conn.commit()
        return out

    def _cleanup(self) -> None:
        self.conn.rollback()
        drop_versions(self.conn, [v for v in self.helpers if v is not None])


class PipelineMethod:
    """One of PIPELINE_METHODS, backed by a shared SqlPipeline."""

    def __init__(self, name: str, pipeline: SqlPipeline) -> None:
        self.name = name
        self.pipeline = pipeline
        self.catalog: Catalog | None = None

    def fit(self, train: EventLog, catalog: Catalog) -> None:
        self.catalog = catalog
        self.pipeline.prepare(train, catalog)

    def score(self, instances: Instances, batch: slice, target: str) -> np.ndarray:
        assert self.catalog is not None and self.pipeline.scores is not None
        users = instances.user[batch]
        out = np.full((len(users), self.catalog.size(target)), UNSCORABLE)
        for row, user in enumerate(users):
            scored = self.pipeline.scores.get(int(user), {}).get(self.name, {})
            if not scored:
                continue
            items = np.fromiter(scored, dtype=np.int64)
            values = np.fromiter(scored.values(), dtype=np.float64)
            if target == "item":
                cols = self.catalog.item_index(items)
                keep = cols >= 0
                out[row, cols[keep]] = values[keep]
            else:  # a category scores as its best candidate item
                cats = self.catalog.category_index(
                    self.catalog.item_category[self.catalog.item_index(items)])
                for col, value in zip(cats, values, strict=True):
                    if col >= 0:
                        out[row, col] = max(out[row, col], value)
        return out
