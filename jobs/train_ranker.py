"""Runs the train-ranker job once; same as `recsys-db jobs run train-ranker`."""

from recsys_db.jobs import run_job

if __name__ == "__main__":
    print(run_job("train-ranker"))
