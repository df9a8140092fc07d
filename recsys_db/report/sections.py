"""The four sections of the report: each reads (`data`), draws (`charts`) and lays out (`html`),
and says what to run when it has nothing to show yet."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from recsys_db.report import charts, data
from recsys_db.report import html as h

SECTIONS = {"data-health": "Data health", "model-quality": "Model quality",
            "interest-migration": "Interest migration", "serving": "Serving"}
# Validation metrics plotted per model kind (first: the key metric of the versions table).
VERSION_METRICS = {"interest": ("valid_score", "valid_ndcg10", "valid_ndcg10_category"),
                   "ranker": ("valid_ndcg10", "default_blend_valid_ndcg10"),
                   "cf": ("neighbors",)}
PLOTTED_KINDS = ("interest", "ranker")
BENCH_TARGETS = {"p50_ms": 10.0, "p99_ms": 30.0, "qps_2": 150.0}


def _section(id_: str, parts: list[Any]) -> h.Html:
    return h.section(id_, SECTIONS[id_], parts)


@dataclass
class _Health:
    totals: dict[str, Any]
    markup: h.Html


def data_health(conn: psycopg.Connection) -> _Health:
    d = data.data_health(conn)
    t = d.totals
    parts: list[Any] = []
    if not t["events"]:
        parts.append(h.empty(h.inline("nothing yet: no events - load some with ",
                                      h.code("recsys-db ingest FILE"), ".")))
    else:
        parts.append(h.table(["", "total"], [
            ["events", t["events"]], ["users", t["users"]], ["items", t["items"]],
            ["categories", t["categories"]], ["first event", t["first_event"]],
            ["last event", t["last_event"]], ["rejected events", t["rejected"]]]))
        parts.append(h.table(["behavior", "events", "share"], [
            [name, n, f"{n / t['events']:.1%}"] for name, n in d.behaviors]))
        parts.append(h.image(charts.daily_events(d.days, d.daily), "events per day by behavior"))
        parts.append(h.image(charts.daily_active(d.days, d.active_users, d.active_items),
                             "active users and items per day"))
        per_day = [sum(v) for v in zip(*d.daily.values(), strict=True)]
        note = (f"Charted: {d.days[0]} to {d.days[-1]} ({len(d.days)} days), "
                f"{min(per_day):,} to {max(per_day):,} events per day.")
        if d.not_charted:
            note += (f" {d.not_charted:,} event(s) on sparse days outside this range "
                     "are counted in the totals only.")
        parts.append(h.paragraph(note, "note"))
    parts.append(h.tag("h3", "Rejected events"))
    if not d.rejected:
        parts.append(h.paragraph("No rejected events (loads with --on-error quarantine keep "
                                 "bad rows in recsys.rejected_events).", "note"))
    else:
        parts.append(h.paragraph(f"{t['rejected']:,} rejected event(s) in "
                                 "recsys.rejected_events, by reason:"))
        parts.append(h.table(["reason", "rows", "latest"],
                             [[r["reason"], r["n"], r["latest"]] for r in d.rejected]))
    return _Health(t, _section("data-health", parts))


def model_quality(conn: psycopg.Connection) -> h.Html:
    q = data.model_quality(conn)
    parts: list[Any] = [h.tag("h3", "Training of the active interest model")]
    if q.interest is None:
        parts.append(h.empty(h.inline("nothing yet: no active interest model - run ",
                                      h.code("recsys-db jobs run train-interest"), ".")))
    elif not q.interest.history:
        parts.append(h.empty(f"interest version {q.interest.version_id} recorded no "
                             "per-epoch history."))
    else:
        i = q.interest
        parts.append(h.image(charts.training_curves(i.history, i.best_epoch),
                             f"training curves of interest version {i.version_id}"))
        parts.append(h.paragraph(f"Version {i.version_id}, trained {h.fmt(i.created_at)}: "
                                 f"{len(i.history)} epoch(s), best epoch {h.fmt(i.best_epoch)}.",
                                 "note"))
    parts.append(h.tag("h3", "Latest offline evaluation"))
    parts.extend(_eval_parts(q.eval))
    parts.append(h.tag("h3", "Model versions"))
    parts.extend(_version_parts(q.versions))
    return _section("model-quality", parts)


def _eval_parts(run: data.EvalRun | None) -> list[Any]:
    if run is None:
        return [h.empty(h.inline("no eval run recorded - run ", h.code("recsys-db eval"), "."))]
    k = run.k
    metrics = [f"HR@{k}", f"NDCG@{k}", f"MRR@{k}"]
    parts: list[Any] = [h.paragraph(
        f"Run {run.run_id}, finished {h.fmt(run.finished_at)}, split {run.split}"
        + (f": {run.description}" if run.description else "")
        + ". Every method trained on the training part only; each target ranked against the "
        "whole catalog.", "note")]
    if not run.results:
        return [*parts, h.empty("the run recorded no results.")]
    parts.append(h.table(["method", "target", *metrics, "instances"],
                         [[r.get("method"), r.get("target"), *(r.get(m) for m in metrics),
                           r.get("instances")] for r in run.results]))
    parts.append(h.image(charts.eval_bars(run.results, f"NDCG@{k}"), f"NDCG@{k} per method"))
    return parts


def _version_parts(versions: list[dict[str, Any]]) -> list[Any]:
    if not versions:
        return [h.empty(h.inline("nothing yet: no model versions - run ",
                                 h.code("recsys-db jobs run train-interest"), "."))]
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for v in sorted(versions, key=lambda v: v["version_id"]):
        if v["kind"] not in PLOTTED_KINDS or v["status"] in ("building", "failed"):
            continue
        for name in VERSION_METRICS[v["kind"]]:
            value = v["metrics"].get(name)
            if isinstance(value, int | float):
                series.setdefault(v["kind"], {}).setdefault(name, []).append(
                    (v["version_id"], float(value)))
    active = {v["kind"]: v["version_id"] for v in versions if v["active"]}
    parts: list[Any] = []
    if series:
        parts.append(h.image(charts.version_metrics(series, active),
                             "validation metrics across model versions"))
    rows, classes = [], []
    for v in versions:
        rows.append([v["version_id"], v["kind"], v["status"], v["created_at"], v["active"],
                     _key_metric(v["kind"], v["metrics"])])
        classes.append("active" if v["active"] else None)
    parts.append(h.table(["version", "kind", "status", "created", "active", "key metric"],
                         rows, classes))
    return parts


def _key_metric(kind: str, metrics: dict[str, Any]) -> str:
    for name in VERSION_METRICS.get(kind, ()):
        if name in metrics:
            return f"{name} = {h.fmt(metrics[name])}"
    return "—"


def interest_migration(conn: psycopg.Connection, users: list[str], has_events: bool,
                        step: Callable[[], None]) -> h.Html:
    t = data.transitions(conn)
    parts: list[Any] = [h.tag("h3", "Category transitions")]
    if not t.sources:
        parts.append(h.empty(
            h.inline("nothing yet: no events - load some with ",
                     h.code("recsys-db ingest FILE"), ".") if not has_events else
            h.inline("nothing yet: category transitions are not computed - run ",
                     h.code("recsys-db jobs run refresh-transitions"), ".")
            if t.refreshed_at is None else
            h.inline(f"no moves between categories as of {h.fmt(t.refreshed_at)} (run ",
                     h.code("recsys-db jobs run refresh-transitions"), " after new events).")))
    else:
        parts.append(h.image(charts.transition_heatmap(t.sources, t.source_totals, t.stay,
                                                       t.targets, t.probability),
                             "category transition heatmap"))
        parts.append(h.paragraph(
            f"Rows: the {len(t.sources)} categories with the most transitions out of them "
            "(consecutive events of a user); columns: the categories they move to most. "
            f"Refreshed {h.fmt(t.refreshed_at)}.", "note"))
        parts.append(h.paragraph("Most frequent moves between different categories:"))
        parts.append(h.table(["from", "to", "transitions", "P(to | from)"],
                             [[m["from_id"], m["to_id"], m["n"], f"{m['probability']:.1%}"]
                              for m in t.moves]))
    step()
    parts.append(h.tag("h3", "Users' interests over time"))
    if not users:
        parts.append(h.empty("no users chosen." if has_events else h.inline(
            "nothing yet: no users with events - load some with ",
            h.code("recsys-db ingest FILE"), ".")))
    for user in users:
        parts.extend(_user_parts(data.user_timeline(conn, user)))
        step()
    return _section("interest-migration", parts)


def _user_parts(u: data.UserTimeline) -> list[Any]:
    parts: list[Any] = [h.tag("h4", f"User {u.user_id}")]
    if not u.days:
        return [*parts, h.empty(f"user {u.user_id} has no events yet.")]
    labels = [f"{c} (pred.)" if c in u.predicted_only else c for c in u.categories]
    parts.append(h.image(charts.user_shares(u.user_id, u.days, labels, u.shares, u.predicted),
                         f"category shares of user {u.user_id}"))
    lines = [f"{u.events:,} events on {len(u.days)} charted active day(s); the colours are the "
             f"user's top categories and the model's top predicted ones (\"pred.\" in the "
             "legend when new to the top), grey is every other category."]
    if u.predicted_top:
        top = ", ".join(f"{c} {p:.0%}" for c, p in u.predicted_top[:5])
        lines.append(f"Predicted next (active interest model, hatched bar): {top}.")
    else:
        lines.append("No predicted next categories: the active interest model has no state for "
                     "this user (run train-interest or refresh-states).")
    if u.drift is not None:
        moves = "".join([f"; gaining {', '.join(u.gaining)}" if u.gaining else "",
                         f"; losing {', '.join(u.losing)}" if u.losing else ""])
        lines.append(f"Interest drift (Jensen-Shannon divergence of recent vs long-term "
                     f"category shares, 0..1): {u.drift:.3f}{moves}.")
    parts.append(h.paragraph(" ".join(lines), "note"))
    return parts


def serving(conn: psycopg.Connection, bench_dir: Path) -> h.Html:
    bench = data.read_bench(bench_dir)
    parts: list[Any] = [h.tag("h3", "Last benchmark run")]
    if bench.figures is None:
        parts.append(h.empty(
            h.inline(f"could not read {bench.path}: {bench.error}") if bench.error else
            h.inline("no benchmark run found - run ", h.code("python bench/recommend.py"),
                     f" (looked for {bench.path}).")))
    else:
        f = bench.figures
        parts.append(h.paragraph(f"Measured {h.fmt(f.get('measured_at'))} on "
                                 f"{h.fmt(f.get('machine'))} ({bench.path}).", "note"))
        numbers = {k: float(v) for k, v in f.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)
                   and (k.endswith("_ms") or k.startswith("qps"))}
        if numbers:
            parts.append(h.image(charts.latency(numbers, BENCH_TARGETS),
                                 "benchmark latency and throughput"))
        parts.append(h.table(["figure", "value", "target"], [
            [k, v if isinstance(v, int | float | str) or v is None
             else json.dumps(v, default=str), _target(k)]
            for k, v in f.items() if k not in ("measured_at", "machine")]))
    parts.append(h.tag("h3", "Active versions"))
    active = data.active_versions(conn)
    if not active:
        parts.append(h.empty(h.inline(
            "nothing yet: no active model versions - run ",
            h.code("recsys-db jobs run train-interest"), ", ", h.code("train-cf"), " and ",
            h.code("train-ranker"), ".")))
    else:
        parts.append(h.table(["kind", "version", "activated", "user states", "serving figures"],
                             [[v["kind"], v["version_id"], v["activated_at"],
                               v["user_states"] or None, _serving_figures(v)]
                              for v in active]))
    return _section("serving", parts)


def _target(key: str) -> str:
    if key not in BENCH_TARGETS:
        return ""
    return f"{'>=' if key.startswith('qps') else '<='} {BENCH_TARGETS[key]:g}"


def _serving_figures(v: dict[str, Any]) -> str:
    m, p = v["metrics"] or {}, v["params"] or {}
    if v["kind"] == "ranker":
        parts = [f"scores 200 candidates in {h.fmt(m.get('score_200_ms'))} ms "
                 f"(budget {h.fmt(m.get('budget_ms'))} ms)"]
        if "trees" in p:
            parts.append(f"{p['trees']} trees of {h.fmt(p.get('leaves'))} leaves")
        return ", ".join(parts)
    if v["kind"] == "interest":
        return f"{h.fmt(p.get('encoder'))} encoder, dim {h.fmt(p.get('dim'))}"
    if v["kind"] == "cf":
        return f"{h.fmt(m.get('neighbors'))} neighbour pairs"
    return ""
