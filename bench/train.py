"""Training speed: one epoch of each encoder on synthetic events; events/s and peak memory.

    python bench/train.py [--events 1000000] [--encoders lstm,gru,attention] [--json]
                          [--set batch_size=256 --set negatives=512] [--workers 1,2]

`--set` changes one TrainConfig field from its default (to time the trade-offs); without it
the defaults are timed, which is what the target is about.

`--workers 1,2` times each encoder on that many training processes (DistributedDataParallel,
gloo; the run's threads split among them; events/s counts every worker's events) and reports
the scaling efficiency: events/s at N / (N x events/s at 1). With it, the JSON line is an object
with keys `rows`, `events_per_s_by_workers` and `scaling_efficiency` (per encoder, by N).

Each encoder runs in its own process so peak RSS is its own (with workers, rank 0's only).
Target: >= 50,000 events/s per epoch for the LSTM at dim 64 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mb  # noqa: E402


def one(encoder: str, events: int, users: int, items: int, dim: int,
        overrides: dict[str, object], workers: int = 1, threads: int = 2
        ) -> dict[str, object]:
    from recsys_db import synth
    from recsys_db.interest.distributed import fit
    from recsys_db.interest.train import TrainConfig, build_vocabs, train
    from recsys_db.synth.log import event_log

    log = event_log(synth.make_spec(users=users, items=items, events=events, seed=1))
    config = TrainConfig(encoder=encoder, dim=dim, epochs=1, threads=threads, workers=workers,
                         **overrides)  # type: ignore[arg-type]
    started = time.perf_counter()
    if workers == 1:
        result = train(log, config)
    else:  # events/s from rank 0's clock after the ranks met: the epoch, not the spawning
        items_vocab, categories = build_vocabs(log)
        result = fit(log, config, None, items=items_vocab, categories=categories)
    seconds = time.perf_counter() - started
    return {"encoder": encoder, "workers": workers, "threads": threads, "events": len(log),
            "epoch_seconds": round(seconds, 1),
            "events_per_s": round(result.events_per_s), "overrides": overrides,
            "peak_rss_mb": peak_rss_mb()}


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


def parse_workers(text: str | None, parser: argparse.ArgumentParser) -> list[int]:
    if text is None:
        return [1]
    try:
        counts = [int(n) for n in text.split(",")]
    except ValueError:
        parser.error(f"--workers {text!r}: expected counts like 1,2")
    if any(n < 1 for n in counts):
        parser.error(f"--workers {text!r}: counts must be >= 1")
    return counts


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
    parser.add_argument("--workers", help="comma-separated training process counts, e.g. 1,2")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of a run, split among its workers (default 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    overrides = parse_overrides(args.set, parser)
    counts = parse_workers(args.workers, parser)
    if args.one:
        print(json.dumps(one(args.one, args.events, args.users, args.items, args.dim,
                             overrides, counts[0], args.threads)))
        return
    results = []
    for encoder in args.encoders.split(","):
        for workers in counts:
            proc = subprocess.run(
                [sys.executable, __file__, "--one", encoder, "--events", str(args.events),
                 "--users", str(args.users), "--items", str(args.items), "--dim",
                 str(args.dim), "--workers", str(workers), "--threads", str(args.threads),
                 *[f"--set={item}" for item in args.set]],
                check=True, capture_output=True, text=True)
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(row)
            print(f"  {encoder:10s} {workers} worker(s) {row['events_per_s']:>9,} events/s  "
                  f"epoch {row['epoch_seconds']} s  peak RSS {row['peak_rss_mb']} MB")
    print(f"  machine: {machine()}")
    if args.workers is None:
        if args.json:
            print(json.dumps(results))
        return
    by_workers = {r["encoder"]: {} for r in results}
    for r in results:
        by_workers[r["encoder"]][str(r["workers"])] = r["events_per_s"]
    efficiency = {enc: {n: round(eps / (int(n) * rates["1"]), 3) for n, eps in rates.items()}
                  for enc, rates in by_workers.items() if rates.get("1")}
    for enc, eff in efficiency.items():
        if len(eff) > 1:
            print(f"  {enc:10s} scaling efficiency "
                  + ", ".join(f"{n} workers {e:.0%}" for n, e in eff.items() if n != "1"))
    if args.json:
        print(json.dumps({"rows": results, "events_per_s_by_workers": by_workers,
                          "scaling_efficiency": efficiency}))


if __name__ == "__main__":
    main()
