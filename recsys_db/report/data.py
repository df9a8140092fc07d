"""What the report shows, read from the database (SQL in `sql/report.sql`) and the bench folder.

Each function returns plain data (dataclasses of lists, numpy arrays, dicts) and copes with an
empty or partial database: no events, no models, no transitions give empty data, never errors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import dict_row

from recsys_db.sqlfiles import queries

WINDOW_DAYS = 90  # days charted at most, up to the latest event
SPARSE_SHARE = 0.01  # days with fewer events than this share of the peak day at the edges
USER_DAYS = 30  # active days charted per user at most
USER_CATEGORIES = 6  # a user's top categories charted; the rest is "other"
PREDICTED_EXTRA = 2  # plus the model's top predicted categories not among them
OTHER = "other"
NO_CATEGORY = "(no category)"


def _sql() -> dict[str, str]:
    return queries("report.sql")


def _rows(conn: psycopg.Connection, name: str, **params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_sql()[name], params).fetchall()


@dataclass
class DataHealth:
    totals: dict[str, Any]
    behaviors: list[tuple[str, int]]  # every behavior type, with its event count
    days: list[date] = field(default_factory=list)  # charted days, contiguous
    daily: dict[str, list[int]] = field(default_factory=dict)  # behavior -> events per day
    active_users: list[int] = field(default_factory=list)
    active_items: list[int] = field(default_factory=list)
    not_charted: int = 0  # events outside the charted days
    rejected: list[dict[str, Any]] = field(default_factory=list)  # reason, n, latest


def data_health(conn: psycopg.Connection, rejected_reasons: int = 10) -> DataHealth:
    totals = _rows(conn, "totals")[0]
    behaviors = [(r["name"], int(r["n"])) for r in _rows(conn, "events_by_behavior")]
    out = DataHealth(totals, behaviors,
                     rejected=_rows(conn, "rejected_by_reason", limit=rejected_reasons))
    if totals["last_event"] is None:
        return out
    since = totals["last_event"] - timedelta(days=WINDOW_DAYS)
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    for r in _rows(conn, "daily_events", since=since):
        per_day[r["day"]][r["name"]] = int(r["n"])
    first, last = charted_range({d: sum(v.values()) for d, v in per_day.items()})
    out.days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    names = [name for name, _ in behaviors]
    out.daily = {name: [per_day.get(d, {}).get(name, 0) for d in out.days] for name in names}
    active = {r["day"]: r for r in _rows(conn, "daily_active", since=since)}
    out.active_users = [int(active[d]["users"]) if d in active else 0 for d in out.days]
    out.active_items = [int(active[d]["items"]) if d in active else 0 for d in out.days]
    out.not_charted = int(totals["events"]) - sum(sum(v) for v in out.daily.values())
    return out


def charted_range(counts: dict[date, int]) -> tuple[date, date]:
    """First and last day with at least SPARSE_SHARE of the peak day's events: a few stray
    events months away from the bulk of the log would otherwise squash the chart."""
    peak = max(counts.values())
    dense = sorted(d for d, n in counts.items() if n >= SPARSE_SHARE * peak)
    return dense[0], dense[-1]


@dataclass
class InterestHistory:
    version_id: int
    created_at: datetime
    history: list[dict[str, float]]
    best_epoch: int | None


@dataclass
class EvalRun:
    run_id: int
    finished_at: datetime
    split: str
    k: int
    description: str | None
    results: list[dict[str, Any]]


@dataclass
class ModelQuality:
    interest: InterestHistory | None
    eval: EvalRun | None
    versions: list[dict[str, Any]]  # newest first: version_id, kind, status, active, ...


def model_quality(conn: psycopg.Connection, versions: int = 50) -> ModelQuality:
    interest = None
    for r in _rows(conn, "active_interest"):
        metrics = r["metrics"] or {}
        best = metrics.get("best_epoch")
        interest = InterestHistory(r["version_id"], r["created_at"],
                                   list(metrics.get("history") or []),
                                   int(best) if isinstance(best, int | float) else None)
    run = None
    for r in _rows(conn, "latest_eval"):
        m = r["metrics"] or {}
        description = m.get("description")
        run = EvalRun(r["run_id"], r["finished_at"], str(m.get("split", "?")),
                      int(m.get("k", 10)), None if description is None else str(description),
                      [x for x in m.get("results") or [] if isinstance(x, dict)])
    return ModelQuality(interest, run, _rows(conn, "versions", limit=versions))


@dataclass
class Transitions:
    sources: list[str]  # heatmap rows: category_id
    source_totals: list[int]  # transitions out of each source
    stay: list[float]  # probability that the next event stays in the source category
    targets: list[str]  # heatmap columns: category_id
    probability: np.ndarray  # (sources, targets): P(next category = target | source)
    moves: list[dict[str, Any]]  # the most frequent cross-category moves
    refreshed_at: datetime | None


def transitions(conn: psycopg.Connection, sources: int = 15, targets: int = 15,
                moves: int = 10) -> Transitions:
    grid = _rows(conn, "transition_grid", sources=sources, targets=targets)
    rows = list(dict.fromkeys(r["from_id"] for r in grid))
    cols = list(dict.fromkeys(r["to_id"] for r in grid))
    prob = np.zeros((len(rows), len(cols)))
    first = {}
    for r in grid:
        prob[rows.index(r["from_id"]), cols.index(r["to_id"])] = r["probability"]
        first.setdefault(r["from_id"], r)
    refreshed = conn.execute(_sql()["transitions_refreshed_at"]).fetchone()
    return Transitions(rows, [int(first[s]["from_total"]) for s in rows],
                       [float(first[s]["stay"]) for s in rows], cols, prob,
                       _rows(conn, "top_moves", limit=moves),
                       _timestamp(refreshed[0]) if refreshed else None)


def _timestamp(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def resolve_users(conn: psycopg.Connection, users: list[str] | None, default: int = 3
                  ) -> list[str]:
    """`users` checked to exist (ValueError naming the unknown ones), or the most active."""
    if users is None:
        return [r["user_id"] for r in _rows(conn, "most_active_users", limit=default)]
    users = list(dict.fromkeys(users))
    known = {r["user_id"] for r in _rows(conn, "known_users", user_ids=users)}
    unknown = [u for u in users if u not in known]
    if unknown:
        raise ValueError(f"unknown user(s) {', '.join(repr(u) for u in unknown)}: "
                         "not in recsys.users")
    return users


@dataclass
class UserTimeline:
    user_id: str
    events: int
    days: list[date]  # the user's active days (at most USER_DAYS, the latest)
    categories: list[str]  # the user's top categories, top predicted ones, then OTHER
    shares: np.ndarray  # (days, categories): share of the day's behavior-weighted events
    predicted: np.ndarray | None  # (categories,): predicted next-category shares
    predicted_top: list[tuple[str, float]]  # as the model lists them
    predicted_only: list[str]  # categories charted because the model predicts them
    drift: float | None
    gaining: list[str]
    losing: list[str]


def user_timeline(conn: psycopg.Connection, user_id: str) -> UserTimeline:
    rows = _rows(conn, "user_daily_categories", user_id=user_id)
    weight: dict[str, float] = defaultdict(float)
    for r in rows:
        weight[r["category_id"] or NO_CATEGORY] += r["weight"]
    predicted_top = [(r["category_id"], r["prob"])
                     for r in _rows(conn, "user_prediction", user_id=user_id)]
    top = sorted(weight, key=lambda c: (-weight[c], c))[:USER_CATEGORIES]
    # The model's favourites get a colour of their own even when they are new to the user.
    new = [c for c, _ in predicted_top if c not in top][:PREDICTED_EXTRA]
    top += new
    days = sorted({r["day"] for r in rows})[-USER_DAYS:]
    columns = [*top, OTHER]
    shares = np.zeros((len(days), len(columns)))
    for r in rows:
        if r["day"] in days:
            c = r["category_id"] or NO_CATEGORY
            shares[days.index(r["day"]), columns.index(c) if c in top else -1] += r["weight"]
    shares /= np.maximum(shares.sum(axis=1, keepdims=True), 1e-12)
    predicted = None
    if predicted_top:
        predicted = np.zeros(len(columns))
        for category, p in predicted_top:
            if category in top:
                predicted[columns.index(category)] += p
        predicted[-1] = max(0.0, 1.0 - predicted[:-1].sum())
    drift = _rows(conn, "user_drift", user_id=user_id)
    d = drift[0] if drift else {"drift": None, "gaining": [], "losing": []}
    return UserTimeline(user_id, sum(int(r["n"]) for r in rows), days, columns, shares,
                        predicted, predicted_top, new, d["drift"], list(d["gaining"] or []),
                        list(d["losing"] or []))


def active_versions(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return _rows(conn, "active_versions")


@dataclass
class Bench:
    path: Path
    figures: dict[str, Any] | None  # None when the file is missing or unreadable
    error: str | None = None


def read_bench(bench_dir: Path) -> Bench:
    """The last `bench/recommend.py` result, `<bench_dir>/recommend.json`, if there is one."""
    path = bench_dir / "recommend.json"
    try:
        figures = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Bench(path, None)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Bench(path, None, f"{type(exc).__name__}: {exc}")
    if not isinstance(figures, dict):
        return Bench(path, None, "expected a JSON object")
    return Bench(path, figures)
