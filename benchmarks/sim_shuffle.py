"""How well a loader's shuffle buffer mixes pairs, on the order preprocessing writes.

`python -m dfdf_train preprocess` writes a DFDC group's pairs one after another: a
real video with each of its fakes, so several consecutive pairs share one real clip.
The recipe sampled pairs uniformly from all of them. A streaming loader mixes only
what its shuffle buffer holds, so a small buffer gives batches whose pairs often
share a real video: less diverse batches (and BatchNorm statistics) than the
recipe's. Here no video is read: synthetic shards of DFDC-shaped groups (a real with
a geometric number of fakes, mean 5.2: 100,000 fakes of 19,154 reals) go through
`PairDataset`'s own shard dealing and buffer, and each batch's distinct real videos
are counted.

    python benchmarks/sim_shuffle.py --buffers 1,64,256,1024,4096

One JSON line per buffer size: `distinct_reals_per_batch` (mean over every batch of
every split; `--batch-size` is the most it can be) and, for reference, the same for
uniform sampling of the whole set (`uniform`), which is what the recipe did.
"""
from __future__ import annotations

import argparse
import json
from unittest import mock

import numpy as np

from dfaug import loader, pipeline
from dfaug.loader import Batch, PairDataset
from dfaug.pipeline import Sample, SampleInfo


class Record:
    """What the buffer holds, without any bytes: a key and its real video."""

    def __init__(self, key: str, real: int):
        self.key, self.real = key, real


def synthetic_shards(groups: int, shard_pairs: int, rng: np.random.Generator) -> dict:
    """path -> records, in preprocess's order (group after group, a shard full at
    ``shard_pairs``)."""
    fakes = np.minimum(rng.geometric(1 / 5.2, groups), 40)
    reals = np.repeat(np.arange(groups), fakes)
    return {f"shard-{i // shard_pairs:05d}.tar":
            [Record(f"p{j}", int(r)) for j, r in enumerate(reals[i:i + shard_pairs], i)]
            for i in range(0, len(reals), shard_pairs)}


class KeysOnly(PairDataset):
    """PairDataset's dealing and buffer over synthetic records: nothing is decoded."""

    def __init__(self, shards: dict, **kwargs):
        with mock.patch.object(loader, "expand_shards", lambda s: sorted(s)):
            super().__init__(shards, compression=None, **kwargs)

    def make_sample(self, record):
        return Sample(SampleInfo(record.key, {"real": record.real}, None), frames=np.empty(0))

    def _collate(self, group, gen):
        return Batch(keys=[s.info.meta["real"] for s in group])


def distinct_per_batch(shards: dict, buffer: int, batch_size: int, splits: int,
                       seed: int) -> float:
    counts = []
    with mock.patch.object(pipeline, "read_shard", lambda path, lazy: iter(shards[path])):
        for split in range(splits):
            ds = KeysOnly(shards, batch_size=batch_size, shuffle_buffer=buffer, seed=seed,
                          rank=split, world_size=splits, drop_last=True)
            counts += [len(set(b.keys)) for b in ds if b.keys]
    return float(np.mean(counts))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--buffers", default="1,64,256,1024,4096",
                   help="comma-separated shuffle_buffer sizes")
    p.add_argument("--groups", type=int, default=4000, help="DFDC groups (real videos)")
    p.add_argument("--shard-pairs", type=int, default=256, help="preprocess's --shard-pairs")
    p.add_argument("--splits", type=int, default=16, help="ranks x workers")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    shards = synthetic_shards(args.groups, args.shard_pairs, rng)
    pairs = sum(len(r) for r in shards.values())
    reals = np.array([r.real for rs in shards.values() for r in rs])
    uniform = np.mean([len(set(rng.choice(reals, args.batch_size, replace=False)))
                       for _ in range(20000)])
    for buffer in (int(b) for b in args.buffers.split(",")):
        distinct = np.mean([distinct_per_batch(shards, buffer, args.batch_size, args.splits, s)
                            for s in range(args.seeds)])
        print(json.dumps({"bench": "sim_shuffle", "shuffle_buffer": buffer,
                          "batch_size": args.batch_size, "splits": args.splits,
                          "pairs": pairs, "groups": args.groups, "shard_pairs": args.shard_pairs,
                          "seeds": args.seeds, "distinct_reals_per_batch": round(distinct, 3),
                          "uniform": round(float(uniform), 3)}), flush=True)


if __name__ == "__main__":
    main()
