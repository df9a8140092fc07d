"""Alembic migrations of recsys-db (migrations/ in the repository, recsys_db.migrations once
installed). A package so that importlib.resources finds them in a wheel and an editable install.
"""
