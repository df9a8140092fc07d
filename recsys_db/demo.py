"""`make demo`: start the server, migrate, load events, train, recommend, write report.html.

Uses the Taobao sample in ../shared/data when it is there, else a synthetic log.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from recsys_db import config, embedded, migrate, synth
from recsys_db.db import connect, database_url, get_engine
from recsys_db.ingest import load_events

TAOBAO = config.PROJECT_ROOT.parent / "shared" / "data" / "taobao_userbehavior" / "events.csv"
console = Console()
DEMO_EPOCHS = 8
REPORT = Path("report.html")


def step(text: str) -> float:
    console.print(f"[bold cyan]==>[/] {text}")
    return time.perf_counter()


def main() -> None:
    t = step("database")
    if config.database_url_from_env() is None:
        st = embedded.start()
        console.print(f"    embedded PostgreSQL 18 + pgvector running (pid {st.pid}), "
                      f"data in {st.pgdata}")
    engine = get_engine(database_url())
    t = step("migrate to head")
    migrate.upgrade(engine)
    console.print(f"    schema recsys at revision {migrate.current_revision(engine)}")

    t = step("load events")
    if TAOBAO.is_file():
        result = load_events(TAOBAO)
    else:
        console.print(f"    ({TAOBAO} not found: generating a synthetic log instead)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "synthetic.csv"
            synth.generate(path, users=2_000, items=20_000, events=200_000, seed=7)
            result = load_events(path)
    console.print(f"    {result.source}: {result.loaded:,} new events, {result.duplicates:,} "
                  f"already stored ({time.perf_counter() - t:.1f} s)")
    show_database()

    t = step("train the interest model (LSTM) and write vectors to pgvector")
    from recsys_db.interest.train_config import TrainConfig
    from recsys_db.interest.trainer import InterestJobConfig, TrainProgress
    from recsys_db.jobs.runner import run_job

    metrics = run_job("train-interest", config=InterestJobConfig(TrainConfig(epochs=DEMO_EPOCHS)),
                      progress=TrainProgress(on_epoch=lambda r: console.print(
                          f"    epoch {int(r['epoch'])}: loss {r['loss']:.3f}, valid next-item "
                          f"NDCG@10 {r.get('valid_ndcg10', 0):.4f}, next-category NDCG@10 "
                          f"{r.get('valid_ndcg10_category', 0):.4f}")))
    console.print(f"    model version {metrics['version_id']} active "
                  f"({time.perf_counter() - t:.0f} s)")
    show_interest(metrics["version_id"])

    t = step("train CF neighbours and the LightGBM re-ranker (compiled into SQL)")
    cf = run_job("train-cf")
    ranker = run_job("train-ranker")
    blend = ranker["default_blend_valid_ndcg10"]
    console.print(f"    cf version {cf['version_id']}: {cf['neighbors']:,} neighbour pairs; "
                  f"ranker version {ranker['version_id']}: valid NDCG@10 "
                  f"{ranker['valid_ndcg10']:.3f} (fixed blend {blend:.3f}), 200 candidates "
                  f"scored in {ranker['score_200_ms']:.1f} ms ({time.perf_counter() - t:.0f} s)")
    show_recommendations()

    step("report: data health, model quality, interest migration, serving")
    from recsys_db.report import write_report

    with connect() as conn:
        summary = write_report(conn, REPORT)
    console.print(f"    {summary.images} charts for users {', '.join(summary.users)}")
    console.print(f"[bold]report written to {summary.path.resolve()}[/]")


def show_database() -> None:
    with connect() as conn:
        table = Table("table", "rows", title="what is in schema recsys")
        for name in ("events", "users", "items", "categories", "behavior_types"):
            count = conn.execute(f"SELECT count(*) FROM recsys.{name}").fetchone()[0]
            table.add_row(name, f"{count:,}")
        console.print(table)
        mix = Table("behavior", "events", "share", title="behavior funnel")
        for name, n, share in conn.execute(
            "SELECT b.name, count(*), round(100.0 * count(*) / sum(count(*)) OVER (), 1) "
            "FROM recsys.events e JOIN recsys.behavior_types b USING (behavior_key) "
            "GROUP BY b.name ORDER BY 2 DESC"):
            mix.add_row(name, f"{n:,}", f"{share}%")
        console.print(mix)
        user = conn.execute("SELECT user_id FROM recsys.users ORDER BY user_key LIMIT 1"
                            ).fetchone()[0]
        latest = Table("ts", "item", "category", "behavior",
                       title=f"latest events of user {user}")
        for row in conn.execute(
            "SELECT e.ts, i.item_id, c.category_id, b.name FROM recsys.events e "
            "JOIN recsys.users u USING (user_key) JOIN recsys.items i USING (item_key) "
            "LEFT JOIN recsys.categories c ON c.category_key = e.category_key "
            "JOIN recsys.behavior_types b USING (behavior_key) "
            "WHERE u.user_id = %s ORDER BY e.ts DESC LIMIT 8", (user,)):
            latest.add_row(str(row[0]), row[1], row[2] or "", row[3])
        console.print(latest)



def show_interest(version: int) -> None:
    with connect() as conn:
        user = conn.execute(
            "SELECT u.user_id FROM recsys.users u JOIN recsys.events e USING (user_key) "
            "GROUP BY u.user_id ORDER BY count(*) DESC, u.user_id LIMIT 1").fetchone()[0]
        profile = Table("category", "long-term", "recent", "predicted next",
                        title=f"SELECT * FROM recsys.interest_profile('{user}') LIMIT 8")
        for cat, lt, rc, pr in conn.execute(
                "SELECT * FROM recsys.interest_profile(%s) LIMIT 8", (user,)):
            profile.add_row(cat, f"{lt:.3f}", f"{rc:.3f}", f"{pr:.3f}")
        console.print(profile)
        drift = conn.execute("SELECT * FROM recsys.interest_drift(%s)", (user,)).fetchone()
        console.print(f"    interest_drift: {drift[0]:.3f} (JS divergence); gaining {drift[1]}, "
                      f"losing {drift[2]}; p_migrate {drift[3]:.3f} (next event leaves the "
                      "categories of the last 50)")
        movers = Table("user", "p_migrate", "last event",
                       title="SELECT * FROM recsys.about_to_migrate(k => 5)")
        for mover, p, last in conn.execute("SELECT * FROM recsys.about_to_migrate(k => 5)"):
            movers.add_row(mover, f"{p:.3f}", str(last))
        console.print(movers)
        dim = conn.execute("SELECT dim FROM recsys.model_versions WHERE version_id = %s",
                           (version,)).fetchone()[0]
        top = Table("rank", "item", "category", "score",
                    title=f"top 10 items for user {user} from pgvector (HNSW, inner product): "
                          "the model's migrate part")
        query = (f"SELECT i.item_id, c.category_id, -(e.embedding::vector({dim}) <#> s.state) "
                 f"FROM recsys.item_embeddings_v{version} e "
                 "JOIN recsys.items i USING (item_key) "
                 "LEFT JOIN recsys.categories c ON c.category_key = i.category_key, "
                 "(SELECT us.state FROM recsys.user_states us JOIN recsys.users u "
                 " USING (user_key) WHERE u.user_id = %s AND us.version_id = %s) s "
                 f"ORDER BY e.embedding::vector({dim}) <#> s.state LIMIT 10")
        for rank, (item, cat, score) in enumerate(conn.execute(query, (user, version)), 1):
            top.add_row(str(rank), item, cat or "", f"{score:.3f}")
        console.print(top)


def show_recommendations() -> None:
    with connect() as conn:
        users = [r[0] for r in conn.execute(
            "SELECT u.user_id FROM recsys.users u JOIN recsys.events e USING (user_key) "
            "GROUP BY u.user_id ORDER BY count(*) DESC, u.user_id LIMIT 2")]
        for user in [*users, "a-new-visitor"]:
            table = Table("rank", "item", "score", "reason",
                          title=f"SELECT * FROM recsys.recommend('{user}', k => 10)")
            for item, score, rank, reason in conn.execute(
                    "SELECT * FROM recsys.recommend(%s, k => 10)", (user,)):
                table.add_row(str(rank), item, f"{score:.3f}", reason)
            console.print(table)


if __name__ == "__main__":
    main()
