"""What the DataLoader's in-order delivery costs many loader workers, without the cores.

torch's DataLoader yields worker 0's batch, then worker 1's, and so on, and hands a
worker a new batch to make only when one of its batches is yielded; `prefetch_factor`
is how many each may be ahead. A loader worker's pair costs about 17 times more when
it is re-encoded than when it is not (about half are, in the recipe's distribution),
so batches vary a lot, and a worker with a heavy batch can hold all the others up.
How much depends on the number of workers, which this machine (2 cores) cannot run
for real: here each worker sleeps for its batch's cost instead of working, so 16
workers need no 16 cores, and the scheduling is torch's own.

    python benchmarks/sim_prefetch.py --workers 16 --pairs-per-worker 200

Costs: `--mean-ms` per pair (157: `make_sample` in frame mode with all 16 cores of the
GPU host's Xeon busy, from bench_loader's profile), `--ratio` re-encoded to
not-re-encoded (17, dev-cpu: about 360 against 21 ms); which pairs are re-encoded
comes from the recipe's distribution (`CompressionSampler`, one draw per pair).
Each worker gets a random share of the pairs, `--batch-size` a batch. One JSON line
per setting: `busy` = the workers' mean busy time over the wall time; `balanced` =
the same over the busiest worker's own total, the best any delivery order could do
in this run (the rest is the run's tail: workers that ran out of pairs first).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dfaug import CompressionSampler


class SleepingWorkers(torch.utils.data.IterableDataset):
    def __init__(self, batch_costs):
        self.batch_costs = batch_costs

    def __iter__(self):
        worker = torch.utils.data.get_worker_info().id
        for cost in self.batch_costs[worker]:
            time.sleep(cost)
            yield cost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--pairs-per-worker", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=4, help="pairs a batch (bench_loader's)")
    ap.add_argument("--mean-ms", type=float, default=157.0, help="mean cost of a pair")
    ap.add_argument("--ratio", type=float, default=17.0,
                    help="cost of a re-encoded pair over one that is not")
    ap.add_argument("--prefetch", default="2,4,8", help="prefetch factors to run, in order")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    n = args.workers * args.pairs_per_worker
    sampler = CompressionSampler()
    reencoded = np.array([sampler.sample(np.random.default_rng([args.seed, k])) is not None
                          for k in range(n)])
    unit = args.mean_ms / 1000 / (1 + reencoded.mean() * (args.ratio - 1))
    costs = np.where(reencoded, args.ratio * unit, unit)
    order = np.random.default_rng(args.seed).permutation(n)
    batch_costs = []
    for w in range(args.workers):
        mine = costs[order[w::args.workers]]
        batch_costs.append([float(mine[i:i + args.batch_size].sum())
                            for i in range(0, len(mine), args.batch_size)])
    busy = float(np.mean([sum(b) for b in batch_costs]))
    busiest = max(sum(b) for b in batch_costs)

    settings = [{"prefetch_factor": int(p)} for p in args.prefetch.split(",")]
    settings.append({"prefetch_factor": 2, "in_order": False})  # the unordered bound
    for kw in settings:
        loader = torch.utils.data.DataLoader(SleepingWorkers(batch_costs), batch_size=None,
                                             num_workers=args.workers, **kw)
        t0 = time.perf_counter()
        batches = sum(1 for _ in loader)
        wall = time.perf_counter() - t0
        print(json.dumps({"bench": "sim_prefetch", "workers": args.workers,
                          "pairs_per_worker": args.pairs_per_worker,
                          "batch_size": args.batch_size, **kw, "batches": batches,
                          "reencoded": round(float(reencoded.mean()), 3),
                          "busy": round(busy / wall, 3), "balanced": round(busy / busiest, 3),
                          "wall_s": round(wall, 2)}), flush=True)


if __name__ == "__main__":
    main()
