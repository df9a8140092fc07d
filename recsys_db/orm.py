"""SQLAlchemy 2.0 typed models of every table in schema `recsys`.

The migrations (SQL files) are the source of truth; `tests/test_schema.py` runs Alembic's
autogenerate comparison and fails on any drift between these models and the migrated database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    Double,
    FetchedValue,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TZ = TIMESTAMP(timezone=True)
NOW = text("now()")
EMPTY_JSON = text("'{}'::jsonb")


class Base(DeclarativeBase):
    metadata = MetaData(schema="recsys")


class Meta(Base):
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)


class Category(Base):
    __tablename__ = "categories"
    category_key: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    category_id: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (Index("items_category_key_idx", "category_key"),
                      Index("items_attributes_idx", "attributes", postgresql_using="gin",
                            postgresql_ops={"attributes": "jsonb_path_ops"}))
    item_key: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    item_id: Mapped[str] = mapped_column(Text, unique=True)
    category_key: Mapped[int | None] = mapped_column(ForeignKey("categories.category_key"))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=EMPTY_JSON)
    first_seen: Mapped[datetime | None] = mapped_column(TZ)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class User(Base):
    __tablename__ = "users"
    user_key: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=EMPTY_JSON)
    first_seen: Mapped[datetime | None] = mapped_column(TZ)


class Exclusion(Base):
    __tablename__ = "exclusions"
    user_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    until: Mapped[datetime | None] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)


class ForgottenUser(Base):
    """A forgotten user's tombstone: the sha256 of the id, never the id (recsys.forget_user)."""

    __tablename__ = "forgotten_users"
    user_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    forgotten_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)
    skipped_events: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class BehaviorType(Base):
    __tablename__ = "behavior_types"
    behavior_key: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text, unique=True)
    weight: Mapped[float] = mapped_column(REAL)


class Event(Base):
    """One behavior event; the table is range-partitioned by month on `ts`."""

    __tablename__ = "events"
    __table_args__ = (
        Index("events_ts_idx", "ts", postgresql_using="brin"),
        Index("events_event_id_idx", "event_id", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (ts)"},
    )
    # Filled by the database from sequence recsys.events_event_id_seq (reflected as serial).
    event_id: Mapped[int] = mapped_column(BigInteger, FetchedValue())
    user_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(TZ, primary_key=True)
    item_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    behavior_key: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    category_key: Mapped[int | None] = mapped_column(Integer)


class RejectedEvent(Base):
    __tablename__ = "rejected_events"
    reject_id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    line_no: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        Index(
            "model_versions_one_active_idx", "kind", unique=True, postgresql_where=text("active")
        ),
    )
    version_id: Mapped[int] = mapped_column(Integer, Identity(always=False), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=text("'building'::text"))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    dim: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=EMPTY_JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=EMPTY_JSON)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)
    activated_at: Mapped[datetime | None] = mapped_column(TZ)
    job_run_id: Mapped[int | None] = mapped_column(BigInteger)


class ModelActivation(Base):
    """One activation of a model version: `rollback` goes back to previous_version_id."""

    __tablename__ = "model_activations"
    __table_args__ = (
        Index("model_activations_kind_idx", "kind", text("activation_id DESC")),
    )
    activation_id: Mapped[int] = mapped_column(BigInteger, Identity(always=False),
                                               primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    version_id: Mapped[int] = mapped_column(Integer)
    previous_version_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    activated_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)


class ItemEmbedding(Base):
    """Item vectors of one model version (list-partitioned by version_id)."""

    __tablename__ = "item_embeddings"
    __table_args__ = ({"postgresql_partition_by": "LIST (version_id)"},)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    embedding: Mapped[Any] = mapped_column(Vector())


class CategoryEmbedding(Base):
    """Mean item vector of a category under one interest version (for items without one)."""

    __tablename__ = "category_embeddings"
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    embedding: Mapped[Any] = mapped_column(Vector())
    n_items: Mapped[int] = mapped_column(Integer)


class UserState(Base):
    """A user's interest state under one model version, plus what is needed to continue it."""

    __tablename__ = "user_states"
    __table_args__ = (Index("user_states_version_idx", "version_id"),)
    user_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[Any] = mapped_column(Vector())
    hidden: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    next_categories: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    next_category_probs: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)
    last_event_ts: Mapped[datetime | None] = mapped_column(TZ)
    n_events: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)
    # the stay-or-migrate heads (migration 0009, see interest/encoder.py)
    p_migrate: Mapped[float | None] = mapped_column(REAL)
    stay_query: Mapped[Any] = mapped_column(Vector(), nullable=True)
    stay_items: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    stay_bias: Mapped[list[float] | None] = mapped_column(ARRAY(REAL))
    log_stay: Mapped[float | None] = mapped_column(Double)
    migrate_offset: Mapped[float | None] = mapped_column(Double)


class UserCandidates(Base):
    """A user's precomputed, scored candidates (sql/functions/precompute_candidates.sql), in
    ranking order, with the versions, events, state and catalog they were computed from."""

    __tablename__ = "user_candidates"
    user_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    interest_version: Mapped[int | None] = mapped_column(Integer)
    cf_version: Mapped[int | None] = mapped_column(Integer)
    ranker_version: Mapped[int | None] = mapped_column(Integer)
    n_events: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)
    max_item_key: Mapped[int | None] = mapped_column(Integer)
    state_at: Mapped[datetime | None] = mapped_column(TZ)
    computed_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)
    item_keys: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    scores: Mapped[list[float]] = mapped_column(ARRAY(Double))
    cf_scores: Mapped[list[float]] = mapped_column(ARRAY(Double))
    trends: Mapped[list[float]] = mapped_column(ARRAY(Double))
    because_items: Mapped[list[int | None]] = mapped_column(ARRAY(Integer))
    top_categories: Mapped[list[int | None]] = mapped_column(ARRAY(Integer))
    source_bits: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("job_runs_job_started_idx", "job", text("started_at DESC")),)
    run_id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    job: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(TZ, server_default=NOW)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)
    rows_read: Mapped[int | None] = mapped_column(BigInteger)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=EMPTY_JSON)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class ModelBlob(Base):
    """Trained weights and vocabularies of a model version."""

    __tablename__ = "model_blobs"
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.version_id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False)
    format: Mapped[str] = mapped_column(Text)
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class CategoryTransition(Base):
    __tablename__ = "category_transitions"
    from_category_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    to_category_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(BigInteger)
    probability: Mapped[float] = mapped_column(REAL)


class ItemNeighbor(Base):
    """Top CF neighbours of an item under one 'cf' model version."""

    __tablename__ = "item_neighbors"
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    neighbor_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    score: Mapped[float] = mapped_column(REAL)


class ItemStats(Base):
    """Popularity of an item as of a 'cf' model version's time."""

    __tablename__ = "item_stats"
    __table_args__ = (
        Index("item_stats_trending_idx", "version_id", "category_key", text("trend DESC")),
        Index("item_stats_global_trending_idx", "version_id", text("trend DESC")),
    )
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    item_key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    category_key: Mapped[int | None] = mapped_column(Integer)
    n_1d: Mapped[float] = mapped_column(REAL)
    n_7d: Mapped[float] = mapped_column(REAL)
    n_total: Mapped[float] = mapped_column(REAL)
    trend: Mapped[float] = mapped_column(REAL)
    age_days: Mapped[float] = mapped_column(REAL)
