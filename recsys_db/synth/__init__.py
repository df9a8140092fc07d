"""Deterministic synthetic e-commerce event log in Taobao UserBehavior CSV format.

Output: a header ``user_id,item_id,category_id,behavior,ts`` then one row per event, e.g.
``17,1234,88,pv,1511544070``. Ids are small positive integers (users ``1..N``, items
``1..M``, categories ``1..C``); ``ts`` is integer unix seconds (UTC); ``behavior`` is one of
``pv``/``cart``/``fav``/``buy``. Rows are ordered by user, then time; a user's timestamps are
strictly increasing, so file order equals event order. A fixed seed (and the same numpy
version) gives a byte-identical file.

The process (``r`` = ``review``, ``s`` = ``stay``, ``J`` = ``jump``):

Catalog (built from the parameters and seed alone, see `make_spec`):
  * ``C`` categories (default ``max(10, M // 40)``); category sizes are ``1 +`` a
    largest-remainder split of ``M - C`` items proportional to ``LogNormal(0, size_sigma)``.
  * category popularity ``pop[c] ∝ rank_c ** -category_zipf`` (ranks a random permutation).
  * item popularity in its category ``∝ rank ** -item_zipf`` (item ids randomly shuffled).
  * related categories: categories sit on a ring in random order; category ``i`` relates to
    its first ``k_i ~ U{related_min..related_max}`` candidates among ring offsets
    ``+1, -1, +2, -2`` and one random long-range link, with weights
    ``w_ij ∝ Gamma(2, 1) * pop[j] ** related_pop_power`` normalised per row: ``W[i, j]``.

Users: event counts ``n_u = min_user_events +`` a largest-remainder split of the rest of
``events`` proportional to ``LogNormal(0, activity_sigma)`` (total exact, heavy-tailed).

Events of a user (a Markov chain over categories, the planted signal):
  * the first event's category is drawn from ``pop``;
  * each later event, with uniform ``u``: ``u < r`` re-views an item seen in the last
    ``review_window`` events of the current same-category run (category kept);
    else with probability ``s`` a fresh item in the same category; else with probability ``J``
    a fresh item of a category drawn from ``pop`` (may be the same one); else a fresh item
    of a related category drawn from ``W[cur]``. Hence exactly::

        P(next = j | cur = i) = (r + (1-r) s) [i = j] + (1-r)(1-s) ((1-J) W[i, j] + J pop[j])

    (`SyntheticSpec.next_category_probs`).
  * fresh items are drawn by in-category popularity.
  * behavior: re-views buy ``review_buy_lift`` times more often; fresh-event shares are set
    so that the overall mix is ``behavior_shares`` (default pv 90 / cart 5 / fav 3 / buy 2).
  * time: within-session gaps ``1 + floor(LogNormal(ln click_gap_median_s, 1.2))`` seconds;
    a new session starts with probability ``1 / session_mean_events`` and waits
    ``1 + floor(LogNormal(ln session_gap_median_s, 1.0))``; a timeline longer than the window
    has its slack (gaps minus 1 s) scaled down; it starts at a uniform offset so that it fits
    in ``[start_ts, start_ts + days * 86400)`` (default 2017-11-25 00:00 UTC, 9 days).

Generation is vectorised with numpy over blocks of users (about ``block_events`` events per
block), each block with its own seeded stream, written as soon as it is formatted, so memory

Modules: `params` (the knobs, constants, random streams), `spec` (the planted structure),
`events` (simulation), `writer` (CSV output), `arrays` (numpy helpers they share).
"""

from recsys_db.synth.events import EventBlock, iter_blocks
from recsys_db.synth.params import BEHAVIORS, HEADER, SECONDS_PER_DAY, TAOBAO_START_TS, SynthParams
from recsys_db.synth.spec import SyntheticSpec, make_spec, params_dict, spec_from_params
from recsys_db.synth.writer import GenerateStats, ProgressFn, generate, write_spec

__all__ = [
    "BEHAVIORS", "HEADER", "SECONDS_PER_DAY", "TAOBAO_START_TS", "EventBlock", "GenerateStats",
    "ProgressFn", "SynthParams", "SyntheticSpec", "generate", "iter_blocks", "make_spec",
    "params_dict", "spec_from_params", "write_spec",
]
