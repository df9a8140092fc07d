"""Runs the train-cf job once; same as `recsys-db jobs run train-cf`."""

from recsys_db.jobs import run_job

if __name__ == "__main__":
    print(run_job("train-cf"))
