"""`python -m recsys_db.cli ...`, the same as `recsys-db ...`."""

from recsys_db.cli import run

run()
