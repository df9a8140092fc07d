"""The generator's parameters (`SynthParams`), its constants and the seeded random streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEADER = "user_id,item_id,category_id,behavior,ts\n"
BEHAVIORS = ("pv", "cart", "fav", "buy")
TAOBAO_START_TS = 1511568000  # 2017-11-25 00:00:00 UTC
SECONDS_PER_DAY = 86_400

CATALOG_STREAM = 0
USERS_STREAM = 1
BLOCK_STREAM = 2
RING_OFFSETS = (1, -1, 2, -2)
MAX_RELATED = len(RING_OFFSETS) + 1


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator; with the seed, it defines the output exactly."""

    users: int
    items: int
    events: int
    seed: int = 0
    n_categories: int | None = None
    start_ts: int = TAOBAO_START_TS
    days: int = 9
    stay: float = 0.6
    jump: float = 0.05
    review: float = 0.15
    review_window: int = 5
    item_zipf: float = 1.1
    category_zipf: float = 1.0
    category_size_sigma: float = 1.0
    related_min: int = 3
    related_max: int = 5
    related_pop_power: float = 0.5
    activity_sigma: float = 1.2
    min_user_events: int = 4
    session_mean_events: float = 10.0
    click_gap_median_s: float = 30.0
    session_gap_median_s: float = 3 * 3600.0
    behavior_shares: tuple[float, float, float, float] = (0.90, 0.05, 0.03, 0.02)
    review_buy_lift: float = 5.0
    block_events: int = 1 << 18

    @property
    def categories(self) -> int:
        """The number of categories, with the default ``max(10, items // 40)`` resolved."""
        if self.n_categories is not None:
            return self.n_categories
        return min(self.items, max(10, self.items // 40))

    @property
    def window_s(self) -> int:
        return self.days * SECONDS_PER_DAY

    def validate(self) -> None:
        """Raise ValueError naming the first parameter that is out of range."""
        require(self.users >= 1, "users must be >= 1")
        require(self.items >= 2, "items must be >= 2")
        require(self.min_user_events >= 1, "min_user_events must be >= 1")
        require(
            self.events >= self.min_user_events * self.users,
            f"events must be >= min_user_events * users = {self.min_user_events * self.users}",
        )
        require(2 <= self.categories <= self.items, "n_categories must be in [2, items]")
        require(self.days >= 1, "days must be >= 1")
        require(self.start_ts >= 0 and self.start_ts + self.window_s < 2**32, "bad start_ts")
        for name in ("stay", "jump", "review"):
            require(0.0 <= getattr(self, name) < 1.0, f"{name} must be in [0, 1)")
        require(self.review_window >= 1, "review_window must be >= 1")
        require(
            1 <= self.related_min <= self.related_max <= MAX_RELATED,
            f"need 1 <= related_min <= related_max <= {MAX_RELATED}",
        )
        require(self.session_mean_events >= 1.0, "session_mean_events must be >= 1")
        require(self.block_events >= 1, "block_events must be >= 1")
        shares = np.asarray(self.behavior_shares, dtype=float)
        require(
            shares.shape == (4,) and bool(np.all(shares >= 0)) and abs(shares.sum() - 1) < 1e-9,
            "behavior_shares must be 4 non-negative shares summing to 1",
        )
        behavior_tables(self)  # raises when the re-view lift is infeasible


def behavior_tables(params: SynthParams) -> np.ndarray:
    """(2, 4) cumulative behavior probabilities: row 0 fresh events, row 1 re-views."""
    shares = np.asarray(params.behavior_shares, dtype=np.float64)
    on_review = shares.copy()
    on_review[3] = min(1.0, shares[3] * params.review_buy_lift)
    on_review[0] = max(0.0, 1.0 - on_review[1:].sum())
    on_review /= on_review.sum()
    r = params.review
    fresh = (shares - r * on_review) / (1.0 - r)
    require(bool(np.all(fresh >= -1e-12)), "review_buy_lift too high for behavior_shares")
    fresh = np.clip(fresh, 0.0, None)
    return np.cumsum(np.stack([fresh / fresh.sum(), on_review]), axis=1)


def stream(seed: int, *key: int) -> np.random.Generator:
    """The independent random stream `key` of a seed (catalog, users, one per block)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
