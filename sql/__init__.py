"""SQL files of recsys-db (sql/ in the repository, recsys_db.sql once installed).

A package so that importlib.resources finds them in a wheel and in an editable install alike.
"""
