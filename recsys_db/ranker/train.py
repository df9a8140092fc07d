"""The train-ranker job: LightGBM lambdarank over the SQL candidates and features, compiled
into a SQL function that `recsys.recommend` calls.

Training lists come from history: at a cut-off time C, each user active in the label window
after C gets the candidates `recsys.candidate_features` would have served at C - computed by
the very SQL that serves (no train/serve skew) against interest and CF versions built as of C,
from an encoder trained on events before the first cut-off only - labelled by what they did in
the window (graded by behavior weight, plus a bonus for the first item they touched). The
windows before the last train; the last validates (early stopping). The compiled scorer is
timed on 200 candidates; over the budget, the model is cut to fewer trees and the trade-off
is recorded. The version goes through the registry's lifecycle (create, mark ready, promote);
SQL: sql/ranker.sql.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import psycopg
from psycopg import sql as pgsql

from recsys_db.cf import train_cf
from recsys_db.interest import store
from recsys_db.interest.train_config import TrainConfig
from recsys_db.interest.trainer import user_states_for
from recsys_db.interest.validation import fit_on_log
from recsys_db.params import Params
from recsys_db.ranker.compile import compile_booster
from recsys_db.registry import (
    DEFAULT_TOLERANCE,
    active_version,
    create_version,
    drop_versions,
    mark_ready,
    promote,
)
from recsys_db.sequences import EventLog, load_event_log
from recsys_db.sqlfiles import queries

KIND = "ranker"
log = logging.getLogger(__name__)
MAX_LABEL = 31  # labels are clipped to LightGBM's default label_gain length


@dataclass(frozen=True)
class RankerConfig(Params):
    num_trees: int = 200
    num_leaves: int = 15
    learning_rate: float = 0.05
    min_data_in_leaf: int = 20
    # 12-hour label windows: on the Taobao time split (measured before the as-of encoder fix)
    # fused next-item NDCG@10 went from 0.0726 (1-day windows) to 0.0873; 6-hour windows gave
    # 0.0867 at twice the training cost
    label_days: float = 0.5
    train_windows: int = 6  # label windows before the validation window (3 days)
    # added to the label of the first item the user touched after the cut-off: the very next
    # item is what a recommendation is for (replaying the Taobao time split's lists offline,
    # next-item NDCG@10 0.0962 without the bonus, 0.0981 with it)
    next_item_bonus: int = 8
    budget_ms: float = 5.0
    seed: int = 0
    # users per label window (drawn at random with `seed` from those active in it; 0 = all):
    # the lists' cost - the serving SQL per user, their interest states - stops growing with the
    # number of users, and 2,000 lists a window are plenty for 15-leaf trees
    max_users: int = 2_000
    # events the as-of encoder trains on (whole users, drawn at random with `seed`; 0 = all):
    # it only gives the lists' vector features, so past this its cost stops growing with the
    # log; every item of the log still gets a vector (id + category embedding)
    asof_max_events: int = 1_000_000

    def __post_init__(self) -> None:
        checks = {"num_trees": self.num_trees >= 1, "num_leaves": self.num_leaves >= 2,
                  "learning_rate": self.learning_rate > 0,
                  "min_data_in_leaf": self.min_data_in_leaf >= 1,
                  "label_days": self.label_days > 0, "train_windows": self.train_windows >= 1,
                  "next_item_bonus": 0 <= self.next_item_bonus <= MAX_LABEL // 2,
                  "budget_ms": self.budget_ms > 0, "max_users": self.max_users >= 0,
                  "asof_max_events": self.asof_max_events >= 0}
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError("bad ranker option(s): "
                             + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))


@dataclass
class Lists:
    users: np.ndarray
    items: np.ndarray
    features: np.ndarray
    labels: np.ndarray

    def groups(self) -> np.ndarray:
        _, counts = np.unique(self.users, return_counts=True)
        return counts


def asof_versions(conn: psycopg.Connection, at: datetime,
                  loaded: store.LoadedModel | None = None,
                  job_run_id: int | None = None) -> tuple[int, int]:
    """Interest states (the given or the active model's weights over events before `at`) and
    CF as of `at`, written as 'building' helper versions (drop them with
    registry.drop_versions); returns (interest_version, cf_version)."""
    loaded = loaded or store.load_model(conn)
    log = load_event_log(conn, before=at.timestamp())
    states = user_states_for(loaded.model, loaded.items, loaded.categories, log)
    interest = store.write_version(conn, loaded.model, loaded.items, loaded.categories, states,
                                   {"as_of": at.isoformat(), "purpose": "ranker-lists"}, {},
                                   job_run_id, status="building")
    cf = train_cf(conn, as_of=at, activate=False, job_run_id=job_run_id,
                  status="building")["version_id"]
    conn.commit()
    return interest, cf


def label_users(conn: psycopg.Connection, at: datetime, until: datetime) -> list[int]:
    """Users active in [at, until) who also have history before `at` (sorted user keys)."""
    return [r[0] for r in conn.execute(queries("ranker.sql")["label_users"],
                                       {"at": at, "until": until})]


def sample_users(users: list[int], max_users: int, seed: int, window: int) -> list[int]:
    """At most `max_users` of `users` (0: all), drawn without replacement by a stream of
    (`seed`, `window`): the same inputs give the same sample; the result is sorted."""
    if max_users == 0 or len(users) <= max_users:
        return list(users)
    rng = np.random.default_rng([seed, window])
    chosen = rng.choice(len(users), size=max_users, replace=False)
    return sorted(int(users[i]) for i in chosen)


def build_lists(conn: psycopg.Connection, at: datetime, until: datetime, interest: int,
                cf: int, next_bonus: int = 0, max_users: int | None = None,
                users: list[int] | None = None) -> Lists:
    """Training lists of `users` (default: every label user of the window, the first
    `max_users` of them if given) at cut-off `at`."""
    sql = queries("ranker.sql")
    if users is None:
        users = label_users(conn, at, until)
    if max_users is not None:
        users = users[:max_users]
    rows = conn.execute(sql["lists"], {"users": users, "at": at, "until": until,
                                       "interest": interest, "cf": cf,
                                       "next_bonus": next_bonus}).fetchall()
    feats = np.array([[np.nan if v is None else v for v in r[2]] for r in rows], dtype=np.float64)
    labels = np.clip(np.rint(np.array([r[3] for r in rows], dtype=np.float64)), 0, MAX_LABEL)
    lists = Lists(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                  feats.reshape(len(rows), -1), labels)
    # Lists without any positive teach a ranker nothing.
    has_pos = {u for u, y in zip(lists.users, lists.labels, strict=True) if y > 0}
    keep = np.isin(lists.users, list(has_pos))
    return Lists(lists.users[keep], lists.items[keep], lists.features[keep], lists.labels[keep])


def _concat(parts: list[Lists]) -> Lists:
    """Lists of several cut-offs; each (cut-off, user) stays its own query group."""
    users, offset = [], 0
    for part in parts:  # keep groups apart: the same user at two cut-offs is two lists
        users.append(part.users.astype(np.int64) + offset)
        offset += int(part.users.max(initial=0)) + 1
    return Lists(np.concatenate(users), np.concatenate([p.items for p in parts]),
                 np.concatenate([p.features for p in parts]),
                 np.concatenate([p.labels for p in parts]))


def fit(train: Lists, valid: Lists, config: RankerConfig, num_trees: int, num_leaves: int
        ) -> lgb.Booster:
    params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
              "learning_rate": config.learning_rate, "num_leaves": num_leaves,
              "min_data_in_leaf": config.min_data_in_leaf, "seed": config.seed,
              "num_threads": 2, "verbosity": -1,
              # the same trees from the same lists: LightGBM otherwise picks row- or col-wise
              # histograms by timing them, and the two sum in different orders
              "deterministic": True, "force_row_wise": True,
              "label_gain": list(range(0, MAX_LABEL + 1))}
    dtrain = lgb.Dataset(train.features, train.labels, group=train.groups())
    dvalid = lgb.Dataset(valid.features, valid.labels, group=valid.groups(), reference=dtrain)
    return lgb.train(params, dtrain, num_trees, valid_sets=[dvalid],
                     callbacks=[lgb.early_stopping(20, verbose=False)])


def time_scoring(conn: psycopg.Connection, function: str, features: np.ndarray,
                 repeats: int = 7) -> float:
    """Median milliseconds for the installed SQL scorer to score 200 candidates (one query)."""
    sql = queries("ranker.sql")
    sample = features[np.random.default_rng(0).integers(0, len(features), 200)]
    conn.execute(sql["create_score_sample"])
    conn.execute(sql["clear_score_sample"])
    with conn.cursor() as cur:
        cur.executemany(sql["insert_score_sample"],
                        [([None if np.isnan(v) else float(v) for v in row],) for row in sample])
    timed = pgsql.SQL(sql["time_score_sample"]).format(
        function=pgsql.Identifier(*function.split(".")))
    timings = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        conn.execute(timed).fetchone()
        timings.append((time.perf_counter() - t0) * 1000)
    return float(np.median(timings))


def ndcg_at(lists: Lists, scores: np.ndarray, k: int = 10) -> float:
    """Mean NDCG@k over the lists (gain = label, as LightGBM's lambdarank with linear gains)."""
    out = []
    for user in np.unique(lists.users):
        m = lists.users == user
        y, s = lists.labels[m], scores[m]
        order = np.lexsort((lists.items[m], -s))[:k]
        dcg = (y[order] / np.log2(np.arange(2, len(order) + 2))).sum()
        ideal = np.sort(y)[::-1][:k]
        idcg = (ideal / np.log2(np.arange(2, len(ideal) + 2))).sum()
        out.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(out)) if out else 0.0


def asof_model(conn: psycopg.Connection, before: datetime, config: TrainConfig,
               max_events: int = 0, seed: int = 0) -> store.LoadedModel:
    """An interest encoder trained with `config` on the events before `before` only.

    Training lists need vector scores from a model that has not seen their label windows: the
    active model was trained on those very events, so its scores would leak the answers (on the
    Taobao time split such a ranker learned "trust the vector score, prefer unpopular items" and
    lost to the repeat score alone). Serving is the same situation: the active model never saw
    the events it is asked about.

    `max_events` (0: all): train on whole users drawn at random (`seed`) up to that many
    events; the model still has every item of the log, with its category."""
    log = load_event_log(conn, before=before.timestamp())
    conn.commit()
    if len(log) == 0:
        raise ValueError(f"no events before {before.isoformat()}: train-ranker needs history "
                         "before its first label window (lower train_windows or label_days)")
    sample = sample_events(log, max_events, seed)
    result, _ = fit_on_log(sample, config, catalog=None if sample is log else log)
    return store.LoadedModel(-1, result.model, result.items, result.categories)


def sample_events(log: EventLog, max_events: int, seed: int) -> EventLog:
    """`log` itself if it has at most `max_events` events (or max_events is 0), else the
    events of users drawn in a seeded random order while their total stays within it (at
    least one user)."""
    if max_events == 0 or len(log) <= max_events:
        return log
    counts = np.diff(log.offsets)
    order = np.random.default_rng([seed, len(log)]).permutation(log.n_users)
    total = np.cumsum(counts[order])
    chosen = order[:max(1, int(np.searchsorted(total, max_events, side="right")))]
    keep = np.zeros(log.n_users, dtype=bool)
    keep[chosen] = True
    return log.take(np.repeat(keep, counts))


def train_ranker(conn: psycopg.Connection, config: RankerConfig | None = None, *,
                 end: datetime | None = None, activate: bool = True,
                 tolerance: float = DEFAULT_TOLERANCE, job_run_id: int | None = None,
                 interest: TrainConfig | None = None) -> dict[str, Any]:
    """Train, compile, time and store a ranker version, then promote it with `tolerance`
    (unless activate=False).

    `end`: the time after which nothing is used (default: after the latest event); the label
    windows are the `train_windows + 1` windows of `label_days` before it. Their interest
    features come from an encoder trained (with `interest`, default: the active version's
    settings) on the events before the first window.
    """
    config = config or RankerConfig()
    sql = queries("ranker.sql")
    t0 = time.perf_counter()
    if interest is None:
        if active_version(conn, store.KIND) is None:
            raise ValueError("train-ranker needs an active interest model: "
                             "run train-interest first")
        interest = store.active_config(conn)
    if end is None:
        latest = conn.execute(sql["latest_event"]).fetchone()[0]
        if latest is None:
            raise ValueError("no events")
        end = latest + timedelta(seconds=1)
    window = timedelta(days=config.label_days)
    c_valid = end - window
    c_trains = [end - (n + 2) * window for n in range(config.train_windows)]
    helpers: list[int] = []
    t_interest = time.perf_counter()
    model = asof_model(conn, c_trains[-1], interest, config.asof_max_events, config.seed)
    interest_s = time.perf_counter() - t_interest
    phases = {"helpers_s": 0.0, "lists_s": 0.0}  # summed over the windows
    try:
        lists = {}
        windows = [("valid", c_valid), *((f"train{n}", c) for n, c in enumerate(c_trains))]
        states_version: int | None = None
        for index, (name, at) in enumerate(windows):
            t_window = time.perf_counter()
            users = sample_users(label_users(conn, at, at + window), config.max_users,
                                 config.seed, index)
            states_version, cf = _asof_helpers(conn, at, model, users, states_version,
                                               job_run_id)
            helpers += [v for v in (states_version, cf) if v not in helpers]
            t_lists = time.perf_counter()
            lists[name] = build_lists(conn, at, at + window, states_version, cf,
                                      config.next_item_bonus, users=users)
            phases["helpers_s"] += t_lists - t_window
            phases["lists_s"] += time.perf_counter() - t_lists
            log.info("train-ranker: window %d of %d (%s): %d users, states and CF %.1f s, "
                     "lists %.1f s", index + 1, len(windows), at.isoformat(), len(users),
                     t_lists - t_window, time.perf_counter() - t_lists)
        valid_l = lists.pop("valid")
        train_l = _concat([lists[name] for name in sorted(lists)])
        if len(train_l.labels) == 0 or len(valid_l.labels) == 0:
            raise ValueError("too little recent activity to build ranker training lists")
        baseline = ndcg_at(valid_l, _default_scores(valid_l.features))
        trees, leaves, tradeoffs = config.num_trees, config.num_leaves, []
        t_fit = time.perf_counter()
        while True:
            booster = fit(train_l, valid_l, config, trees, leaves)
            used = booster.best_iteration or booster.num_trees()
            valid_ndcg = ndcg_at(valid_l, booster.predict(valid_l.features, raw_score=True))
            with conn.transaction():
                version = create_version(
                    conn, KIND, {**config.to_params(), "trees": used, "leaves": leaves},
                    job_run_id=job_run_id)
                function = f"recsys.ranker_score_v{version}"
                conn.execute(compile_booster(booster, function))
            ms = time_scoring(conn, function, valid_l.features)
            tradeoffs.append({"trees": used, "leaves": leaves, "score_200_ms": round(ms, 3),
                              "valid_ndcg10": round(valid_ndcg, 4)})
            if ms <= config.budget_ms or (used <= 10 and leaves <= 4):
                break
            conn.commit()
            drop_versions(conn, [version])
            trees, leaves = max(10, used // 2), max(4, leaves // 2 if used <= 20 else leaves)
        metrics = {"valid_ndcg10": valid_ndcg, "default_blend_valid_ndcg10": baseline,
                   "score_200_ms": ms, "budget_ms": config.budget_ms, "tradeoffs": tradeoffs,
                   "train_lists": int(len(np.unique(train_l.users))),
                   "valid_lists": int(len(np.unique(valid_l.users))),
                   "train_rows": len(train_l.labels),
                   "cutoffs": [c.isoformat() for c in sorted([*c_trains, c_valid])],
                   "interest_as_of": c_trains[-1].isoformat(),
                   "interest_train_s": round(interest_s, 1),
                   **{k: round(v, 1) for k, v in phases.items()},
                   "fit_s": round(time.perf_counter() - t_fit, 1)}
        conn.execute(sql["insert_blob"], {"version": version,
                                          "blob": booster.model_to_string().encode()})
        mark_ready(conn, version, metrics)
        conn.commit()
        promotion = promote(conn, version, tolerance) if activate else None
    finally:
        conn.rollback()
        drop_versions(conn, helpers)
    return {**metrics, "version_id": version, "rows_read": len(train_l.labels),
            "activated": bool(promotion and promotion.activated),
            "activation": promotion.reason if promotion else "not requested",
            "seconds": round(time.perf_counter() - t0, 1)}


def _asof_helpers(conn: psycopg.Connection, at: datetime, model: store.LoadedModel,
                  users: list[int], states_version: int | None, job_run_id: int | None
                  ) -> tuple[int, int]:
    """Interest states of `users` as of `at` and CF as of `at`, as 'building' helper versions;
    returns (interest_version, cf_version).

    Every cut-off uses the same encoder, so its item vectors (and their HNSW index) are written
    once: the first call writes a version, later ones upsert their users' states into it.
    `recsys.candidate_features` reads only the listed user's own state, so a state left from an
    earlier cut-off is never read for a later one."""
    log = load_event_log(conn, before=at.timestamp(), users=users)
    states = user_states_for(model.model, model.items, model.categories, log)
    if states_version is None:
        states_version = store.write_version(
            conn, model.model, model.items, model.categories, states,
            {"as_of": at.isoformat(), "purpose": "ranker-lists"}, {}, job_run_id,
            status="building")
    else:
        store.write_states(conn, states_version, states)
    cf = train_cf(conn, as_of=at, activate=False, job_run_id=job_run_id,
                  status="building", items=np.unique(log.item))["version_id"]
    conn.commit()
    return states_version, cf


def _default_scores(features: np.ndarray) -> np.ndarray:
    f = np.nan_to_num(features)
    return 2.0 * f[:, 2] + f[:, 1] + 0.05 * f[:, 0] + 0.02 * f[:, 3] + 0.5 * f[:, 9] \
        + 0.2 * f[:, 8]
