"""Item-item CF (recsys_db/cf.py): its formula checked against scores worked out by hand.

The log (items A..G, behaviour weights pv 1, fav 2, cart 3, buy 4, half-life 1 day, window 2,
as of T0 + 2 days; decay of an event = 0.5 ** (age in days)):

    user 1: A pv  T0        (strength 1, decay 0.25)
            B buy T0 + 1 d  (strength 4, decay 0.5)
            A cart T0 + 2 d (strength 3, decay 1)
    user 2: B pv, C fav     at T0 + 2 d (decay 1)
    user 3: D, E, F, G pv   at T0 + 2 d (decay 1)

Occurrences P: A = 1 * 0.25 + 3 * 1 = 3.25, B = 4 * 0.5 + 1 = 3, C = 2, D..G = 1.
Pairs (weight sqrt(s_a * s_b) / gap * decay of the later event, never across users, self-pairs
left out, gaps up to the window):
    A-B: gap 1 (A, B): sqrt(1 * 4) / 1 * 0.5 = 1;  gap 1 (B, A): sqrt(4 * 3) * 1 = sqrt(12)
         gap 2 (A, A) is a self-pair: left out
    B-C: sqrt(1 * 2) = sqrt(2)             (user 1's last A and user 2's B are not a pair)
    D-E, E-F, F-G: 1;  D-F, E-G: 1 / 2;   D-G: gap 3 > window, no pair
sim(a, b) = C[a, b] / sqrt(P[a] * P[b]).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from recsys_db.cf import CFConfig, similarity, top_neighbors, train_cf
from recsys_db.sequences import from_arrays

T0 = 1_700_000_000
DAY = 86_400
A, B, C, D, E, F, G = range(1, 8)
PV, FAV, CART, BUY = 1, 2, 3, 4
WEIGHTS = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # indexed by behavior_key
CONFIG = CFConfig(window=2, half_life_days=1.0, top_n=10)
AS_OF = T0 + 2 * DAY
EVENTS = [  # user, item, behavior, ts
    (1, A, PV, T0), (1, B, BUY, T0 + DAY), (1, A, CART, T0 + 2 * DAY),
    (2, B, PV, T0 + 2 * DAY), (2, C, FAV, T0 + 2 * DAY),
    (3, D, PV, T0 + 2 * DAY), (3, E, PV, T0 + 2 * DAY), (3, F, PV, T0 + 2 * DAY),
    (3, G, PV, T0 + 2 * DAY),
]
EXPECTED = {  # unordered pair -> similarity, by hand (see the module docstring)
    (A, B): (1 + math.sqrt(12)) / math.sqrt(3.25 * 3),
    (B, C): math.sqrt(2) / math.sqrt(3 * 2),
    (D, E): 1.0, (E, F): 1.0, (F, G): 1.0, (D, F): 0.5, (E, G): 0.5,
}


def _log():
    user, item, behavior, ts = (np.array(col) for col in zip(*EVENTS, strict=True))
    return from_arrays(user, item, np.ones(len(item)), behavior, ts, sort=True)


def _expected_matrix() -> np.ndarray:
    dense = np.zeros((8, 8))
    for (a, b), value in EXPECTED.items():
        dense[a, b] = dense[b, a] = value
    return dense[1:, 1:]


def test_similarity_equals_the_hand_computed_formula() -> None:
    sim, keys = similarity(_log(), WEIGHTS, CONFIG, as_of=AS_OF)
    assert keys.tolist() == [A, B, C, D, E, F, G]
    np.testing.assert_allclose(sim.toarray(), _expected_matrix(), rtol=1e-12, atol=1e-15)
    # as_of defaults to the last event: the same log, the same ages here
    np.testing.assert_allclose(similarity(_log(), WEIGHTS, CONFIG)[0].toarray(),
                               _expected_matrix(), rtol=1e-12)


def test_window_half_life_and_behaviour_weights_move_the_scores_as_the_formula_says() -> None:
    wide = similarity(_log(), WEIGHTS, CFConfig(window=3, half_life_days=1.0), as_of=AS_OF)[0]
    assert wide[D - 1, G - 1] == pytest.approx(1 / 3)  # gap 3 now inside the window
    later = similarity(_log(), WEIGHTS, CONFIG, as_of=AS_OF + DAY)[0]  # every decay halves
    p_a, p_b = 3.25 / 2, 3 / 2
    assert later[A - 1, B - 1] == pytest.approx((1 + math.sqrt(12)) / 2 / math.sqrt(p_a * p_b))
    flat = similarity(_log(), np.array([0.0, 1, 1, 1, 1]), CONFIG, as_of=AS_OF)[0]
    assert flat[A - 1, B - 1] == pytest.approx((0.5 + 1) / math.sqrt(1.25 * 1.5))


def test_rows_of_some_items_are_those_rows_of_the_whole_matrix() -> None:
    whole, keys = similarity(_log(), WEIGHTS, CONFIG, as_of=AS_OF)
    some, same_keys = similarity(_log(), WEIGHTS, CONFIG, as_of=AS_OF, rows_of=np.array([B, F]))
    np.testing.assert_array_equal(keys, same_keys)
    wanted = np.isin(keys, [B, F])
    assert (whole[wanted] != some[wanted]).nnz == 0  # bit for bit
    assert some[~wanted].nnz == 0 and whole[wanted].nnz > 0


def test_top_neighbors_keeps_the_best_per_item_in_order() -> None:
    sim, keys = similarity(_log(), WEIGHTS, CONFIG, as_of=AS_OF)
    nb = top_neighbors(sim, keys, top_n=1)
    best = dict(zip(nb.item.tolist(), nb.neighbor.tolist(), strict=True))
    assert best == {A: B, B: A, C: B, D: E, E: D, F: E, G: F}  # E-F ties D-E: lower key first
    nb = top_neighbors(sim, keys, top_n=10)
    got = {(int(a), int(b)): float(s) for a, b, s in zip(nb.item, nb.neighbor, nb.score,
                                                         strict=True)}
    want = {**EXPECTED, **{(b, a): v for (a, b), v in EXPECTED.items()}}
    assert got.keys() == want.keys()  # no self-pairs, no zero pairs
    assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)
    for item in set(nb.item.tolist()):
        scores = nb.score[nb.item == item]
        assert np.all(np.diff(scores) <= 0)


def test_train_cf_stores_the_hand_computed_neighbours(conn: psycopg.Connection) -> None:
    """Through the database: behaviour weights from recsys.behavior_types, events before as_of
    only (an event after it must not count), scores stored per (item, neighbour)."""
    names = {PV: "pv", FAV: "fav", CART: "cart", BUY: "buy"}
    for user, item, behavior, ts in [*EVENTS, (1, C, BUY, AS_OF + 60)]:  # the last: future
        conn.execute("SELECT recsys.track_event(%s, %s, %s, %s, 'c1')",
                     (f"u{user}", f"i{item}", names[behavior], datetime.fromtimestamp(ts, UTC)))
    as_of = datetime.fromtimestamp(AS_OF, UTC) + timedelta(seconds=1)  # events at AS_OF count
    result = train_cf(conn, CONFIG, as_of=as_of, activate=False)
    rows = conn.execute(
        "SELECT a.item_id, b.item_id, n.score FROM recsys.item_neighbors n "
        "JOIN recsys.items a ON a.item_key = n.item_key "
        "JOIN recsys.items b ON b.item_key = n.neighbor_key WHERE n.version_id = %s",
        (result["version_id"],)).fetchall()
    got = {(int(a[1:]), int(b[1:])): score for a, b, score in rows}
    want = {**EXPECTED, **{(b, a): v for (a, b), v in EXPECTED.items()}}
    assert got.keys() == want.keys()
    for pair, value in want.items():  # 1 s of extra age: decay 0.5 ** (1 / 86400) per event
        assert got[pair] == pytest.approx(value, rel=1e-4), pair
    # the planner knows the new version before anything plans with it (sql/cf.sql analyze)
    analyzed = dict(conn.execute("SELECT relname, last_analyze IS NOT NULL FROM "
                                 "pg_stat_user_tables WHERE schemaname = 'recsys' AND relname "
                                 "IN ('item_neighbors', 'item_stats')").fetchall())
    assert analyzed == {"item_neighbors": True, "item_stats": True}
