"""Interest model versions in PostgreSQL: weights, item vectors (pgvector + HNSW), user states.

`write_version` stores everything of a new version in ONE transaction (registry row, weights,
an `item_embeddings_v<N>` partition with its HNSW index, category vectors for items that arrive
later, vectors from category and attributes for catalog items with no event yet, user states),
inactive; the registry's `promote` then switches the active version in a second, short
transaction. A job killed at any point leaves either nothing or a complete
inactive version; the active version keeps serving. SQL: sql/states.sql.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import torch
from psycopg import sql

from recsys_db.interest.encoder import InterestModel, ModelShape, log_partition, rows_per_block
from recsys_db.interest.features import Vocab
from recsys_db.interest.states import Encoded
from recsys_db.interest.train_config import TrainConfig
from recsys_db.registry import active_version, create_version, mark_ready, version_params
from recsys_db.sqlfiles import queries

KIND = "interest"
TOP_CATEGORIES = 20
# rows formatted per COPY write (all 200k states as one text took 1.6 GB)
COPY_ROWS = 10_000
BLOB_FORMAT = "torch-state-dict-v3"  # v3: stay-or-migrate heads, item vector = id + category
# Params write_version stores beside the training config (not TrainConfig fields).
VERSION_PARAMS = ("max_item_key",)


def _sql() -> dict[str, str]:
    return queries("states.sql")


@dataclass
class UserStateRows:
    """Rows of recsys.user_states for one version (aligned arrays, one entry per user)."""

    user_key: np.ndarray
    state: np.ndarray  # (U, d+1) float32, [user vector, 1]: the migrate part's query
    hidden: np.ndarray  # (U, H) float32
    next_categories: np.ndarray  # (U, K) int category keys
    next_probs: np.ndarray  # (U, K) float32
    last_event_id: np.ndarray
    last_event_ts: np.ndarray  # unix seconds
    n_events: np.ndarray
    p_migrate: np.ndarray  # (U,) P(next category is not among the last `window` events')
    stay_query: np.ndarray  # (U, d+1) float32, [q, 0]: the stay attention's query
    stay_items: list[np.ndarray]  # per user: item keys of the recent slots, oldest first
    stay_bias: list[np.ndarray]  # per user: position + behavior bias of those slots
    log_stay: np.ndarray  # (U,) log p_stay of the item head (NaN: no recent item known)
    migrate_offset: np.ndarray  # (U,) log(1 - p_stay) - log Z: added to <[u,1], [e_i,b_i]>


@dataclass
class LoadedModel:
    version_id: int
    model: InterestModel
    items: Vocab
    categories: Vocab


def model_blob(model: InterestModel, items: Vocab, categories: Vocab) -> bytes:
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(),
                "shape": json.dumps(model.shape.__dict__),
                "item_keys": torch.from_numpy(items.keys.astype(np.int64)),
                "category_keys": torch.from_numpy(categories.keys.astype(np.int64))}, buf)
    return buf.getvalue()


def model_from_blob(blob: bytes) -> tuple[InterestModel, Vocab, Vocab]:
    data: dict[str, Any] = torch.load(io.BytesIO(blob), weights_only=True)
    shape = json.loads(data["shape"])
    shape.setdefault("item_stay_content", True)  # stored before the option: the content term
    model = InterestModel(ModelShape(**shape))
    state = data["state_dict"]
    for name, value in model.state_dict().items():
        if name.endswith(".latest_bias") and name not in state:
            # a version trained before the latest-occurrence bias: zero is exactly its model
            state[name] = torch.zeros_like(value)
    model.load_state_dict(state)
    model.eval()
    return model, Vocab(data["item_keys"].numpy()), Vocab(data["category_keys"].numpy())


def _top_categories(model: InterestModel, h: torch.Tensor, cat_ids: torch.Tensor,
                    behavior: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, model indices) of each user's TOP_CATEGORIES most likely next
    categories, a block of users at a time: the whole (users, categories) matrix would take
    20 GB at 200k users and 25k categories."""
    n = model.shape.n_categories + 1
    k, rows = min(TOP_CATEGORIES, n - 1), rows_per_block(n, batch_size)
    # written into tensors allocated up front: small results kept between the blocks' large
    # temporaries pin those in the heap (glibc does not give it back), about 35 MB a block
    probs, index = torch.empty(len(h), k), torch.empty(len(h), k, dtype=torch.long)
    for lo in range(0, len(h), rows):
        block = model.category_log_probs(h[lo:lo + rows], cat_ids[lo:lo + rows],
                                         behavior[lo:lo + rows]).exp_()
        torch.topk(block, k, dim=-1, out=(probs[lo:lo + rows], index[lo:lo + rows]))
    return probs, index


