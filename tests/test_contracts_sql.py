"""The contract every candidate source of recsys.recommend passes: vector (the interest model's
HNSW neighbours and stay part), cf (item neighbours), session (recent items and, as `history`,
the long-memory repeat score) and trending (item statistics).

Each source is read from `recsys.candidate_features(user, T, interest, cf)` - the function
serving ranks - at a cut-off T, with an interest model trained on the events before T and
helper versions built as of T (`ranker.train.asof_versions`), on the planted log of
tests/contracts.py loaded into the database (which also holds its events after T). A source
is ranked by its own score, as the `recsys-db eval` pipeline methods do (`SOURCES`):
* shapes and ids: one row per distinct known item, known source names, a full feature array;
* the known answer (EXPECT): "successor": the chain successor of the user's last item first;
  "history": the user's own chain first, the successor CHAIN-th (the least recent of the last
  lap); "popular": the hot item first for everyone;
* deterministic: the same call twice, and versions rebuilt with the same seed, are equal;
* no future: adding events after T changes nothing at T, before or after rebuilding the
  versions as of T.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from conftest import create_database, drop_database
from contracts import (
    CHAIN,
    GROUPS,
    HOT,
    T0,
    Event,
    event_frame,
    future_events,
    group_of,
    planted_events,
    successor,
)

from recsys_db import db
from recsys_db.evaluation.pipeline import SOURCES
from recsys_db.ingest import load_events
from recsys_db.interest import store
from recsys_db.interest.train import TrainConfig, train
from recsys_db.ranker.train import asof_versions
from recsys_db.sequences import load_event_log

EXPECT = {"vector": "successor", "cf": "successor", "session": "history", "history": "history",
          "trending": "popular"}
SQL_SOURCES = {"vector", "cf", "session", "trending"}
CUTOFF = datetime.fromtimestamp(T0 + 60 * 22, UTC)  # 22 events of each user before it
CONFIG = TrainConfig(dim=16, epochs=12, batch_size=8, max_len=20, window=10, lr=5e-3,
                     patience=12, seed=0, threads=1)


@dataclass
class Served:
    name: str  # the database
    url: str
    model: store.LoadedModel
    interest: int
    cf: int
    user_keys: dict[int, int]  # planted user -> user_key
    item_ids: dict[int, int]  # item_key -> planted item


def _candidates(conn: psycopg.Connection, served: Served, interest: int | None = None,
                cf: int | None = None) -> dict[int, list[tuple]]:
    """planted user -> [(item_key, sources, features)] at the cut-off, ordered by item_key."""
    rows = conn.execute(
        "SELECT u.user_key, f.item_key, f.sources, f.features "
        "FROM unnest(%s::integer[]) AS u(user_key) CROSS JOIN LATERAL "
        "recsys.candidate_features(u.user_key, %s, %s, %s) f ORDER BY 1, 2",
        (list(served.user_keys.values()), CUTOFF, interest or served.interest,
         cf or served.cf)).fetchall()
    user_of = {key: user for user, key in served.user_keys.items()}
    out: dict[int, list[tuple]] = {user: [] for user in served.user_keys}
    for user_key, item_key, sources, features in rows:
        out[user_of[user_key]].append((item_key, tuple(sources), tuple(features)))
    return out


def assert_same(got: dict[int, list[tuple]], want: dict[int, list[tuple]]) -> None:
    """The same candidates, sources and features; features to float rounding (a window sum
    may add its terms in another order from one plan to the next)."""
    assert got.keys() == want.keys()
    for user in want:
        assert [r[:2] for r in got[user]] == [r[:2] for r in want[user]], user
        for g, w in zip(got[user], want[user], strict=True):
            assert [x is None for x in g[2]] == [x is None for x in w[2]], (user, g[0])
            values = [(x, y) for x, y in zip(g[2], w[2], strict=True) if y is not None]
            assert [x for x, _ in values] == pytest.approx([y for _, y in values], rel=1e-12,
                                                           abs=1e-12, nan_ok=True), (user, g[0])


def _build(conn: psycopg.Connection) -> tuple[store.LoadedModel, int, int]:
    log = load_event_log(conn, before=CUTOFF.timestamp())
    result = train(log, CONFIG)
    loaded = store.LoadedModel(-1, result.model, result.items, result.categories)
    interest, cf = asof_versions(conn, CUTOFF, loaded)
    return loaded, interest, cf


@pytest.fixture(scope="module")
def served(server_url: str, template_db: str) -> Iterator[Served]:
    name = f"recsys_contracts_{os.getpid()}"
    url = create_database(server_url, name, template_db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", url)
        load_events(event_frame(planted_events()))
        with psycopg.connect(url) as conn:
            loaded, interest, cf = _build(conn)
            users = dict(conn.execute("SELECT substr(user_id, 2)::integer, user_key "
                                      "FROM recsys.users").fetchall())
            items = dict(conn.execute("SELECT item_key, substr(item_id, 2)::integer "
                                      "FROM recsys.items").fetchall())
    db.dispose_engines()
    yield Served(name, url, loaded, interest, cf, users, items)
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def candidates(served: Served) -> dict[int, list[tuple]]:
    with psycopg.connect(served.url, autocommit=True) as conn:
        return _candidates(conn, served)


@pytest.fixture
def clone(server_url: str, served: Served) -> Iterator[str]:
    """A copy of the served database for a test that writes to it."""
    name = f"recsys_contracts_{os.getpid()}_w"
    url = create_database(server_url, name, served.name)
    yield url
    drop_database(server_url, name)


def _last_items() -> dict[int, int]:
    """planted user -> their last item before the cut-off."""
    return {e.user: e.item for e in planted_events() if e.ts < CUTOFF.timestamp()}


def _ranked(rows: list[tuple], method: str, served: Served) -> list[int]:
    """Planted items of the candidates of `method`'s source, best first by its own score."""
    index, source = SOURCES[method]
    mine = [(r[2][index], served.item_ids[r[0]]) for r in rows
            if source in r[1] and r[2][index] is not None]
    return [item for _, item in sorted(mine, key=lambda x: (-x[0], x[1]))]


