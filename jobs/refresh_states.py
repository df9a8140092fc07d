"""Runs the refresh-states job once; same as `recsys-db jobs run refresh-states`."""

from recsys_db.jobs import run_job

if __name__ == "__main__":
    print(run_job("refresh-states"))
