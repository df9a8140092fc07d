"""The synthetic events as an in-memory `EventLog`, without a CSV file or a database: what
training benchmarks and tests read when they only need the sequences."""

from __future__ import annotations

import numpy as np

from recsys_db.sequences import BEHAVIOR_KEYS, EventLog, from_arrays
from recsys_db.synth.events import iter_blocks
from recsys_db.synth.params import BEHAVIORS
from recsys_db.synth.spec import SyntheticSpec

_KEY_OF = np.array([BEHAVIOR_KEYS[b] for b in BEHAVIORS], dtype=np.int8)  # by BEHAVIORS index


def event_log(spec: SyntheticSpec) -> EventLog:
    """Every event of `spec`, sorted by (user, time), behaviors as the database keys them;
    user, item and category keys are the generator's ids."""
    blocks = list(iter_blocks(spec))

    def column(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in blocks])

    return from_arrays(column("user_id"), column("item_id"), column("category_id"),
                       _KEY_OF[column("behavior")], column("ts"), sort=True)
