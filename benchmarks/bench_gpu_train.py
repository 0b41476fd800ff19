"""GPU utilisation of a real ``python -m dfdf_train train`` run fed by dfaug's loader.

What it answers: do the machine's CPU cores, running dfaug's workers (read a pair,
decode the needed frames, re-encode both clips with shared random H.264 parameters,
pick and resize frames), keep the GPU busy while it trains the recipe's B7?

1. Pair shards are made from real video: ``--pairs`` 50-frame 300x300 windows of
   bigbuckbunny, each with a synthetic fake (bench_recompress.make_pairs), written in
   parallel into one shard per ``--pairs-per-shard`` pairs (dfaug's default format).
2. ``python -m dfdf_train train`` runs in a subprocess with the recipe's settings
   except ``--max-iters`` (short) and ``--warmup-iters``; AMP + channels_last (the
   CUDA default) unless ``--precision fp32``.
3. GPU utilisation and memory are read every ``--sample-ms`` through NVML (the
   ``nvidia-ml-py`` package; ``nvidia-smi`` calls without it) while it runs; host
   memory is the summed RSS of the train process and its workers, from /proc.

Reported: utilisation over the samples from the first logged window past the
warm-up to the last one (model build, cudnn autotuning, the frozen-backbone
iterations, the final checkpoint and the shutdown excluded),
images/s from metrics.csv, peak GPU and host memory. One JSON line.

    python benchmarks/bench_gpu_train.py --recipe large_crop --iters 300
    python benchmarks/bench_gpu_train.py --recipe sequence --iters 150 --workers 14
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import dfaug  # noqa: E402
from dfaug.testing import media_path  # noqa: E402

from bench_decode import gpu_info  # noqa: E402
from bench_recompress import cpu_model, make_pairs, write_pair_shards  # noqa: E402


def make_shards(folder: str, n_pairs: int, per_shard: int, seed: int, procs: int) -> list[str]:
    video = dfaug.read_video(media_path("bigbuckbunny.mp4"))
    pairs = make_pairs(video, n_pairs, np.random.default_rng(seed))
    return write_pair_shards(pairs, folder, per_shard, procs, key="pair{:05d}")


def tree_rss_mb(pid: int) -> float:
    """Summed RSS of ``pid`` and its descendants: an upper bound, since a page shared
    after fork (the model, the parent's imports) is counted in every process."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def logged_iterations(metrics: str) -> list[int]:
    try:
        with open(metrics) as f:
            return [int(r["iteration"]) for r in csv.DictReader(f)]
    except (OSError, ValueError, KeyError):
        return []


def gpu_reader():
    """A function giving (GPU 0 utilisation %, memory used MiB) now: NVML, or nvidia-smi."""
    try:
        import pynvml
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        return lambda: (float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                        pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20)
    except Exception:  # noqa: BLE001 - no NVML binding or no driver: try the tool
        pass
    if shutil.which("nvidia-smi"):
        def read():
            line = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                   "--format=csv,noheader,nounits", "--id=0"],
                                  capture_output=True, text=True, timeout=10).stdout
            util, mem = line.split(",")[:2]
            return float(util), float(mem)
        return read
    return lambda: (float("nan"), float("nan"))  # no GPU here: host memory only


