"""Runs every job on its schedule until SIGTERM; same as `recsys-db scheduler`."""

import logging

from recsys_db.jobs.settings import load_settings
from recsys_db.scheduler import run_scheduler

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_scheduler(load_settings())
