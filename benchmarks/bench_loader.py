"""Loader throughput per CPU core: dfaug's PairDataset against the recipe's way of loading.

Both ways read the same pairs (50-frame 300x300 crops of real video with synthetic
fakes) with workers = cores, draw compression settings from the recipe's
distribution (the same stream), and deliver the recipe's frames at a fixed size:

- ``ours``: pair shards (`dfaug.PairShardWriter`, default storage format), a
  ``PairDataset`` decoding only the frames the sample needs and re-encoding
  in-process with the needed-frames mode;
- ``recipe``: 50 PNG files per clip; per re-encoded clip one ffmpeg process encodes
  them and a second decodes (benchmarks/bench_recompress.py's ``recipe_way``), frames
  remapped as round(i / 50 * n) like the original code; without re-encoding the
  used PNGs are read with PIL.

Figures without the device stage (it runs on the GPU when there is one, so this is
the loader's whole CPU work on a GPU machine) and, with ``--device-stage workers``
(or ``both``), with PairAugment + mixup inside the workers (ours) against per-image
PIL AutoAugment (recipe's, bench_augment.py).

    python benchmarks/bench_loader.py --pairs 32
Prints one JSON line per mode: images (or sequences) per second per core over the
whole run, and per CPU second of the loader's processes (workers, the recipe's ffmpeg
processes, the main process). The second is the cost of an image: it leaves out the
idle start (fork, first batches) and tail (some workers done, the others busy) that a
run of a few dozen pairs per worker holds and a training epoch of thousands does not,
and equals the per-core rate of a host whose every core is busy loading. Also: a
worker's peak private memory, and the bytes ours read per pair (shard indexes and
the frames decoded; ``rchar`` of /proc/self/io), which is what storage must deliver.
``--passes K``: each way reads every pair K times in a run (the shard list, and the
recipe's folder list, repeated), so that a run is K times longer, and its idle start
and tail K times smaller a share of it, for the cost of one set-up: the wall rate of
a long run without K times as many pairs to build. A pair gets the same compression
draw on every pass.
``--profile DIR``: after the timed runs, one more
untimed run of ours with its first worker under cProfile, while the others load the
other cores; the 25 costliest functions go to DIR/profile-ours-MODE.txt.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import multiprocessing
import os
import pstats
import random
import resource
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import dfaug
from dfaug.loader import PREFETCH_FACTOR, PairDataset
from dfaug.pipeline import fit_to
from dfaug.times import FRAME_MODE_FRAMES, SEQUENCE_MODE_FRAMES
from dfaug.testing import media_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_augment import RecipeAugment  # noqa: E402
from bench_recompress import (cpu_model, ffmpeg_start_ms, make_pairs, recipe_way,  # noqa: E402
                              require_ffmpeg, write_pair_shards, write_png_folders)

SIZE = (288, 224)
STAGE_CHOICES = {"excluded": [False], "workers": [True], "both": [False, True]}


class RecipeDataset(torch.utils.data.Dataset):
    """The recipe's loading: PNG folders, ffmpeg processes, per-image work."""

    def __init__(self, folders, params, mode, augment):
        self.folders, self.params, self.mode, self.augment = folders, params, mode, augment

    def __len__(self):
        return len(self.folders)

    def __getitem__(self, i):
        frames_wanted = FRAME_MODE_FRAMES if self.mode == "frame" else SEQUENCE_MODE_FRAMES
        params = self.params[i]
        members = []
        for folder in self.folders[i]:
            if params is None:
                frames = np.stack([np.asarray(Image.open(os.path.join(folder, f"{k:03d}.png")))
                                   for k in frames_wanted])
            else:
                clip = recipe_way(folder, params, 300, 300)
                n = len(clip)
                frames = clip[[min(n - 1, round(k / 50 * n)) for k in frames_wanted]]
            members.append(fit_to(np.ascontiguousarray(frames), SIZE))
        pair = np.stack(members)                                   # (2, T, 3, H, W)
        if self.augment is None:
            return torch.from_numpy(pair)
        random.seed(i)
        hwc = pair.transpose(0, 1, 3, 4, 2)
        if self.mode == "frame":   # each frame its own image, shared by real and fake
            return torch.stack([self.augment.pairs(hwc[:, t:t + 1][None])[0]
                                for t in range(hwc.shape[1])], 1)
        return self.augment.pairs(hwc[None])[0]


