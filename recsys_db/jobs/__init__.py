"""Jobs: what recsys-db runs on a schedule or once, and how.

    catalog.py   the jobs: name, description, typed config, what a run does (calls a trainer)
    settings.py  operator settings (recsys.toml + environment): schedules, options, retries,
                 activation tolerance
    runner.py    one run: recorded in recsys.job_runs, under an advisory lock, retried;
                 run_from_settings(name, settings, overrides)

The scheduler (recsys_db/scheduler.py) and the CLI sit above this package, the trainers
(cf.py, interest/trainer.py, ranker/train.py) below it.
"""
