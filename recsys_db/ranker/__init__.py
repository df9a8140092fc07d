"""The learned re-ranker: LightGBM models compiled into PostgreSQL SQL functions.

`recsys_db.ranker.compile` turns a trained `lightgbm.Booster` into the text of an inlinable,
immutable SQL function that returns exactly the booster's raw score.
"""
