"""`recsys-db doctor`: check a deployment end to end and say how to fix what is wrong.

`run_checks(url)` runs the checks in order - server, pgvector, privileges, migrations, models,
hnsw, serving, worker-lag, jobs, forgotten, pooler - and never raises: each outcome, an
unexpected error included, is a `Check` whose `fix` (for warn and fail) is the command to run.
A check whose prerequisite failed is not run: it is reported as failed with detail "skipped:
<first failed check> failed" and no fix (that check has it). hnsw and worker-lag need an
active interest version; without one they are skipped the same way, as a warning when models
only warned. Nothing is changed: the embedded server is not started, the database is only read
(pooler also tries PgBouncer's admin console, database "pgbouncer", at the same address).

The checks live in modules of one job each: base (Check, verdict, settings, shared helpers),
server (server, pgvector, migrations), access (privileges, pooler), models (models, hnsw),
serving, freshness (worker-lag, jobs), forgotten, and runner (the order and run_checks).
"""

from recsys_db.doctor.access import DIRECT
from recsys_db.doctor.base import (
    CONNECT_TIMEOUT_SECONDS,
    DEAD_RUN_GRACE_SECONDS,
    INGEST,
    LAG_WARN_SECONDS,
    LONG_RUN_HOURS,
    MIGRATE,
    MIN_PGVECTOR,
    MIN_SERVER_VERSION_NUM,
    MODEL_JOBS,
    RUN_WORKER,
    SERVING_WARN_MS,
    START_SERVER,
    STATEMENT_TIMEOUT,
    Check,
    Status,
    verdict,
)
from recsys_db.doctor.runner import CHECK_NAMES, run_checks

__all__ = [
    "CHECK_NAMES", "CONNECT_TIMEOUT_SECONDS", "DEAD_RUN_GRACE_SECONDS", "DIRECT", "INGEST",
    "LAG_WARN_SECONDS", "LONG_RUN_HOURS", "MIGRATE", "MIN_PGVECTOR", "MIN_SERVER_VERSION_NUM",
    "MODEL_JOBS", "RUN_WORKER", "SERVING_WARN_MS", "START_SERVER", "STATEMENT_TIMEOUT", "Check",
    "Status", "run_checks", "verdict",
]
