"""`make demo`: start the server, migrate, load events, and show what is in the database.

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


if __name__ == "__main__":
    main()
