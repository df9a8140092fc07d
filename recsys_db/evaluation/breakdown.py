"""Groups of test instances for the breakdown table: by history length and by target kind.

* history length: the number of events the method reads as the instance's history (leave-one-out:
  every event of the user before the target; time split: every event before the cut-off),
  in the buckets of `HISTORY_BUCKETS`;
* target kind: "repeat" when the target (the item, or for target "category" the category) is
  already in that history, else "new".

Each grouping partitions the instances (one per test user).
"""

from __future__ import annotations

import numpy as np

from recsys_db.evaluation.splits import Instances

# (name, smallest, largest history length); None = no upper bound
HISTORY_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<=5", 1, 5), ("6-50", 6, 50), (">50", 51, None))


def groups(instances: Instances, target: str) -> list[tuple[str, str, np.ndarray]]:
    """(grouping, group, boolean mask over the instances) for every group, groupings in order
    "history_length" then "target_kind"."""
    length = instances.history_lengths()
    out = []
    for name, low, high in HISTORY_BUCKETS:
        inside = length >= low
        if high is not None:
            inside &= length <= high
        out.append(("history_length", name, inside))
    repeat = target_in_history(instances, target)
    out += [("target_kind", "repeat", repeat), ("target_kind", "new", ~repeat)]
    return out


def target_in_history(instances: Instances, target: str) -> np.ndarray:
    """Per instance: is its target item (category) among its history's items (categories)?"""
    if target == "item":
        history, wanted = instances.hist_item, instances.target_item
    else:
        history, wanted = instances.hist_category, instances.target_category
    lengths = instances.history_lengths()
    owner = np.repeat(np.arange(len(instances)), lengths)
    match = history == np.repeat(wanted, lengths)
    return np.bincount(owner[match], minlength=len(instances)) > 0