@torch.no_grad()
def state_rows(model: InterestModel, items: Vocab, categories: Vocab, user_key: np.ndarray,
               enc: Encoded, last_event_id: np.ndarray, last_event_ts: np.ndarray,
               n_events: np.ndarray, batch_size: int = 256) -> UserStateRows:
    """Everything SQL needs to score items exactly as the model does (see encoder.py): the
    migrate query [u, 1] and its offset log(1 - p_stay) - log Z, the stay query [q, 0] with the
    recent items and their slot biases, log p_stay; plus p_migrate and the top predicted next
    categories (the category head's mixture)."""
    h, recent = enc.h, torch.from_numpy(enc.recent)
    ids, cat_ids, behavior = recent[:, 0], recent[:, 1], recent[:, 2]
    u = model.user_vector(h)
    log_stay, log_migrate = model.item_stay.log_gate(h)
    empty = (ids == 0).all(-1)
    log_migrate = log_migrate.masked_fill(empty, 0.0)
    log_z = log_partition(model.pgvector_user(u), model.item_vectors(), ids)
    q = model.item_stay.stay_query(h)
    bias = model.item_stay.slot_bias(behavior, ids)
    top_p, top_i = _top_categories(model, h, cat_ids, behavior, batch_size)
    cat_stay, _ = model.category_stay.log_gate(h)
    p_migrate = torch.where((cat_ids == 0).all(-1), 1.0, 1.0 - cat_stay.exp())
    keys = categories.keys[np.maximum(top_i.numpy() - 1, 0)]
    ids_np, bias_np = ids.numpy(), bias.numpy().astype(np.float32)
    filled = ids_np > 0
    item_keys = items.keys[np.maximum(ids_np - 1, 0)] if len(items) else ids_np
    zero = torch.zeros(len(h), 1)
    return UserStateRows(
        user_key, model.pgvector_user(u).numpy().astype(np.float32), enc.hidden, keys,
        top_p.numpy().astype(np.float32), last_event_id, last_event_ts, n_events,
        p_migrate.numpy().astype(np.float32),
        torch.cat([q, zero], dim=1).numpy().astype(np.float32),
        [item_keys[r][filled[r]] for r in range(len(h))],
        [bias_np[r][filled[r]] for r in range(len(h))],
        torch.where(empty, float("nan"), log_stay).numpy().astype(np.float64),
        (log_migrate - log_z).numpy().astype(np.float64))


def _vec(row: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in row) + "]"


def _arr(row: np.ndarray, fmt: str = "{:.7g}") -> str:
    return "{" + ",".join(fmt.format(x) for x in row) + "}"


def write_version(conn: psycopg.Connection, model: InterestModel, items: Vocab,
                  categories: Vocab, states: UserStateRows, params: dict[str, Any],
                  metrics: dict[str, Any], job_run_id: int | None = None,
                  status: str = "ready") -> int:
    """Store a complete, inactive version in one transaction; returns its version_id.

    status 'building' marks a helper version (never activated; removed by its job, or by the
    next run of that job if this one dies)."""
    dim = model.shape.dim + 1
    max_key = int(items.keys.max()) if len(items) else 0  # later items: category vectors
    if status not in ("ready", "building"):
        raise ValueError(f"status must be 'ready' or 'building', got {status!r}")
    with conn.transaction():
        version = create_version(conn, KIND, {**params, "max_item_key": max_key},
                                 metrics=metrics, dim=dim, job_run_id=job_run_id)
        conn.execute(_sql()["insert_blob"], {"version": version, "format": BLOB_FORMAT,
                                             "blob": model_blob(model, items, categories)})
        _write_item_vectors(conn, version, dim, items, model.item_vectors().detach().numpy())
        conn.execute(_sql()["refresh_category_embeddings"], {"version": version})
        conn.execute(_sql()["cold_start_item_embeddings"], {"version": version})
        write_states(conn, version, states)
        conn.execute(_sql()["analyze_states"])
        if status == "ready":
            mark_ready(conn, version)
    return version


