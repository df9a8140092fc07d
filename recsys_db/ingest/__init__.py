"""Event ingestion: files, DataFrames and row iterables, loaded with COPY + one set-based insert;
and the item catalog (`load_items`)."""

from recsys_db.ingest.items import ItemsResult, load_items
from recsys_db.ingest.load import LoadResult, load_events

__all__ = ["ItemsResult", "LoadResult", "load_events", "load_items"]
