"""Read an event CSV (Taobao UserBehavior layout) straight into an EventLog, without a database.

Columns ``user_id,item_id,category_id,behavior,ts`` (a header line is optional). Ids may be any
strings; each id column is mapped to dense positive int keys in order of first appearance
(category: empty -> 0 = unknown). Behaviors: pv=1, fav=2, cart=3, buy=4.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from recsys_db.sequences import BEHAVIOR_KEYS, EventLog, from_arrays

COLUMNS = ["user_id", "item_id", "category_id", "behavior", "ts"]


def read_events_csv(path: str | os.PathLike[str]) -> EventLog:
    """An EventLog of the file's events, sorted by (user, ts, file order)."""
    frame = pd.read_csv(path, header=None, names=COLUMNS, dtype=str, keep_default_na=False)
    if len(frame) and frame.iloc[0].tolist() == COLUMNS:
        frame = frame.iloc[1:]
    return events_from_frame(frame)


def events_from_frame(frame: pd.DataFrame) -> EventLog:
    """An EventLog from a DataFrame with the columns of `COLUMNS`."""
    user = pd.factorize(frame["user_id"])[0] + 1
    item = pd.factorize(frame["item_id"])[0] + 1
    category = pd.factorize(frame["category_id"].replace("", None))[0] + 1  # NaN -> -1 + 1 = 0
    behavior = frame["behavior"].map(BEHAVIOR_KEYS)
    if behavior.isna().any():
        bad = sorted(set(frame["behavior"][behavior.isna()]))[:5]
        raise ValueError(f"unknown behavior(s) {bad} (known: {sorted(BEHAVIOR_KEYS)})")
    ts = pd.to_numeric(frame["ts"]).to_numpy(np.int64)
    return from_arrays(user, item, category, behavior.to_numpy(np.int8), ts, sort=True)