def private_mb() -> float:
    """This process's own memory (USS: private pages, not those shared with the parent
    after fork), from /proc/self/smaps_rollup; NaN where that file does not exist."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            kb = sum(int(line.split()[1]) for line in f
                     if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except OSError:
        return float("nan")
    return kb / 1024


def bytes_read() -> int:
    """Bytes this process has read through read(2) and its kin (``rchar`` of
    /proc/self/io: from the page cache or the disk alike); -1 where there is no such file."""
    try:
        with open("/proc/self/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))
    except (OSError, StopIteration):
        return -1


class MeasuredPairDataset(PairDataset):
    """PairDataset whose batches carry the worker's private memory, read on every 8th
    batch and the first (reading /proc costs ~15 ms: not on every batch of the timing),
    and the bytes the worker has read so far (cheap: every batch).
    With ``profile_to`` set, worker 0 runs under cProfile and writes its top functions
    there when its split is done."""

    profile_to: str | None = None

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        profiler = None
        if self.profile_to and (info is None or info.id == 0):
            profiler = cProfile.Profile()
            profiler.enable()
        start = bytes_read()
        try:
            for n, batch in enumerate(super().__iter__()):
                batch.private_mb = private_mb() if n % 8 == 0 else float("nan")
                batch.bytes_read = bytes_read() - start if start >= 0 else -1
                yield batch
        finally:
            if profiler is not None:
                profiler.disable()
                text = io.StringIO()
                stats = pstats.Stats(profiler, stream=text).sort_stats("tottime")
                stats.print_stats(25)
                with open(self.profile_to, "w") as f:
                    f.write(text.getvalue())


def cpu_seconds() -> float:
    """CPU time of this process and of every finished descendant it has waited for
    (DataLoader workers are joined at the end of an epoch; the recipe's ffmpeg
    processes were waited for by the workers, so they count too)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(loader, per_item):
    """(items, wall seconds, CPU seconds of the loader's processes)."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = 0
    for item in loader:
        n += per_item(item)
    seconds = time.perf_counter() - t0
    deadline = time.perf_counter() + 30
    while multiprocessing.active_children() and time.perf_counter() < deadline:
        time.sleep(0.01)  # reaps the finished workers: their CPU time counts from then
    return n, seconds, cpu_seconds() - c0


def unit_name(mode):
    return "images" if mode == "frame" else "sequences"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--device-stage", default="excluded", choices=STAGE_CHOICES,
                    help="excluded: the device stage is not run (it runs on the GPU); "
                         "workers: it runs inside the workers (CPU-only training); both: each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", default=dfaug.shards.DEFAULT_FORMAT, choices=dfaug.storage.FORMATS,
                    help="frame storage format of our shards")
    ap.add_argument("--modes", default="frame,sequence",
                    help="comma-separated: frame, sequence (default both)")
    ap.add_argument("--setup-procs", type=int, default=os.cpu_count(),
                    help="processes writing the shards and PNG folders before timing")
    ap.add_argument("--ffmpeg", default="ffmpeg",
                    help="the recipe's way's ffmpeg (default: the one on PATH); a static "
                         "build starts 50x faster than Debian's and is the fairer baseline")
    ap.add_argument("--passes", type=int, default=1,
                    help="reads of every pair in each run (longer runs, same set-up)")
    ap.add_argument("--shuffle-buffer", type=int,
                    default=PairDataset.__init__.__kwdefaults__["shuffle_buffer"],
                    help="our loader's shuffle buffer, in pairs (default: PairDataset's, %(default)s)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each way, alternating which goes first; medians reported")
    ap.add_argument("--profile", metavar="DIR",
                    help="after the timed runs, profile worker 0 of one more run of ours "
                         "(cProfile, top 25 by own time) into DIR/profile-ours-MODE.txt")
    args = ap.parse_args()
    if args.passes < 1 or args.repeats < 1 or args.pairs < 1:
        ap.error("--pairs, --passes and --repeats must be positive")
    if not set(args.modes.split(",")) <= {"frame", "sequence"}:
        ap.error(f"--modes takes frame and/or sequence, got {args.modes!r}")
    if args.profile:  # before the set-up and timed runs: a bad path fails at once
        try:
            os.makedirs(args.profile, exist_ok=True)
        except OSError as e:
            ap.error(f"--profile {args.profile!r}: {e.strerror}")
    ffmpeg_version = require_ffmpeg(args.ffmpeg)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    video = dfaug.read_video(media_path("bigbuckbunny.mp4"))
    pairs = make_pairs(video, args.pairs, rng)
    rows = []
    # both ways get PairLoader's prefetch factor (batches yielded in worker order)
    prefetch = PREFETCH_FACTOR if args.workers else None
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_pair_shards(pairs, tmp, max(1, args.pairs // (2 * args.workers)),
                                   args.setup_procs, args.format)
        folders = write_png_folders(pairs, tmp, args.setup_procs)
        shard_bytes = sum(os.path.getsize(p) for p in shards)
        png_bytes = sum(os.path.getsize(os.path.join(d, f)) for pair in folders for d in pair
                        for f in os.listdir(d))
        del video, pairs  # workers fork from here: measure their memory, not the set-up's
        gc.collect()
        # the same draw per pair as PairDataset makes (a function of seed, epoch and key)
        keyed = PairDataset(shards, seed=args.seed)
        params = [keyed.pair_params(f"pair{k:04d}") for k in range(args.pairs)]

        for mode in args.modes.split(","):
            images_per_pair = 8 if mode == "frame" else 1
            for augment in STAGE_CHOICES[args.device_stage]:
                aug = dfaug.PairAugment("tight_erase" if mode == "frame" else "tight") if augment else None

                def ours(profile_to=None):
                    ds = MeasuredPairDataset(shards * args.passes, mode=mode, batch_size=4,
                                             size=SIZE, augment=aug, seed=args.seed,
                                             shuffle_buffer=args.shuffle_buffer)
                    ds.profile_to = profile_to
                    loader = torch.utils.data.DataLoader(ds, batch_size=None,
                                                         num_workers=args.workers,
                                                         prefetch_factor=prefetch,
                                                         collate_fn=lambda b: b)

                    def count(batch):
                        if batch.private_mb == batch.private_mb:  # not NaN (no /proc)
                            peak_private[0] = max(peak_private[0] or 0, batch.private_mb)
                        if batch.bytes_read >= 0:  # a split's running total
                            read[batch.split] = max(read.get(batch.split, 0), batch.bytes_read)
                        return len(batch.keys) * images_per_pair
                    return run(loader, count)

                def recipe():
                    ds = RecipeDataset(folders * args.passes, params * args.passes, mode,
                                       RecipeAugment(aug.config) if augment else None)
                    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=args.workers,
                                                         prefetch_factor=prefetch)
                    return run(loader, lambda b: len(b) * images_per_pair)

                # This VM's speed drifts by tens of percent over minutes: alternate the
                # order and report medians, and the ratio of each back-to-back couple.
                rates = {"ours": [], "recipe": []}
                per_cpu_s = {"ours": [], "recipe": []}
                peak_private = [None]
                read: dict = {}  # split -> bytes its worker read in a run of ours
                for r in range(args.repeats):
                    for name, way in ((("ours", ours), ("recipe", recipe)) if r % 2 == 0
                                      else (("recipe", recipe), ("ours", ours))):
                        n, t, cpu = way()
                        rates[name].append(n / t / args.workers)
                        per_cpu_s[name].append(n / cpu)
                        print(f"{mode} run {r + 1}/{args.repeats} {name}: "
                              f"{rates[name][-1]:.2f} {unit_name(mode)}/s per core, "
                              f"{per_cpu_s[name][-1]:.2f} per CPU second "
                              f"({n} {unit_name(mode)} in {t:.1f} s)",
                              file=sys.stderr, flush=True)
                if args.profile:
                    stage = "-device-stage" if augment else ""
                    ours(os.path.join(args.profile, f"profile-ours-{mode}{stage}.txt"))
                ratios = [o / c for o, c in zip(rates["ours"], rates["recipe"])]
                cpu_ratios = [o / c for o, c in zip(per_cpu_s["ours"], per_cpu_s["recipe"])]
                unit = unit_name(mode)
                rows.append({
                    "bench": "loader", "mode": mode, "device_stage_in_workers": augment,
                    "pairs": args.pairs, "passes": args.passes, "workers": args.workers,
                    "prefetch_factor": prefetch, "shuffle_buffer": args.shuffle_buffer,
                    "clip": "50x300x300",
                    "format": args.format, "repeats": args.repeats,
                    f"{unit}_per_s_per_core": {k: round(float(np.median(v)), 2)
                                               for k, v in rates.items()},
                    "speedup": round(float(np.median(ratios)), 2),
                    "speedups": [round(x, 2) for x in ratios],
                    # cost, not wall time: no idle start or tail (module doc)
                    f"{unit}_per_cpu_second": {k: round(float(np.median(v)), 2)
                                               for k, v in per_cpu_s.items()},
                    "speedup_per_cpu_second": round(float(np.median(cpu_ratios)), 2),
                    "bytes_per_pair": {"shards": shard_bytes // args.pairs,
                                       "png": png_bytes // args.pairs},
                    "ours_worker_private_mb": peak_private[0] and round(peak_private[0]),
                    # all its workers read: shard indexes and the members' frames
                    "ours_read_bytes_per_pair": (sum(read.values()) // (args.pairs * args.passes)
                                                 if read else None),
                    "cpu": cpu_model(), "cores": os.cpu_count(), "ffmpeg": ffmpeg_version,
                    "ffmpeg_start_ms": ffmpeg_start_ms(),
                    # peaks so far; the set-up (decoded video, PNG writing) is in "main"
                    "peak_rss_mb": {
                        "main": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                        "children_max": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024},
                })
                print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
