"""Compile a trained LightGBM model into a PostgreSQL SQL function returning its exact raw score.

`compile_booster(booster, "recsys.rank_v1")` returns the text of

    CREATE OR REPLACE FUNCTION "recsys"."rank_v1"(f double precision[])
    RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ... $$;

where `f[1..n]` are the model's features (in the booster's feature order, or in the order given
by `feature_names`) and SQL NULL or 'NaN'::float8 is a missing value. The body is a single
`SELECT <expression>` (no FROM, no sub-query), so PostgreSQL inlines it into the calling query:
the expression is compiled once per query and evaluated per row without a function call.

The expression is the sum, left to right and in double precision, of one nested `CASE` per tree,
exactly as LightGBM's `GBDT::PredictRaw` adds tree outputs to 0.0. Each split reproduces
`Tree::NumericalDecision` (LightGBM 4.x), applied to the value LightGBM's dense predictor sees:

* the dense-matrix predictor drops |x| <= kZeroThreshold (`1e-35f` widened to double,
  1.0000000180025095e-35), so such "tiny" values (and +-0) reach the tree as 0.0;
* `missing_type` None: NaN becomes 0.0, then `x <= threshold` decides;
* `missing_type` Zero: NaN becomes 0.0; a (tiny or) zero value goes the default direction
  (`default_left`), anything else compares `x <= threshold`;
* `missing_type` NaN: NaN goes the default direction; zero and everything else compare normally.

SQL NULL is treated like NaN. PostgreSQL orders 'NaN' above every number and `NULL <= t` is
NULL, so each split is written such that the common case costs one comparison: a split whose
missing values go right is `CASE WHEN x <= t THEN <left> ELSE <right> END` (NaN and NULL both
fall through to ELSE); one whose missing values go left is
`CASE WHEN x > t AND x <> 'NaN' THEN <right> ELSE <left> END`. Only the rarer combinations in
which zero must leave the direction its comparison would give (zero-as-missing splits, and
thresholds inside [-kZeroThreshold, kZeroThreshold)) need explicit zero tests.

Thresholds and leaf values are written as `'<repr(float)>'::float8`: Python's `repr` is the
shortest string that round-trips, and PostgreSQL's float8 input (correctly rounded `strtod`)
reads it back to the identical double.

`compile_booster_set_function` writes the same model as a one-row set-returning function for
`CROSS JOIN LATERAL`; PostgreSQL inlines that into the FROM clause, where each used feature is
read once per row into columns and every split is one comparison: about twice as fast per row.

Performance notes (PostgreSQL 18, 200 rows x 200 trees of depth 6, prepared statement): scalar
~25 ms, set-returning ~12 ms per query. Planning a query that calls either function parses and
inlines the whole body (~0.3-0.5 ms per tree), so call them from prepared statements, PL/pgSQL
or SQL functions (whose plans are cached), not from ad-hoc SQL per request. On servers built
with LLVM, JIT triggers for large batches (cost ~50 per row per 300 trees vs jit_above_cost
100000) and compiling such an expression is slow: `SET jit = off` for batch scoring.

Boosting `rf` (average_output): LightGBM divides by the number of iterations only when it
converts to the non-raw prediction; its raw score, reproduced here, is the plain sum.
A feature position beyond the end of `f` reads as NULL, i.e. missing.

Not supported (ValueError): categorical splits, linear trees, multi-class models.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lightgbm is only needed by the caller, who already holds a Booster
    import lightgbm

__all__ = [
    "K_ZERO_THRESHOLD",
    "compile_booster",
    "compile_booster_set_function",
    "compile_booster_sql_expression",
    "float8_literal",
    "used_trees",
]

#: LightGBM's `kZeroThreshold`: declared `const double kZeroThreshold = 1e-35f;`, i.e. the float
#: 1e-35 widened to double (1.0000000180025095e-35), not the double 1e-35.
K_ZERO_THRESHOLD: float = struct.unpack("<f", struct.pack("<f", 1e-35))[0]

_IDENT = r"[a-z_][a-z0-9_]{0,62}"
_FUNCTION_NAME = re.compile(rf"({_IDENT})\.({_IDENT})")
_ARG_NAME = re.compile(rf"{_IDENT}(?:\.{_IDENT})?")
_NAN = "'NaN'::float8"

Node = dict[str, Any]


def float8_literal(value: float) -> str:
    """A SQL float8 constant that PostgreSQL parses to exactly `value` (also +-inf, NaN, -0.0)."""
    value = float(value)
    if math.isnan(value):
        return _NAN
    if math.isinf(value):
        return "'Infinity'::float8" if value > 0 else "'-Infinity'::float8"
    return f"'{value!r}'::float8"


def _quote_ident(name: str) -> str:
    # Callers validate `name` against _IDENT first; quoting keeps reserved words usable.
    return '"' + name.replace('"', '""') + '"'


def _function_identifier(function_name: str) -> str:
    match = _FUNCTION_NAME.fullmatch(function_name) if isinstance(function_name, str) else None
    if match is None:
        raise ValueError(
            f"invalid function name {function_name!r}: expected 'schema.name' with lowercase "
            "letters, digits and underscores (each part at most 63 characters, not starting "
            "with a digit)")
    return ".".join(_quote_ident(part) for part in match.groups())


def _arg_identifier(arg: str) -> str:
    if not isinstance(arg, str) or _ARG_NAME.fullmatch(arg) is None:
        raise ValueError(
            f"invalid argument name {arg!r}: expected an identifier or 'table.column' with "
            "lowercase letters, digits and underscores")
    return ".".join(_quote_ident(part) for part in arg.split("."))


# --------------------------------------------------------------------------- the model

def used_trees(booster: lightgbm.Booster) -> tuple[dict[str, Any], list[Node]]:
    """The JSON dump of `booster` and the tree structures `booster.predict` uses by default.

    `predict` uses `best_iteration` when it is set (> 0), else every iteration; the dump is taken
    with the same `num_iteration`. Raises ValueError for what the compiler cannot reproduce:
    multi-class models, categorical splits and linear trees.
    """
    best = int(getattr(booster, "best_iteration", 0) or 0)
    dump = booster.dump_model(num_iteration=best if best > 0 else -1)
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    if per_iteration != 1:
        raise ValueError(
            f"the model has {per_iteration} trees per iteration (multi-class); only single-output "
            "models (regression, binary, lambdarank, ...) can be compiled")
    trees = [info["tree_structure"] for info in dump["tree_info"]]
    for index, tree in enumerate(trees):
        _check_tree(tree, index)
    return dump, trees


def _check_tree(tree: Node, index: int) -> None:
    stack = [tree]
    while stack:
        node = stack.pop()
        if "leaf_value" in node or "split_feature" not in node:
            if "leaf_coeff" in node or "leaf_const" in node:
                raise ValueError(f"tree {index} has linear leaves (linear_tree=True); "
                                 "only constant leaves can be compiled")
            continue
        decision = node.get("decision_type")
        if decision == "==":
            raise ValueError(
                f"tree {index} has a categorical split on feature {node['split_feature']}; "
                "categorical splits are not supported (encode the feature numerically)")
        if decision != "<=":
            raise ValueError(f"tree {index}: unsupported decision_type {decision!r}")
        if node.get("missing_type") not in ("None", "Zero", "NaN"):
            raise ValueError(f"tree {index}: unsupported missing_type {node.get('missing_type')!r}")
        stack.append(node["left_child"])
        stack.append(node["right_child"])


def _feature_positions(dump: dict[str, Any], feature_names: Sequence[str] | None) -> list[int]:
    """1-based position in the SQL array of each of the booster's features."""
    names: list[str] = list(dump["feature_names"])
    if feature_names is None:
        return list(range(1, len(names) + 1))
    given = list(feature_names)
    if len(set(given)) != len(given):
        raise ValueError("feature_names has duplicates")
    position = {name: i + 1 for i, name in enumerate(given)}
    missing = [name for name in names if name not in position]
    if missing:
        raise ValueError(f"feature_names lacks the model's feature(s) {missing[:10]}")
    return [position[name] for name in names]


