"""The models and hnsw checks: an active version of each kind, with what serving reads of it."""

from __future__ import annotations

from recsys_db.doctor.base import INGEST, MODEL_JOBS, Check, Context, doctor_sql, psql


def check_models(ctx: Context) -> Check:
    rows = ctx.c.execute(doctor_sql()["active_models"]).fetchall()
    found: dict[str, tuple[int, bool, bool, bool, bool]] = {}
    for kind, version, dim, has_blob, has_part, has_rows, has_scorer in rows:
        found[kind] = (version, has_blob, has_part, has_rows, has_scorer)
        ctx.active[kind] = version
        ctx.dims[kind] = dim
        if (kind == "interest" and dim is not None and has_part) or \
                (kind == "ranker" and has_scorer):
            ctx.servable[kind] = version
    fails: list[str] = []
    warns: list[str] = []
    retrain: set[str] = set()
    if "interest" not in found and "cf" not in found:
        fails.append("no active interest or cf model: recommend() can only return the user's "
                     "own recent items, and new users get nothing")
        retrain |= {"interest", "cf"}
    elif "interest" not in found:
        warns.append("no active interest model: recommend() has CF, recent and trending "
                     "candidates but none from the user's interest vector; the worker idles")
        retrain.add("interest")
    elif "cf" not in found:
        warns.append("no active cf model: recommend() has no CF neighbours and no trending "
                     "items, so users without history get nothing")
        retrain.add("cf")
    if "ranker" not in found:
        warns.append("no active ranker: recommend() orders candidates by a fixed blend")
        retrain.add("ranker")
    if "interest" in found:
        version, has_blob, has_part, has_rows, _ = found["interest"]
        part = f"recsys.item_embeddings_v{version}"
        if not has_blob:
            fails.append(f"interest v{version} has no weights in recsys.model_blobs: the "
                         "worker cannot load it")
        if not has_part:
            fails.append(f"{part} (interest v{version}'s item vectors) is missing")
        elif not has_rows:
            fails.append(f"{part} is empty or not attached to recsys.item_embeddings")
        if not (has_blob and has_part and has_rows):
            retrain.add("interest")
    if "ranker" in found and not found["ranker"][4]:
        version = found["ranker"][0]
        fails.append(f"recsys.ranker_score_v{version}(double precision[]) of the active "
                     f"ranker v{version} is missing: recommend() fails")
        retrain.add("ranker")
    fix = None
    if retrain:
        steps = [f"recsys-db jobs run {MODEL_JOBS[k]}" for k in MODEL_JOBS if k in retrain]
        if not ctx.c.execute(doctor_sql()["has_events"]).fetchone()[0]:
            steps.insert(0, INGEST)
        fix = " && ".join(steps)
    if fails or warns:
        return Check("models", "fail" if fails else "warn", "; ".join(fails + warns), fix)
    return Check("models", "ok", ", ".join(f"{k} v{found[k][0]}" for k in MODEL_JOBS))


def no_interest(name: str, ctx: Context) -> Check:
    if ctx.done["models"].status == "fail":
        return Check(name, "fail", "skipped: models failed")
    return Check(name, "warn", "skipped: no active interest version (see models)")


def check_hnsw(ctx: Context) -> Check:
    version = ctx.servable.get("interest")  # None too when its partition is missing (models)
    if version is None:
        return no_interest("hnsw", ctx)
    part = f"item_embeddings_v{version}"
    rows = ctx.c.execute(doctor_sql()["hnsw_indexes"], {"version": version}).fetchall()
    if not rows:
        create = (f"CREATE INDEX CONCURRENTLY {part}_hnsw ON recsys.{part} USING hnsw "
                  f"((embedding::vector({ctx.dims.get('interest')})) vector_ip_ops)")
        return Check("hnsw", "fail", f"no HNSW index on recsys.{part}: every recommend() scans "
                     "all item vectors", psql(create))
    broken = [name for name, valid, ready in rows if not (valid and ready)]
    if broken:
        return Check("hnsw", "fail",
                     f"HNSW index(es) {', '.join(broken)} on recsys.{part} not valid or not "
                     "ready (an interrupted CREATE INDEX CONCURRENTLY?): the planner skips them",
                     " && ".join(psql(f"REINDEX INDEX CONCURRENTLY recsys.{n}")
                                 for n in broken))
    return Check("hnsw", "ok", f"{', '.join(r[0] for r in rows)} on recsys.{part}: "
                 "valid and ready")