def sample(pid: int, every_s: float, metrics: str, steady_after: int, last_iteration: int,
           rows: list, window: dict, stop: threading.Event) -> None:
    """(t, GPU util %, GPU memory MiB, host RSS MiB) every ``every_s`` until ``stop``.

    ``window`` gets "from": when the first metrics row past ``steady_after`` appeared,
    and "to": when the row of ``last_iteration`` did (the checkpoint and the shutdown
    that follow are not training).
    """
    read = gpu_reader()
    while not stop.wait(every_s):
        util, mem = read()
        now = time.perf_counter()
        rows.append((now, util, mem, tree_rss_mb(pid)))
        done = logged_iterations(metrics)
        if "from" not in window and any(i > steady_after for i in done):
            window["from"] = now
        if "to" not in window and last_iteration in done:
            window["to"] = now


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipe", default="large_crop", choices=["large_crop", "re", "sequence"])
    ap.add_argument("--model-size", default="b7", choices=["b7", "b0"])
    ap.add_argument("--pairs", type=int, default=192, help="pairs made for the run")
    ap.add_argument("--pairs-per-shard", type=int, default=8)
    ap.add_argument("--iters", type=int, default=300, help="--max-iters of the run")
    ap.add_argument("--warmup-iters", type=int, default=20,
                    help="frozen-backbone iterations (the recipe's 100 would fill a short run)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2),
                    help="loader workers (default: all cores but two)")
    ap.add_argument("--batch-size", type=int, default=8, help="pairs per batch (the recipe's 8)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--sample-ms", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep the run folder (checkpoint, metrics.csv) here")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_gpu_train")
    try:
        return run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: str) -> int:
    t0 = time.perf_counter()
    shards = make_shards(tmp, args.pairs, args.pairs_per_shard, args.seed, os.cpu_count() or 2)
    made_s = time.perf_counter() - t0
    print(f"made {len(shards)} shards of {args.pairs} pairs in {made_s:.1f} s", file=sys.stderr)

    out = args.keep or os.path.join(tmp, "run")
    cmd = [sys.executable, "-m", "dfdf_train", "train", "--recipe", args.recipe,
           "--data", *shards, "--out", out, "--model-size", args.model_size,
           "--max-iters", str(args.iters), "--warmup-iters", str(args.warmup_iters),
           "--workers", str(args.workers), "--batch-size", str(args.batch_size),
           "--precision", args.precision,
           "--log-every", "10", "--ckpt-every", str(args.iters), "--seed", str(args.seed),
           "--no-tensorboard", "--progress-every", "10"]
    print(" ".join(cmd[:6]) + " ...", file=sys.stderr)
    samples: list = []
    window: dict = {}
    stop = threading.Event()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sampler = threading.Thread(target=sample, args=(proc.pid, args.sample_ms / 1000, os.path.join(out, "metrics.csv"),
                                     args.warmup_iters + 10, args.iters, samples, window, stop),
                               daemon=True)
    sampler.start()
    rc = proc.wait()
    stop.set()
    wall = time.perf_counter() - started
    if rc != 0:
        print(json.dumps({"bench": "gpu_train", "recipe": args.recipe, "error": f"train exited {rc}"}))
        return rc

    with open(os.path.join(out, "metrics.csv")) as f:
        rows = [r for r in csv.DictReader(f)]
    steady = [r for r in rows if int(r["iteration"]) > args.warmup_iters + 10]
    # utilisation from the first logged window past the warm-up to the last one
    t_from, t_to = window.get("from", float("inf")), window.get("to", float("inf"))
    busy = [u for (t, u, _, _) in samples if t_from <= t <= t_to and u == u]
    result = {
        "bench": "gpu_train", "recipe": args.recipe, "model_size": args.model_size,
        "precision": args.precision, "iters": args.iters, "warmup_iters": args.warmup_iters,
        "workers": args.workers, "batch_size": args.batch_size, "pairs": args.pairs, "shards": len(shards),
        "shards_made_s": round(made_s, 1), "wall_s": round(wall, 1),
        "images_per_s_steady": round(statistics.median(float(r["images_per_s"]) for r in steady), 1)
        if steady else None,
        "gpu_util_pct": {"mean": round(statistics.mean(busy), 1) if busy else None,
                         "median": statistics.median(busy) if busy else None,
                         "samples": len(busy),
                         "share_samples_ge_90": round(sum(u >= 90 for u in busy) / len(busy), 3)
                         if busy else None},
        "gpu_memory_peak_mib": max((m for (_, _, m, _) in samples if m == m), default=None),
        "host_rss_sum_peak_mb": round(max((r for (*_, r) in samples), default=0)),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu_info()},
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