# --------------------------------------------------------------------------- one split

def _split_sql(x: str, threshold: float, missing_type: str, default_left: bool,
               left: str, right: str) -> str:
    """`CASE` choosing `left`/`right` like LightGBM's NumericalDecision for the SQL value `x`.

    Inputs fall into three classes: M (NULL or NaN), Z (|x| <= kZeroThreshold, including +-0)
    and O (anything else, +-Infinity included). O always goes left iff x <= t. M and Z go to a
    fixed side that depends on the missing type; the cheapest SQL form is chosen for each case.
    """
    t = threshold
    kz = K_ZERO_THRESHOLD
    lit = float8_literal(t)
    zero_goes_left = t >= 0.0  # where a value that reached the tree as 0.0 compares
    m_left = default_left if missing_type in ("Zero", "NaN") else zero_goes_left
    z_left = default_left if missing_type == "Zero" else zero_goes_left
    if not -kz <= t < kz:
        # Every Z value compares like 0.0 (all of Z lies on one side of t): only Zero-type
        # splits can send Z elsewhere.
        if z_left == zero_goes_left:
            if m_left:
                return f"CASE WHEN {x} > {lit} AND {x} <> {_NAN} THEN {right} ELSE {left} END"
            return f"CASE WHEN {x} <= {lit} THEN {left} ELSE {right} END"
        neg, pos = float8_literal(-kz), float8_literal(kz)
        if not z_left:  # Zero type, default right, t >= kz: left iff O and x <= t
            return (f"CASE WHEN {x} <= {lit} AND ({x} < {neg} OR {x} > {pos}) "
                    f"THEN {left} ELSE {right} END")
        # Zero type, default left, t < -kz: right iff O and x > t
        return (f"CASE WHEN {x} > {lit} AND ({x} < {neg} OR ({x} > {pos} AND {x} <> {_NAN})) "
                f"THEN {right} ELSE {left} END")
    # Threshold inside the zero band (possible only in hand-made models): spell it out.
    neg, pos = float8_literal(-kz), float8_literal(kz)
    return (f"CASE WHEN CASE WHEN {x} IS NULL OR {x} = {_NAN} THEN {str(m_left).upper()} "
            f"WHEN {x} >= {neg} AND {x} <= {pos} THEN {str(z_left).upper()} "
            f"ELSE {x} <= {lit} END THEN {left} ELSE {right} END")


