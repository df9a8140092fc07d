"""Python access to the SQL API: typed rows from `recsys.recommend` and friends.

The package re-exports these functions (`from recsys_db import recommend`); the module is
named `api` so that `recsys_db.recommend` is always the function, never a module.

    from recsys_db import recommend
    with session_scope() as session:
        for rec in recommend(session, "user-42", k=10):
            print(rec.rank, rec.item_id, rec.score, rec.reason)

`recommend_items` returns the same ranking with the ORM `Item` of each recommendation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from recsys_db.orm import Item


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    score: float
    rank: int
    reason: str


def recommend(session: Session, user_id: str, k: int = 10, category_id: str | None = None,
              exclude_purchased: bool = True, filter: dict[str, Any] | None = None,  # noqa: A002
              exclude_seen: bool = False) -> list[Recommendation]:
    """`recsys.recommend(...)` as typed rows (best first); `filter`: attribute containment,
    e.g. {"brand": "acme"}."""
    rows = session.execute(
        text("SELECT item_id, score, rank, reason FROM recsys.recommend(:u, :k, :c, :x, "
             "CAST(:f AS jsonb), :s)"),
        {"u": user_id, "k": k, "c": category_id, "x": exclude_purchased,
         "f": None if filter is None else json.dumps(filter), "s": exclude_seen})
    return [Recommendation(*row) for row in rows]


def recommend_items(session: Session, user_id: str, k: int = 10,
                    category_id: str | None = None, exclude_purchased: bool = True,
                    filter: dict[str, Any] | None = None,  # noqa: A002
                    exclude_seen: bool = False) -> list[tuple[Item, Recommendation]]:
    """The same ranking with the ORM Item of each recommended item."""
    recs = recommend(session, user_id, k, category_id, exclude_purchased, filter, exclude_seen)
    items = {item.item_id: item for item in session.scalars(
        select(Item).where(Item.item_id.in_([r.item_id for r in recs])))}
    return [(items[r.item_id], r) for r in recs]


def similar_items(session: Session, item_id: str, k: int = 10) -> list[tuple[str, float, int]]:
    """`recsys.similar_items(...)`: (similar_item_id, score, rank) rows."""
    rows = session.execute(text("SELECT * FROM recsys.similar_items(:i, :k)"),
                           {"i": item_id, "k": k})
    return [tuple(row) for row in rows]


def exclude_item(session: Session, user_id: str, item_id: str,
                 until: datetime | None = None) -> None:
    """`recsys.exclude_item(...)`: never recommend the item to the user (until `until`)."""
    session.execute(text("SELECT recsys.exclude_item(:u, :i, :t)"),
                    {"u": user_id, "i": item_id, "t": until})


def set_item_active(session: Session, item_id: str, active: bool) -> bool:
    """`recsys.set_item_active(...)`: returns the item's previous state."""
    return bool(session.execute(text("SELECT recsys.set_item_active(:i, :a)"),
                                {"i": item_id, "a": active}).scalar_one())
