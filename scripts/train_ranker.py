"""Runs the train-ranker job once, as the settings say: options, retries and activation
tolerance from recsys.toml (or $RECSYS_CONFIG) and the environment.
`recsys-db jobs run train-ranker` does the same, with flags."""

from recsys_db.jobs.runner import run_from_settings
from recsys_db.jobs.settings import load_settings

if __name__ == "__main__":
    print(run_from_settings("train-ranker", load_settings()))