SplitSql = Callable[[Node, str, str], str]


def _tree_sql(node: Node, split: SplitSql) -> str:
    """Nested CASE of one tree; `split(node, left_sql, right_sql)` writes one split."""
    if "split_feature" not in node:
        return float8_literal(node["leaf_value"])
    return split(node, _tree_sql(node["left_child"], split), _tree_sql(node["right_child"], split))


def _sum_sql(trees: list[Node], split: SplitSql) -> str:
    if not trees:
        return float8_literal(0.0)
    # LightGBM: output = 0.0; output += tree_i(x) for i in order. 0.0 + a == a (up to the sign
    # of zero), and SQL's `+` is left-associative, so `t1 + t2 + ...` adds in the same order.
    # boosting=rf ("average_output"): LightGBM divides by the number of iterations only in
    # the non-raw Predict path; the raw score is the plain sum, so nothing to do here.
    return "\n  + ".join(_tree_sql(tree, split) for tree in trees)


def _raw_split(x_of: Callable[[int], str]) -> SplitSql:
    """Splits reading the raw SQL value `x_of(feature)` (NULL/NaN/zero handled per split)."""
    def split(node: Node, left: str, right: str) -> str:
        return _split_sql(x_of(int(node["split_feature"])), float(node["threshold"]),
                          node["missing_type"], bool(node["default_left"]), left, right)
    return split


# Sentinel columns of the set-returning form: the feature value as the split must see it, with
# missing (M: NULL/NaN) and zero-band (Z) values replaced by 0 or +-Infinity so that `col <= t`
# alone decides (thresholds are finite; a real +-Infinity input goes where its sentinel goes).
# kind: (M becomes, Z becomes)
_SENTINELS: dict[str, tuple[str, str]] = {
    "v": ("0", "0"),  # missing_type None
    "zl": ("'-Infinity'::float8", "'-Infinity'::float8"),  # Zero, default left
    "zr": ("'Infinity'::float8", "'Infinity'::float8"),  # Zero, default right
    "nl": ("'-Infinity'::float8", "0"),  # NaN, default left
    "nr": ("'Infinity'::float8", "0"),  # NaN, default right
}


def _sentinel_kind(missing_type: str, default_left: bool) -> str:
    if missing_type == "None":
        return "v"
    prefix = "z" if missing_type == "Zero" else "n"
    return prefix + ("l" if default_left else "r")


def _sentinel_sql(x: str, kind: str) -> str:
    m, z = _SENTINELS[kind]
    kz = K_ZERO_THRESHOLD
    return (f"CASE WHEN {x} IS NULL OR {x} = {_NAN} THEN {m} "
            f"WHEN {x} >= {float8_literal(-kz)} AND {x} <= {float8_literal(kz)} THEN {z} "
            f"ELSE {x} END")


# --------------------------------------------------------------------------- public API

def compile_booster_sql_expression(booster: lightgbm.Booster, arg: str = "f",
                                   feature_names: Sequence[str] | None = None) -> str:
    """A SQL expression over the float8[] `arg` (a column, `table.column` or parameter name)
    equal to `booster.predict(X, raw_score=True)`, for inlining into a query by hand.

    `arg[i]` is the booster's i-th feature (1-based), or the feature named `feature_names[i-1]`
    when `feature_names` is given (it may hold more names than the model uses).
    """
    ref = _arg_identifier(arg)
    dump, trees = used_trees(booster)
    positions = _feature_positions(dump, feature_names)
    return _sum_sql(trees, _raw_split(lambda j: f"{ref}[{positions[j]}]"))


