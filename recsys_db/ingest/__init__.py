"""Event ingestion: files, DataFrames and row iterables, loaded with COPY + one set-based insert."""

from recsys_db.ingest.load import LoadResult, load_events

__all__ = ["LoadResult", "load_events"]
