"""recsys-db: interest-aware recommendations inside PostgreSQL."""

from recsys_db.api import Recommendation, recommend, recommend_items, similar_items

__all__ = ["Recommendation", "recommend", "recommend_items", "similar_items"]
