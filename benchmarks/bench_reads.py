"""What the loader reads from its shards per pair, and what the reading costs.

``PairDataset`` reads its shards lazily: a pair's members stay in the file until the
pair is made, and then storage reads each member's header and only the frames it
decodes, one read per run of consecutive frames (``frames`` below). The alternative
is to read each member whole first (``whole``). On the same pairs and
compression draws (the recipe's distribution, ``PairDataset.pair_params``) this gives,
per mode:

- bytes read per pair from the members (the tar headers and JSON read while indexing
  are the same both ways and not counted);
- ms per pair of ``make_sample``, each pair made both ways back to back, the order
  alternating, ``--rounds`` times (this VM's speed drifts over minutes, so the two
  ways are compared seconds apart on the same pair): over all pairs, and apart for
  those re-encoded and those not.

The page cache holds the shards (just written), so the times are the CPU's cost of
reading. ``--cold``: the pair's shard is dropped from the page cache
(``posix_fadvise(DONTNEED)``) before each make, so both ways read from the disk: one
large read per member against one per run of frames (the kernel's readahead still
applies to both).

    python benchmarks/bench_reads.py --pairs 64 [--cold]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import numpy as np

import dfaug
from dfaug.loader import PairDataset
from dfaug.shards import read_shard
from dfaug.testing import media_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_recompress import cpu_model, make_pairs, write_pair_shards  # noqa: E402


@dataclasses.dataclass
class CountedMember:
    """A ShardMember whose reads are counted: storage reads members through
    ``size`` and ``read_ranges``."""

    member: dfaug.shards.ShardMember
    counter: list

    @property
    def size(self) -> int:
        return self.member.size

    def read_ranges(self, ranges):
        self.counter[0] += sum(b - a for a, b in ranges)
        return self.member.read_ranges(ranges)


def evict(path: str) -> None:
    """Drop a file's pages from the page cache (allowed to any process that can read it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # pages not yet written back cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def make_both_ways(ds: PairDataset, records, rounds: int, cold: bool = False) -> dict:
    """{way: (ms per make_sample, bytes read) per pair and round}, in records' order;
    ``cold``: the record's shard evicted from the page cache before each make."""
    out = {"frames": ([], []), "whole": ([], [])}

    def frames(record, counter):
        counted = [CountedMember(m, counter) for m in (record.real, record.fake)]
        ds.make_sample(dataclasses.replace(record, real=counted[0], fake=counted[1]))

    def whole(record, counter):
        real, fake = record.real.read(), record.fake.read()
        counter[0] += len(real) + len(fake)
        ds.make_sample(dataclasses.replace(record, real=real, fake=fake))

    for r in range(rounds):
        for k, record in enumerate(records):
            ways = [("frames", frames), ("whole", whole)]
            for name, way in (ways if (k + r) % 2 == 0 else ways[::-1]):
                counter = [0]
                if cold:
                    evict(record.shard)
                start = time.perf_counter()
                way(record, counter)
                out[name][0].append(1000 * (time.perf_counter() - start))
                out[name][1].append(counter[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--modes", default="frame,sequence",
                    help="comma-separated: frame, sequence")
    ap.add_argument("--rounds", type=int, default=2,
                    help="times each pair is made each way")
    ap.add_argument("--format", default=dfaug.shards.DEFAULT_FORMAT, choices=dfaug.storage.FORMATS,
                    help="storage format of the shards")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold", action="store_true",
                    help="read from the disk: evict the shard from the page cache before each make")
    args = ap.parse_args()
    if args.pairs < 1 or args.rounds < 1:
        ap.error("--pairs and --rounds must be positive")
    if not set(args.modes.split(",")) <= {"frame", "sequence"}:
        ap.error(f"--modes takes frame and/or sequence, got {args.modes!r}")
    video = dfaug.read_video(media_path("bigbuckbunny.mp4"))
    pairs = make_pairs(video, args.pairs, np.random.default_rng(args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_pair_shards(pairs, tmp, 32, os.cpu_count(), args.format)
        stored = sum(os.path.getsize(p) for p in shards) // args.pairs
        for mode in args.modes.split(","):
            ds = PairDataset(shards, mode=mode, seed=args.seed)
            records = [r for path in shards for r in read_shard(path, lazy=True)]
            ds.make_sample(records[0])  # warm up: numba's cache, FFmpeg's tables
            re_encoded = np.array([ds.pair_params(r.key) is not None
                                   for r in records] * args.rounds)
            result = make_both_ways(ds, records, args.rounds, args.cold)

            def ms(times, which):  # None where no pair is of the kind (a few pairs)
                chosen = np.asarray(times)[which]
                return round(float(chosen.mean()), 2) if chosen.size else None
            print(json.dumps({
                "bench": "reads", "mode": mode, "pairs": args.pairs, "rounds": args.rounds,
                "format": args.format, "clip": "50x300x300", "cold": args.cold,
                "stored_bytes_per_pair": stored,
                "read_bytes_per_pair": {way: int(np.mean(b)) for way, (_, b) in result.items()},
                "ms_per_pair": {way: {"all": ms(t, slice(None)), "re_encoded": ms(t, re_encoded),
                                      "not_re_encoded": ms(t, ~re_encoded)}
                                for way, (t, _) in result.items()},
                "re_encoded_share": round(float(re_encoded.mean()), 3),
                "cpu": cpu_model(), "cores": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
