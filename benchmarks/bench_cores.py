"""How a host's per-process speed holds up as more of its cores get busy.

The loader's throughput is measured per core with workers = cores. On a 16-core Xeon
host (beside an H200 GPU) our loader's rate per worker halved from 1 to 16 workers in
short runs, and the recipe's way lost as much from 1 to 8. This separates what the host
does to any busy core (clock, shared core resources) from what our work adds (memory
traffic, cache):

- ``alu``: four independent integer chains in registers (numba), no memory traffic:
  the clock, and the execution units a core shares with its hyper-thread sibling;
- ``simd``: float multiply-adds over 16 KB arrays that stay in L1 (numba, vectorised
  for the host's widest SIMD): the same for the vector units, and the lower clock
  some CPUs run at under wide SIMD on many cores;
- ``memory``: copying 32 MB arrays: memory bandwidth;
- ``x264``: libx264 encoding 40 frames of 300x300 with the recipe's default settings
  (medium, one thread): the loader's largest cost;
- ``pair``: ``PairDataset.make_pair`` on a re-encoded pair: a loader worker's whole work;
- ``reencode`` / ``reencode-buffered``: the re-encoding of a pair (frame mode, the
  loader's draw and times) as the loader does it, each stored frame decoded just
  before x264 takes it (``StoredFrames``), and the alternative, every frame x264
  takes decoded into a whole-clip buffer first: an A/B of a pair's memory traffic.

For each number of processes (``--procs``, default 1, cores/2, cores) that many forked
copies run the workload together for ``--seconds``, in ``--rounds`` rounds whose order
alternates (a VM's speed drifts over minutes); the JSON line per workload gives the
median units per second of one process and the efficiency (that rate over the rate
of one process alone). When ``pair`` loses about what ``alu`` loses, the host explains
the loss; when it loses more, the loss is ours.

    python benchmarks/bench_cores.py
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from fractions import Fraction

import av
import numba
import numpy as np
import torch

import dfaug
from dfaug.compression import open_encoder, plan_encode
from dfaug.shards import read_shard
from dfaug.testing import media_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_recompress import cpu_model, make_pairs, write_pair_shards  # noqa: E402

WORKLOADS = ("alu", "simd", "memory", "x264", "pair", "reencode", "reencode-buffered")
DEFAULT_WORKLOADS = WORKLOADS[:5]  # the A/B pair is asked for by name (gpu_acceptance.sh d)


@numba.njit(nogil=True)
def _xorshift(n):  # pragma: no cover (compiled)
    a, b = np.uint64(88172645463325252), np.uint64(1234567)
    c, d = np.uint64(987654321), np.uint64(42)
    for _ in range(n):
        a ^= a << np.uint64(13)
        b ^= b << np.uint64(13)
        c ^= c << np.uint64(13)
        d ^= d << np.uint64(13)
        a ^= a >> np.uint64(7)
        b ^= b >> np.uint64(7)
        c ^= c >> np.uint64(7)
        d ^= d >> np.uint64(7)
        a ^= a << np.uint64(17)
        b ^= b << np.uint64(17)
        c ^= c << np.uint64(17)
        d ^= d << np.uint64(17)
    return a ^ b ^ c ^ d


@numba.njit(nogil=True, fastmath=True)
def _fma(x, y, rounds):  # pragma: no cover (compiled)
    for _ in range(rounds):
        for i in range(x.size):
            x[i] = x[i] * y[i] + 0.5
    return x[0]


def make_units(workload: str, tmp: str):
    """A function doing one unit of ``workload``, set up before the processes fork."""
    if workload == "alu":
        _xorshift(10)  # compile here, not in every child
        return lambda: _xorshift(10_000_000)
    if workload == "simd":
        x, y = np.zeros(2048, np.float32), np.full(2048, 0.5, np.float32)  # 2 x 8 KB
        _fma(x, y, 1)
        return lambda: _fma(x, y, 20_000)
    if workload == "memory":
        src = np.ones(32 << 20, np.uint8)
        dst = np.empty_like(src)
        return lambda: np.copyto(dst, src)
    rng = np.random.default_rng(0)
    video = dfaug.read_video(media_path("bigbuckbunny.mp4"))
    pairs = make_pairs(video, 4, rng)
    if workload == "x264":
        params = dfaug.CompressionParams(fps=30, scale=1.0, crf=23, tune="film")
        frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")
                  for f in pairs[0][0].frames[:40]]

        def encode():
            enc = open_encoder(params, (300, 300), Fraction(30))
            for i, frame in enumerate(frames):
                frame.pts = i
                enc.encode(frame)
            enc.encode(None)
        return encode
    shards = write_pair_shards(pairs, tmp, len(pairs))
    records = list(read_shard(shards[0]))
    every_pair_reencoded = dfaug.CompressionSampler(p_skip=0.0)
    ds = dfaug.PairDataset(shards, compression=every_pair_reencoded)
    turn = iter(range(1 << 62))
    if workload == "pair":
        return lambda: ds.make_sample(records[next(turn) % len(records)])
    return lambda: reencode(ds, records[next(turn) % len(records)],
                            buffered=workload == "reencode-buffered")


def reencode(ds: dfaug.PairDataset, record, buffered: bool):
    """What ``make_sample`` re-encodes for ``record``; ``buffered``: its decoded frames
    written to a whole-clip buffer first (the alternative to StoredFrames)."""
    pts = record.pts
    times = ds.times(pts, None)
    params = ds.pair_params(record.key)
    if buffered:
        t, h, w = len(pts), record.meta["height"], record.meta["width"]
        fed = np.unique(plan_encode(dfaug.Clip(np.empty((t, h, w, 3), np.uint8), pts),
                                    params, times=times).indices)
        members = [dfaug.Clip(record.frames(m, fed, out=np.empty((t, h, w, 3), np.uint8)), pts)
                   for m in ("real", "fake")]
    else:
        members = [dfaug.Clip(record.lazy_frames(m), pts) for m in ("real", "fake")]
    return dfaug.recompress(members, params, times=times)


def _child(unit, seconds, start, results):
    # one torch thread, as in a DataLoader worker: with torch's default (one per core)
    # 16 processes ran 16 threads each in make_pair's resize, and "pair" measured 0.5
    # of its one-process rate on the 16-core Xeon instead of 0.86-0.92
    torch.set_num_threads(1)
    unit()  # warm: first-call costs out of the timing
    start.wait()  # every process warm: they all start together
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        unit()
        n += 1
    results.put(n / (time.perf_counter() - t0))


def rate_per_process(unit, procs: int, seconds: float) -> float:
    """Median units/s of one process while ``procs`` run the unit together."""
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(procs + 1), ctx.Queue()
    children = [ctx.Process(target=_child, args=(unit, seconds, start, results))
                for _ in range(procs)]
    for c in children:
        c.start()
    start.wait()
    rates = [results.get(timeout=seconds * 10 + 120) for _ in children]
    for c in children:
        c.join()
    return float(np.median(rates))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help=f"comma-separated, from {', '.join(WORKLOADS)} (default: the first five)")
    ap.add_argument("--procs", help="comma-separated process counts "
                                    "(default: 1, half the cores, all cores)")
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="timed seconds per count and round")
    ap.add_argument("--rounds", type=int, default=2,
                    help="runs of every count, the order alternating; medians reported")
    args = ap.parse_args()
    workloads = args.workloads.split(",")
    if not set(workloads) <= set(WORKLOADS):
        ap.error(f"--workloads takes {', '.join(WORKLOADS)}, got {args.workloads!r}")
    cores = os.cpu_count()
    try:
        procs = sorted({int(p) for p in args.procs.split(",")}) if args.procs \
            else sorted({1, max(1, cores // 2), cores})
    except ValueError:
        ap.error(f"--procs takes comma-separated integers, got {args.procs!r}")
    if procs[0] < 1:
        ap.error("--procs must be positive")
    if args.seconds <= 0 or args.rounds < 1:
        ap.error("--seconds and --rounds must be positive")
    for workload in workloads:
        with tempfile.TemporaryDirectory() as tmp:
            unit = make_units(workload, tmp)
            runs = {n: [] for n in procs}
            for r in range(args.rounds):
                for n in (procs if r % 2 == 0 else procs[::-1]):
                    runs[n].append(rate_per_process(unit, n, args.seconds))
                    print(f"{workload} x{n} round {r + 1}: {runs[n][-1]:.2f} units/s "
                          "per process", file=sys.stderr, flush=True)
        rates = [float(np.median(runs[n])) for n in procs]
        print(json.dumps({
            "bench": "cores", "workload": workload, "procs": procs,
            "units_per_s_per_process": [round(r, 2) for r in rates],
            "efficiency": [round(r / rates[0], 3) for r in rates],
            "runs": {n: [round(x, 2) for x in runs[n]] for n in procs},
            "seconds": args.seconds, "rounds": args.rounds, "cpu": cpu_model(),
            "cores": cores, "av": av.__version__}), flush=True)


if __name__ == "__main__":
    main()
