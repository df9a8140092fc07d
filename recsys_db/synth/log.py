"""The synthetic events as an in-memory `EventLog`, without a CSV file or a database: what
training benchmarks and tests read when they only need the sequences."""

from __future__ import annotations

import numpy as np

from recsys_db.sequences import EventLog, from_arrays
from recsys_db.synth.events import iter_blocks
from recsys_db.synth.params import BEHAVIORS
from recsys_db.synth.spec import SyntheticSpec

# recsys.behaviors' keys (migrations: pv 1, fav 2, cart 3, buy 4) in BEHAVIORS order
_BEHAVIOR_KEY = {"pv": 1, "fav": 2, "cart": 3, "buy": 4}
BEHAVIOR_KEYS = np.array([_BEHAVIOR_KEY[b] for b in BEHAVIORS], dtype=np.int8)


def event_log(spec: SyntheticSpec) -> EventLog:
    """Every event of `spec`, sorted by (user, time), behaviors as the database keys them;
    user, item and category keys are the generator's ids."""
    blocks = list(iter_blocks(spec))

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in blocks])

    return from_arrays(column("user_id"), column("item_id"), column("category_id"),
                       BEHAVIOR_KEYS[column("behavior")], column("ts"), sort=True)