def test_every_source_has_a_known_answer(candidates: dict[int, list[tuple]]) -> None:
    assert set(EXPECT) == set(SOURCES)
    assert {source for _, source in SOURCES.values()} == SQL_SOURCES
    seen = {s for rows in candidates.values() for r in rows for s in r[1]}
    assert seen == SQL_SOURCES  # every source the SQL has serves someone here


def test_rows_are_distinct_known_items_with_full_features(
        served: Served, candidates: dict[int, list[tuple]]) -> None:
    with psycopg.connect(served.url) as conn:
        n_features = conn.execute("SELECT cardinality(recsys.ranker_feature_names())"
                                  ).fetchone()[0]
    for rows in candidates.values():
        keys = [r[0] for r in rows]
        assert rows and len(keys) == len(set(keys))
        assert set(keys) <= set(served.item_ids)
        for _, sources, features in rows:
            assert sources and set(sources) <= SQL_SOURCES
            assert len(features) == n_features


@pytest.mark.parametrize("method", sorted(EXPECT))
def test_finds_the_planted_answer(method: str, served: Served,
                                  candidates: dict[int, list[tuple]]) -> None:
    last = _last_items()
    hits = 0
    for user, rows in candidates.items():
        ranked = _ranked(rows, method, served)
        want = successor(last[user])
        if EXPECT[method] == "popular":
            assert ranked[0] == HOT, (method, user, ranked[:5])
            hits += 1
        elif EXPECT[method] == "successor":
            hits += ranked[0] == want
        else:
            own = {(i - 1) // CHAIN for i in ranked[:CHAIN]}
            assert own == {(last[user] - 1) // CHAIN}, (method, user, ranked[:CHAIN + 1])
            hits += ranked[CHAIN - 1] == want
    assert hits >= 0.9 * len(candidates), f"{method}: {hits} of {len(candidates)} users"


def test_deterministic_under_a_seed(served: Served, clone: str,
                                    candidates: dict[int, list[tuple]]) -> None:
    with psycopg.connect(clone) as conn:
        assert_same(_candidates(conn, served), candidates)
        _, interest, cf = _build(conn)  # retrained with the same seed, rebuilt as of T
        assert (interest, cf) != (served.interest, served.cf)
        assert_same(_candidates(conn, served, interest, cf), candidates)


def test_no_future_events_are_used(served: Served, clone: str,
                                   candidates: dict[int, list[tuple]]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", clone)
        # at T, T + 1 min, T + 2 min: every user buys the first item of the next chain
        load_events(event_frame(future_events(planted_events(), int(CUTOFF.timestamp()) - 60)))
    db.dispose_engines()
    with psycopg.connect(clone) as conn:
        assert_same(_candidates(conn, served), candidates)
        interest, cf = asof_versions(conn, CUTOFF, served.model)  # as of T again
        assert_same(_candidates(conn, served, interest, cf), candidates)


def test_an_item_first_seen_after_the_cut_off_is_not_a_candidate_at_it(
        served: Served, clone: str, candidates: dict[int, list[tuple]]) -> None:
    user = 1
    category = group_of(user) + 1
    new_item = HOT + 100  # viewed once, by another user of the same group, after T
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSYS_DATABASE_URL", clone)
        load_events(event_frame([Event(user + GROUPS, new_item, category, 1,
                                       int(CUTOFF.timestamp()) + 5)]))
    db.dispose_engines()
    with psycopg.connect(clone) as conn:
        new_key = conn.execute("SELECT item_key FROM recsys.items WHERE item_id = %s",
                               (f"i{new_item}",)).fetchone()[0]
        after = _candidates(conn, served)
    known = {r[0] for r in candidates[user]}
    extra = [(f"i{new_item}" if r[0] == new_key else r[0], r[1]) for r in after[user]
             if r[0] not in known]
    assert not extra, f"served at T but first seen after T: {extra}"
