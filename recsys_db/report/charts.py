"""The report's charts: each function draws one figure and returns it as PNG bytes.

Figures are `matplotlib.figure.Figure` objects rendered by the Agg canvas, never registered with
pyplot, so nothing global is left open. Text from the database (ids) is drawn literally:
mathtext parsing is off, so a `$` in an id is not read as a formula.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, ParamSpec

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

P = ParamSpec("P")
DPI = 100
OTHER_COLOR = "#c8c8c8"
STYLE = {"text.parse_math": False, "font.size": 9, "axes.spines.top": False,
         "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3}


def _chart(draw: Callable[P, Figure]) -> Callable[P, bytes]:
    """Run `draw` under the report style and return its figure as PNG bytes."""
    @functools.wraps(draw)
    def png(*args: P.args, **kwargs: P.kwargs) -> bytes:
        with mpl.rc_context(STYLE):
            fig = draw(*args, **kwargs)
            FigureCanvasAgg(fig)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight",
                        metadata={"Software": None})
            fig.clear()
        return buf.getvalue()
    return png


def _dates(ax: Any) -> None:
    locator = AutoDateLocator(maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


@_chart
def daily_events(days: Sequence[date], by_behavior: dict[str, Sequence[int]]) -> Figure:
    """Stacked bars: events per day, one colour per behavior."""
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    bottom = np.zeros(len(days))
    for name, counts in by_behavior.items():
        values = np.asarray(counts, dtype=float)
        ax.bar(days, values, bottom=bottom, width=0.85, label=name)
        bottom += values
    ax.set_ylabel("events per day")
    ax.set_title("Events per day (UTC) by behavior")
    ax.legend(loc="upper left", fontsize=8, ncols=min(4, len(by_behavior)))
    _dates(ax)
    return fig


@_chart
def daily_active(days: Sequence[date], users: Sequence[int], items: Sequence[int]) -> Figure:
    """Users and items with at least one event per day (items on the right axis)."""
    fig = Figure(figsize=(9, 3.0))
    ax = fig.add_subplot()
    ax.plot(days, users, marker="o", markersize=3, color="C0", label="users")
    ax.set_ylabel("active users", color="C0")
    right = ax.twinx()
    right.plot(days, items, marker="s", markersize=3, color="C1", label="items")
    right.set_ylabel("active items", color="C1")
    right.grid(False)
    right.spines["right"].set_visible(True)
    ax.set_ylim(bottom=0)
    right.set_ylim(bottom=0)
    ax.set_title("Active users and items per day (UTC)")
    _dates(ax)
    return fig


@_chart
def training_curves(history: Sequence[dict[str, float]], best_epoch: int | None) -> Figure:
    """Training loss and the validation metrics per epoch of one interest model."""
    fig = Figure(figsize=(9, 3.2))
    loss_ax, valid_ax = fig.subplots(1, 2)
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    loss_ax.plot(epochs, [h.get("loss", np.nan) for h in history], marker="o", color="C3")
    loss_ax.set_title("training loss")
    keys = [k for k in ("valid_ndcg10", "valid_hr10", "valid_ndcg10_category",
                        "valid_hr10_category") if any(k in h for h in history)]
    for key in keys:
        valid_ax.plot(epochs, [h.get(key, np.nan) for h in history], marker="o",
                      markersize=3, label=key.removeprefix("valid_"))
    valid_ax.set_title("validation (each user's last event)")
    if keys:
        valid_ax.legend(fontsize=8)
    for ax in (loss_ax, valid_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
    if best_epoch:
        valid_ax.annotate("best ", (best_epoch, 1), xycoords=("data", "axes fraction"),
                          ha="right", va="top", fontsize=8, color="grey")
    return fig


@_chart
def eval_bars(results: Sequence[dict[str, Any]], metric: str) -> Figure:
    """Horizontal bars of `metric` per method, next item and next category side by side."""
    methods = list(dict.fromkeys(str(r.get("method")) for r in results))
    targets = list(dict.fromkeys(str(r.get("target")) for r in results))
    fig = Figure(figsize=(9, 0.9 + 0.45 * len(methods) * max(1, len(targets)) ** 0.5))
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(targets))
    y = np.arange(len(methods))
    for j, target in enumerate(targets):
        values = [next((float(r.get(metric) or 0) for r in results
                        if str(r.get("method")) == m and str(r.get("target")) == target), 0.0)
                  for m in methods]
        bars = ax.barh(y + j * height, values, height=height, label=f"next {target}")
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
    ax.set_yticks(y + height * (len(targets) - 1) / 2, methods)
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.set_title(f"Latest offline evaluation: {metric}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.margins(x=0.12)
    return fig


@_chart
def version_metrics(series: dict[str, dict[str, list[tuple[int, float]]]],
                    active: dict[str, int]) -> Figure:
    """Per model kind, its validation metrics over version ids; the active version starred."""
    fig = Figure(figsize=(9, 3.0))
    axes = np.atleast_1d(fig.subplots(1, len(series), squeeze=False)[0])
    for ax, (kind, metrics) in zip(axes, series.items(), strict=True):
        for name, points in metrics.items():
            xs, ys = zip(*points, strict=True)
            line = ax.plot(xs, ys, marker="o", markersize=4, label=name)[0]
            if kind in active and active[kind] in xs:
                at = xs.index(active[kind])
                ax.plot([xs[at]], [ys[at]], marker="*", markersize=13,
                        color=line.get_color(), linestyle="none")
        ax.set_title(f"{kind} (★ active)")
        ax.set_xlabel("version id")
        ids = sorted({x for points in metrics.values() for x, _ in points})
        if len(ids) <= 15:
            ax.set_xticks(ids, [str(i) for i in ids])
        ax.set_xlim(ids[0] - 0.5, ids[-1] + 0.5)
        ax.legend(fontsize=7)
    return fig


@_chart
def transition_heatmap(sources: Sequence[str], source_totals: Sequence[int],
                       stay: Sequence[float], targets: Sequence[str],
                       probability: np.ndarray) -> Figure:
    """P(next category | current category): rows the busiest categories, columns where they
    most often move; the cell of a category with itself is greyed (its share is in the label)."""
    fig = Figure(figsize=(10, 1.6 + 0.38 * len(sources)))
    ax = fig.add_subplot()
    masked = np.ma.masked_array(probability, mask=np.array(
        [[s == t for t in targets] for s in sources], dtype=bool).reshape(probability.shape))
    cmap = mpl.colormaps["Blues"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(masked, cmap=cmap, aspect="auto", vmin=0,
                      vmax=max(float(masked.max() or 0), 1e-9))
    for i, j in np.ndindex(probability.shape):
        if masked.mask[i, j]:
            ax.text(j, i, "self", ha="center", va="center", fontsize=6, color="grey")
        elif probability[i, j] >= 0.005:
            dark = probability[i, j] > 0.6 * float(masked.max())
            ax.text(j, i, f"{probability[i, j]:.0%}", ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "black")
    ax.set_xticks(range(len(targets)), targets, rotation=45, ha="right", fontsize=7.5)
    ax.set_yticks(range(len(sources)),
                  [f"{s}  (n={n:,}, stays {p:.0%})"
                   for s, n, p in zip(sources, source_totals, stay, strict=True)], fontsize=7.5)
    ax.set_xlabel("next category")
    ax.set_ylabel("current category")
    ax.grid(False)
    ax.set_title("Interest migration: P(next event's category | current category)")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, format="{x:.0%}")
    return fig


@_chart
def user_shares(user_id: str, days: Sequence[date], categories: Sequence[str],
                shares: np.ndarray, predicted: np.ndarray | None) -> Figure:
    """A user's daily category shares (stacked), then the predicted next-category shares."""
    fig = Figure(figsize=(9, 3.4))
    ax = fig.add_subplot()
    palette = mpl.colormaps["tab10"].colors
    colors = [palette[i] for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)][:len(categories) - 1]
    colors += [OTHER_COLOR]
    x = np.arange(len(days), dtype=float)
    if len(days) >= 2:
        ax.stackplot(x, shares.T, colors=colors, labels=categories, alpha=0.9)
    else:
        bottom = np.zeros(len(days))
        for j, label in enumerate(categories):
            ax.bar(x, shares[:, j], bottom=bottom, color=colors[j], label=label, width=0.6)
            bottom += shares[:, j]
    ticks = list(x)
    labels = [d.strftime("%m-%d") for d in days]
    if predicted is not None:
        at = len(days) - 1 + 1.2
        ax.axvline(at - 0.6, color="black", linestyle="--", linewidth=1)
        bottom_p = 0.0
        for j, share in enumerate(predicted):
            ax.bar([at], [share], bottom=bottom_p, color=colors[j], width=0.7, hatch="//",
                   edgecolor="white", linewidth=0)
            bottom_p += float(share)
        ticks.append(at)
        labels.append("predicted\nnext")
    ax.set_xticks(ticks, labels, fontsize=7.5)
    ax.set_xlim(-0.5, (ticks[-1] if ticks else 0) + 0.5)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.grid(False)
    ax.set_ylabel("share of the day's events")
    ax.set_title(f"User {user_id}: category shares per active day (UTC, behavior-weighted)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7.5, title="category",
              title_fontsize=8)
    return fig


@_chart
def latency(figures: dict[str, float], targets: dict[str, float]) -> Figure:
    """Latency figures (ms) and, when present, throughput (q/s) of the last benchmark run,
    each with its target as a red tick."""
    ms = {k: v for k, v in figures.items() if k.endswith("_ms")}
    qps = {k: v for k, v in figures.items() if k.startswith("qps")}
    panels = [(name, d) for name, d in (("ms", ms), ("queries / s", qps)) if d]
    fig = Figure(figsize=(9, 0.8 + 0.35 * max(len(d) for _, d in panels)))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (unit, data) in zip(axes, panels, strict=True):
        names = list(data)
        bars = ax.barh(names, [data[n] for n in names], color="C0")
        ax.bar_label(bars, fmt="%.4g", fontsize=7.5, padding=2)
        for i, name in enumerate(names):
            if name in targets:
                ax.plot([targets[name]], [i], marker="|", markersize=18, color="C3",
                        markeredgewidth=2)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.margins(x=0.15)
    axes[0].set_title("recommend(): last benchmark run (red: target)", loc="left")
    return fig
