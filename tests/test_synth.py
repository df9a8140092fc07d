"""The synthetic Taobao-format generator: determinism, format, planted structure, speed."""

from __future__ import annotations

import gzip
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_db import synth

USERS, ITEMS, EVENTS, SEED = 2_000, 2_000, 200_000, 11


@pytest.fixture(scope="module")
def spec() -> synth.SyntheticSpec:
    return synth.make_spec(USERS, ITEMS, EVENTS, SEED)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synth.GenerateStats]:
    path = tmp_path_factory.mktemp("synth") / "events.csv"
    return path, synth.generate(path, USERS, ITEMS, EVENTS, SEED)


@pytest.fixture(scope="module")
def frame(generated: tuple[Path, synth.GenerateStats]) -> pd.DataFrame:
    return pd.read_csv(generated[0])


def _small(out, seed: int = 5, **options) -> synth.GenerateStats:
    return synth.generate(out, users=300, items=600, events=20_000, seed=seed, **options)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    _small(a)
    _small(b)
    _small(c, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_streams_and_gzip_write_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    _small(path)
    text, raw = io.StringIO(), io.BytesIO()
    _small(text)
    _small(raw)
    assert text.getvalue().encode() == path.read_bytes() == raw.getvalue()
    gz1, gz2 = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    _small(gz1)
    _small(gz2)
    assert gz1.read_bytes() == gz2.read_bytes()
    assert gzip.decompress(gz1.read_bytes()) == path.read_bytes()


def test_spec_is_rebuilt_from_parameters_alone() -> None:
    one = synth.make_spec(USERS, ITEMS, EVENTS, SEED)
    two = synth.make_spec(USERS, ITEMS, EVENTS, SEED)
    other_load = synth.make_spec(USERS * 2, ITEMS, EVENTS * 3, SEED)
    catalog = ("category_popularity", "slot_item", "slot_cdf", "related_target", "related_weight")
    for name in catalog:
        assert np.array_equal(getattr(one, name), getattr(two, name))
        # the catalog and the migration matrix depend on items, categories and seed only
        assert np.array_equal(getattr(one, name), getattr(other_load, name))
    assert np.array_equal(one.user_event_counts, two.user_event_counts)
    assert int(one.user_event_counts.sum()) == EVENTS
    assert not np.array_equal(
        one.related_weight, synth.make_spec(USERS, ITEMS, EVENTS, SEED + 1).related_weight
    )


def test_format_counts_and_window(
    generated: tuple[Path, synth.GenerateStats], frame: pd.DataFrame, spec: synth.SyntheticSpec
) -> None:
    path, stats = generated
    with path.open() as handle:
        assert handle.readline() == synth.HEADER
    assert list(frame.columns) == ["user_id", "item_id", "category_id", "behavior", "ts"]
    assert len(frame) == EVENTS == stats.rows
    for column in ("user_id", "item_id", "category_id", "ts"):
        assert frame[column].dtype.kind == "i"
    assert set(frame["behavior"]) == set(synth.BEHAVIORS)
    start = synth.TAOBAO_START_TS
    assert frame["ts"].min() >= start
    assert frame["ts"].max() < start + 9 * 86_400
    per_user = frame.groupby("user_id").size()
    assert list(per_user.index) == list(range(1, USERS + 1))
    assert per_user.min() >= 4
    assert np.array_equal(per_user.to_numpy(), spec.user_event_counts)
    assert frame["user_id"].is_monotonic_increasing
    same_user = frame["user_id"].diff() == 0
    assert (frame["ts"].diff()[same_user] > 0).all(), "a user's timestamps strictly increase"
    assert frame["item_id"].between(1, ITEMS).all()
    assert np.array_equal(spec.item_category[frame["item_id"]], frame["category_id"])
    assert stats.users == USERS
    assert stats.items_used == frame["item_id"].nunique()
    assert stats.categories == spec.n_categories == max(10, ITEMS // 40)
    assert stats.categories_used == frame["category_id"].nunique()


def test_behavior_mix(frame: pd.DataFrame) -> None:
    shares = frame["behavior"].value_counts(normalize=True)
    for behavior, expected in zip(synth.BEHAVIORS, (0.90, 0.05, 0.03, 0.02), strict=True):
        assert shares[behavior] == pytest.approx(expected, abs=0.004), behavior


def test_popularity_and_activity_are_heavy_tailed(frame: pd.DataFrame) -> None:
    item_counts = frame["item_id"].value_counts()
    top = item_counts.iloc[: ITEMS // 100].sum() / len(frame)
    assert top > 0.10, f"top 1% of items get {top:.1%} of events"
    per_user = frame.groupby("user_id").size()
    assert per_user.max() > 10 * per_user.median()


def test_true_next_category_distribution(spec: synth.SyntheticSpec) -> None:
    p = spec.params
    for category in (1, 7, spec.n_categories):
        probs = spec.next_category_probs(category)
        assert probs.shape == (spec.n_categories,)
        assert probs.sum() == pytest.approx(1.0)
        leave = (1 - p.review) * (1 - p.stay)
        pop_self = spec.category_popularity[category - 1]
        assert probs[category - 1] == pytest.approx(1 - leave + leave * p.jump * pop_self)
        related = spec.related_categories(category)
        assert str(category) not in related
        assert p.related_min <= len(related) <= p.related_max
        assert sum(related.values()) == pytest.approx(1.0)
        as_dict = spec.next_category_distribution(str(category))
        assert as_dict[str(category)] == pytest.approx(probs[category - 1])
    no_jump = synth.make_spec(USERS, ITEMS, EVENTS, SEED, jump=0.0)
    assert set(no_jump.next_category_distribution(3)) == {"3", *no_jump.related_categories(3)}
    with pytest.raises(ValueError):
        spec.next_category_probs(spec.n_categories + 1)


def test_empirical_transitions_match_the_planted_chain(
    frame: pd.DataFrame, spec: synth.SyntheticSpec
) -> None:
    same_user = frame["user_id"].to_numpy()[1:] == frame["user_id"].to_numpy()[:-1]
    current = frame["category_id"].to_numpy()[:-1][same_user]
    following = frame["category_id"].to_numpy()[1:][same_user]
    categories, counts = np.unique(current, return_counts=True)
    frequent = categories[np.argsort(-counts, kind="stable")[:10]]
    for category in frequent:
        mask = current == category
        empirical = np.bincount(following[mask] - 1, minlength=spec.n_categories) / mask.sum()
        distance = 0.5 * np.abs(empirical - spec.next_category_probs(category)).sum()
        assert distance < 0.05, (category, int(mask.sum()), distance)


def test_progress_is_reported_per_block() -> None:
    seen: list[int] = []
    stats = _small(io.StringIO(), progress=seen.append, block_events=3_000)
    assert len(seen) > 3
    assert seen == sorted(seen)
    assert seen[-1] == stats.rows == 20_000


def test_tiny_catalogs_work() -> None:
    for items, categories in ((2, 2), (5, 3), (7, 6)):
        text = io.StringIO()
        stats = synth.generate(text, 3, items, 40, seed=1, n_categories=categories)
        assert stats.rows == 40
        assert text.getvalue().count("\n") == 41
        spec = synth.make_spec(3, items, 40, 1, n_categories=categories)
        for category in range(1, categories + 1):
            assert spec.next_category_probs(category).sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": 10, "items": 10, "events": 39},  # fewer than 4 events per user
        {"users": 10, "items": 1, "events": 100},
        {"users": 10, "items": 10, "events": 100, "stay": 1.0},
        {"users": 10, "items": 10, "events": 100, "n_categories": 11},
        {"users": 10, "items": 10, "events": 100, "behavior_shares": (0.5, 0.5, 0.5, 0.0)},
        {"users": 1, "items": 10, "events": 800_000},  # more events than seconds
    ],
)
def test_bad_parameters_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        synth.make_spec(**kwargs)


def test_speed_smoke_one_million_events(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    started = time.perf_counter()
    stats = synth.generate(path, users=10_000, items=50_000, events=1_000_000, seed=3)
    seconds = time.perf_counter() - started
    print(f"\nsynth: 1M events in {seconds:.2f} s ({stats.rows / seconds:,.0f} rows/s)")
    assert stats.rows == 1_000_000
    assert seconds < 20.0