def compile_booster(booster: lightgbm.Booster, function_name: str,
                    feature_names: list[str] | None = None) -> str:
    """SQL text creating `function_name(f double precision[]) RETURNS double precision`.

    The function returns exactly `booster.predict(X, raw_score=True)` (the trees LightGBM uses
    by default: up to `best_iteration` when it is set) for `f` = one row of `X`; SQL NULL and
    'NaN' elements (and a NULL array) are missing values. `f[i]` is the booster's i-th feature,
    or, when `feature_names` is given, the feature named `feature_names[i-1]` (every model
    feature must be named; extra names are ignored).

    The body is one `SELECT <expression>`, which PostgreSQL inlines into the calling query:
    the argument expression is then copied into every split, so pass a column or a parameter
    (or build the array in a sub-select with OFFSET 0). `ARRAY[c.a, c.b, ...]` works but is
    rebuilt at each split (~3x slower), and an argument costing more than 10 operators (e.g.
    `ARRAY[ln(c.a), ...]`) stops inlining: each call then initialises the whole expression
    (~2-5 ms per row). `compile_booster_set_function` is less sensitive to this.

    `function_name` must be `schema.name` in lowercase; anything else raises ValueError, as do
    categorical splits, linear trees and multi-class models.
    """
    target = _function_identifier(function_name)
    dump, trees = used_trees(booster)
    positions = _feature_positions(dump, feature_names)
    expression = _sum_sql(trees, _raw_split(lambda j: f"f[{positions[j]}]"))
    return (
        f"CREATE OR REPLACE FUNCTION {target}(f double precision[])\n"
        "RETURNS double precision\n"
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE\n"
        f"AS $$\n{_header(dump, trees, positions)}\nSELECT\n  {expression}\n$$;\n"
    )


def compile_booster_set_function(booster: lightgbm.Booster, function_name: str,
                                 feature_names: list[str] | None = None) -> str:
    """Like `compile_booster`, but `RETURNS SETOF double precision` (always exactly one row),
    for `... CROSS JOIN LATERAL function_name(c.f) AS s(score)`.

    PostgreSQL inlines this set-returning SQL function into the FROM clause of the caller. Its
    body reads each used feature once per row into sentinel columns (a sub-select with OFFSET 0
    keeps them from being folded back into every split), so each split is a single comparison
    of a column with a constant: about twice as fast per row as the scalar function, whose
    splits each subscript the array (and test for NaN where missing values go left).
    """
    target = _function_identifier(function_name)
    dump, trees = used_trees(booster)
    positions = _feature_positions(dump, feature_names)
    used: dict[tuple[str, int], str] = {}

    def split(node: Node, left: str, right: str) -> str:
        kind = _sentinel_kind(node["missing_type"], bool(node["default_left"]))
        position = positions[int(node["split_feature"])]
        column = used.setdefault((kind, position), f"{kind}{position}")
        return (f"CASE WHEN {column} <= {float8_literal(float(node['threshold']))} "
                f"THEN {left} ELSE {right} END")

    expression = _sum_sql(trees, split)
    columns = ",\n    ".join(f"{_sentinel_sql(f'f[{position}]', kind)} AS {column}"
                              for (kind, position), column in sorted(used.items()))
    source = f"(SELECT\n    {columns}\n  OFFSET 0) AS u" if columns else "(SELECT) AS u"
    return (
        f"CREATE OR REPLACE FUNCTION {target}(f double precision[])\n"
        "RETURNS SETOF double precision\n"
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1\n"
        f"AS $$\n{_header(dump, trees, positions)}\nSELECT\n  {expression}\n"
        f"FROM {source}\n$$;\n"
    )


def _header(dump: dict[str, Any], trees: list[Node], positions: list[int]) -> str:
    names = list(dump["feature_names"])
    mapping = ", ".join(f"f[{positions[j]}]={_comment_safe(name)}" for j, name in enumerate(names))
    objective = _comment_safe(str(dump.get("objective", "")))
    return f"-- LightGBM ({objective}), {len(trees)} trees, raw score; features: {mapping}"


def _comment_safe(text: str) -> str:
    """`text` with anything that could end a comment or the $$ body replaced."""
    return re.sub(r"[^A-Za-z0-9_.:=+\- ]", "?", text)[:200]
