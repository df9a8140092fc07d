"""The planted log of the contract tests (tests/test_contracts_*.py): small, with known answers.

Items come in `GROUPS` chains of `CHAIN` items; chain g holds item keys g * CHAIN + 1 ..
g * CHAIN + CHAIN, all in category g + 1. A user of group g first views the hot item `HOT`
(category GROUPS + 1) `HOT_VIEWS` times, then walks chain g round and round from a phase of its
own, one event a minute. Hence the known answers:

* the next item of a user is the chain successor of their last item (`successor`): a method
  that reads the user's history must rank it near the top;
* `HOT` is the most viewed item overall and over the last day: a method that ranks by
  popularity must put it first, for every user alike;
* the next category is the user's group category.

`FUTURE_*`: events after every event of the log, to check that nothing looks past a cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_db.sequences import EventLog, from_arrays

GROUPS = 6
CHAIN = 4
HOT = GROUPS * CHAIN + 1
HOT_CATEGORY = GROUPS + 1
HOT_VIEWS = 3
USERS_PER_GROUP = 8
T0 = 1_700_000_000
STEP_S = 60
PV, FAV, CART, BUY = 1, 2, 3, 4


@dataclass(frozen=True)
class Event:
    user: int
    item: int
    category: int
    behavior: int
    ts: int


def group_of(user: int) -> int:
    return (user - 1) % GROUPS


def chain(group: int) -> list[int]:
    return [group * CHAIN + j + 1 for j in range(CHAIN)]


def category_of(item: int) -> int:
    return HOT_CATEGORY if item == HOT else (item - 1) // CHAIN + 1


def successor(item: int) -> int:
    """The next item of the chain that holds `item`."""
    group, j = divmod(item - 1, CHAIN)
    return group * CHAIN + (j + 1) % CHAIN + 1


def planted_events(users_per_group: int = USERS_PER_GROUP, cycles: int = 6) -> list[Event]:
    """Every user's events, in time order (users 1..GROUPS * users_per_group)."""
    events = []
    for user in range(1, GROUPS * users_per_group + 1):
        group = group_of(user)
        phase = (user - 1) // GROUPS % CHAIN
        length = cycles * CHAIN + (user - 1) % 3  # users end at different chain positions
        items = [HOT] * HOT_VIEWS + [chain(group)[(phase + i) % CHAIN] for i in range(length)]
        base = T0 + user  # users interleave in time, a second apart
        for i, item in enumerate(items):
            events.append(Event(user, item, category_of(item), PV, base + STEP_S * i))
    return events


def future_events(events: list[Event], after_ts: int, n: int = 3) -> list[Event]:
    """`n` more events per user, all after `after_ts`, that break the pattern: each user views
    the first item of the NEXT group's chain (and buys it), so a method that reads them would
    change its scores."""
    out = []
    for user in sorted({e.user for e in events}):
        item = chain((group_of(user) + 1) % GROUPS)[0]
        for i in range(n):
            out.append(Event(user, item, category_of(item), BUY, after_ts + 60 + STEP_S * i))
    return out


def event_log(events: list[Event]) -> EventLog:
    cols = {name: np.array([getattr(e, name) for e in events], dtype=np.int64)
            for name in ("user", "item", "category", "behavior", "ts")}
    return from_arrays(cols["user"], cols["item"], cols["category"], cols["behavior"],
                       cols["ts"], sort=True)


def event_frame(events: list[Event]) -> pd.DataFrame:
    """The events as the Taobao layout `load_events` takes (ids as text: u1, i1, c1)."""
    names = {PV: "pv", FAV: "fav", CART: "cart", BUY: "buy"}
    return pd.DataFrame({
        "user_id": [f"u{e.user}" for e in events],
        "item_id": [f"i{e.item}" for e in events],
        "category_id": [f"c{e.category}" for e in events],
        "behavior": [names[e.behavior] for e in events],
        "ts": [e.ts for e in events],
    })
