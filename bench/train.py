"""Training speed: one epoch of each encoder on synthetic events; events/s and peak memory.

    python bench/train.py [--events 1000000] [--encoders lstm,gru,attention] [--json]
                          [--set batch_size=256 --set negatives=512]

`--set` changes one TrainConfig field from its default (to time the trade-offs); without it
the defaults are timed, which is what the target is about.

Each encoder runs in its own process so peak RSS is its own. Target: >= 50,000 events/s per
epoch for the LSTM at dim 64 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

BEHAVIOR_KEYS = np.array([1, 3, 2, 4])  # synth.BEHAVIORS order (pv, cart, fav, buy) -> keys


def one(encoder: str, events: int, users: int, items: int, dim: int,
        overrides: dict[str, object]) -> dict[str, object]:
    from recsys_db import synth
    from recsys_db.interest.train import TrainConfig, train
    from recsys_db.sequences import from_arrays

    spec = synth.make_spec(users=users, items=items, events=events, seed=1)
    cols: dict[str, list[np.ndarray]] = {f: [] for f in ("user_id", "item_id", "category_id",
                                                         "behavior", "ts")}
    for block in synth.iter_blocks(spec):
        for name, values in cols.items():
            values.append(getattr(block, name))
    c = {k: np.concatenate(v) for k, v in cols.items()}
    log = from_arrays(c["user_id"], c["item_id"], c["category_id"],
                      BEHAVIOR_KEYS[c["behavior"]], c["ts"], sort=True)
    started = time.perf_counter()
    result = train(log, TrainConfig(encoder=encoder, dim=dim, epochs=1, threads=2,
                                    **overrides))  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return {"encoder": encoder, "events": len(log), "epoch_seconds": round(seconds, 1),
            "events_per_s": round(result.events_per_s), "overrides": overrides,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def parse_overrides(items: list[str], parser: argparse.ArgumentParser) -> dict[str, object]:
    from dataclasses import fields

    from recsys_db.interest.train_config import TrainConfig

    known = {f.name for f in fields(TrainConfig)} - {"encoder", "dim", "epochs", "threads"}
    out: dict[str, object] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in known or not value:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                         f"{sorted(known)}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--set {item!r}: the value must be JSON (a number: 256, 0.01)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--encoders", default="lstm,gru,attention")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a TrainConfig field to change (JSON value), repeatable")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    overrides = parse_overrides(args.set, parser)
    if args.one:
        print(json.dumps(one(args.one, args.events, args.users, args.items, args.dim,
                             overrides)))
        return
    results = []
    for encoder in args.encoders.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--one", encoder, "--events", str(args.events),
             "--users", str(args.users), "--items", str(args.items), "--dim", str(args.dim),
             *[f"--set={item}" for item in args.set]],
            check=True, capture_output=True, text=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(row)
        print(f"  {encoder:10s} {row['events_per_s']:>9,} events/s  epoch "
              f"{row['epoch_seconds']} s  peak RSS {row['peak_rss_mb']} MB")
    print(f"  machine: {machine()}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