def _write_item_vectors(conn: psycopg.Connection, version: int, dim: int, items: Vocab,
                        vectors: np.ndarray) -> None:
    names = {"part": sql.Identifier(f"item_embeddings_v{int(version)}"),
             "index": sql.Identifier(f"item_embeddings_v{int(version)}_hnsw"),
             "dim": sql.Literal(int(dim)), "version": sql.Literal(int(version))}

    def statement(name: str) -> sql.Composed:
        return sql.SQL(_sql()[name]).format(**names)

    conn.execute(statement("create_vector_partition"))
    with conn.cursor().copy(statement("copy_vectors")) as copy:
        for lo in range(0, len(items), COPY_ROWS):
            copy.write("".join(f"{version}\t{key}\t{_vec(vectors[lo + i + 1])}\n"
                               for i, key in enumerate(items.keys[lo:lo + COPY_ROWS])))
    for name in ("vector_primary_key", "vector_hnsw_index", "attach_vector_partition",
                 "analyze_vector_partition"):
        conn.execute(statement(name))


def write_states(conn: psycopg.Connection, version: int, s: UserStateRows) -> None:
    """Upsert user states of `version` (COPY into a temp table, then one INSERT ... ON CONFLICT)."""
    sql_ = _sql()
    conn.execute(sql_["create_stage"])
    with conn.cursor().copy(sql_["copy_stage"]) as copy:
        for lo in range(0, len(s.user_key), COPY_ROWS):
            copy.write("".join(
                f"{s.user_key[r]}\t{version}\t{_vec(s.state[r])}\t{_arr(s.hidden[r])}\t"
                f"{_arr(s.next_categories[r], '{}')}\t{_arr(s.next_probs[r])}\t"
                f"{s.last_event_id[r]}\t{_ts(s.last_event_ts[r])}\t{s.n_events[r]}\t"
                f"{s.p_migrate[r]:.7g}\t{_vec(s.stay_query[r])}\t"
                f"{_arr(s.stay_items[r], '{}')}\t{_arr(s.stay_bias[r])}\t"
                f"{_num(s.log_stay[r])}\t{_num(s.migrate_offset[r])}\n"
                for r in range(lo, min(lo + COPY_ROWS, len(s.user_key)))))
    conn.execute(sql_["upsert_from_stage"])
    conn.execute(sql_["clear_stage"])


def _num(x: float) -> str:
    return "\\N" if not np.isfinite(x) else f"{x:.17g}"


def _ts(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).isoformat()


def refresh_transitions(conn: psycopg.Connection) -> int:
    """Recompute recsys.category_transitions from the events; returns its row count."""
    return int(conn.execute(_sql()["refresh_transitions"]).fetchone()[0])


def active_config(conn: psycopg.Connection) -> TrainConfig:
    """The training settings of the active interest version.

    A stored key that is neither a TrainConfig field nor one of VERSION_PARAMS is an error
    (ValueError naming it): a version trained with settings this code does not know."""
    version = active_version(conn, KIND)
    if version is None:
        raise LookupError("no active interest model: run `recsys-db jobs run train-interest`")
    params = version_params(conn, version)
    try:
        return TrainConfig.from_params({k: v for k, v in params.items()
                                        if k not in VERSION_PARAMS})
    except ValueError as exc:
        raise ValueError(f"interest version {version}: {exc}") from None


def load_model(conn: psycopg.Connection, version: int | None = None) -> LoadedModel:
    """The weights of `version` (default: the active interest version)."""
    version = version if version is not None else active_version(conn, KIND)
    if version is None:
        raise LookupError("no active interest model: run `recsys-db jobs run train-interest`")
    row = conn.execute(_sql()["blob"], {"version": version}).fetchone()
    if row is None:
        raise LookupError(f"model version {version} has no stored weights")
    if row[1] != BLOB_FORMAT:
        raise LookupError(f"model version {version} was stored as {row[1]!r}, which this "
                          f"recsys-db cannot load ({BLOB_FORMAT!r}): run train-interest again")
    model, items, categories = model_from_blob(bytes(row[0]))
    return LoadedModel(version, model, items, categories)
