"""Runs the refresh-transitions job once; same as `recsys-db jobs run refresh-transitions`."""

from recsys_db.jobs import run_job

if __name__ == "__main__":
    print(run_job("refresh-transitions"))
