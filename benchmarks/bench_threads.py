"""What thread settings cost: the commands' defaults against asking for more threads
than the cores, idle and beside a competing load.

Runs ``python -m dfdf_train train`` (``re``, B0, 64x56, 2 pairs a batch,
``--no-compression``, ``--device cpu``) and ``predict`` (the model just trained, on
two synthetic videos) as a user runs them, each in three settings:

- ``oversubscribed``: what a process gets from torch's and the loader's own defaults,
  torch threads = cores in the main process beside one loader worker per core
  (``--threads 2C --workers C`` on C cores);
- ``default``: the commands' own choice (training threads + workers = the cores);
- ``one_thread``: ``--threads 1`` (train: loading in-process).

and each of them idle and with ``--load`` busy-looping processes beside it (a
competing job). The baseline of each ratio is ``oversubscribed`` under the same load,
measured in the same run. ``train_s`` is metrics.csv's elapsed time at the last
iteration (the loop alone), ``wall_s`` the whole command.

    python benchmarks/bench_threads.py --iters 10 --load 1
Prints one JSON line per (command, setting, load), then a summary line.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def busy(stop) -> None:
    while not stop.is_set():
        sum(range(10000))


def make_data(folder: str) -> tuple[str, str]:
    """Pair shards of carphone (4 pairs) and a folder of two test videos."""
    import numpy as np
    from dfaug import PairShardWriter, read_video
    from dfaug.testing import media_path
    from dfdf_train import synth
    clip = read_video(media_path("carphone_pristine.mp4"))
    with PairShardWriter(os.path.join(folder, "pairs-%03d.tar"), max_pairs=2) as w:
        for start in range(0, 40, 10):
            real = clip.take(np.arange(start, start + 50))
            fake = real.frames.copy()
            fake[:, 36:108, 59:117] = fake[:, 36:108, 59:117, ::-1]
            w.write(f"c{start:03d}", real, type(real)(fake, real.pts))
    videos = synth.make_dfdc_folder(os.path.join(folder, "dfdc"), n_real=1, seed=0,
                                    fakes_per_real=1, frames=60, folder="test_videos")
    return os.path.join(folder, "pairs-*.tar"), videos.folders[0]


def run(cmd: list) -> float:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dfdf_train", *cmd], capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def main() -> int:
    from dfaug.testing import media_path  # noqa: F401  (fails early without the dev extra)
    from dfaug.threads import available_cores
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=10, help="training iterations (default 10)")
    ap.add_argument("--load", type=int, default=1,
                    help="busy-looping processes beside the loaded runs (default 1)")
    ap.add_argument("--commands", default="train,predict")
    args = ap.parse_args()
    cores = available_cores()
    settings = {"oversubscribed": ["--threads", str(2 * cores)],
                "default": [], "one_thread": ["--threads", "1"]}
    tmp = tempfile.mkdtemp(prefix="bench_threads")
    results = []
    try:
        shards, videos = make_data(tmp)
        ckpt = None
        for load in (0, args.load):
            stop = mp.Event()
            hogs = [mp.Process(target=busy, args=(stop,), daemon=True) for _ in range(load)]
            for h in hogs:
                h.start()
            try:
                for name, flags in settings.items():
                    row = {"bench": "threads", "cores": cores, "load": load, "setting": name}
                    if "train" in args.commands:
                        out = os.path.join(tmp, f"run-{load}-{name}")
                        extra = ["--workers", str(cores)] if name == "oversubscribed" else []
                        wall = run(["train", "--recipe", "re", "--data", shards, "--out", out,
                                    "--model-size", "b0", "--image-size", "64", "56",
                                    "--batch-size", "2", "--max-iters", str(args.iters),
                                    "--warmup-iters", "0", "--lr", "0.01", "--no-compression",
                                    "--device", "cpu", "--no-tensorboard",
                                    "--log-every", str(args.iters), *flags, *extra])
                        with open(os.path.join(out, "metrics.csv")) as f:
                            last = list(csv.DictReader(f))[-1]
                        ckpt = ckpt or os.path.join(out, "last.pt")
                        results.append({**row, "command": "train", "wall_s": round(wall, 2),
                                        "train_s": float(last["elapsed_s"])})
                        print(json.dumps(results[-1]), flush=True)
                    if "predict" in args.commands and ckpt:
                        wall = run(["predict", "--videos", videos, "--models", f"re={ckpt}",
                                    "--device", "cpu", "--out",
                                    os.path.join(tmp, f"sub-{load}-{name}.csv"), *flags])
                        results.append({**row, "command": "predict", "wall_s": round(wall, 2)})
                        print(json.dumps(results[-1]), flush=True)
            finally:
                stop.set()
                for h in hogs:
                    h.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {"bench": "threads_summary", "cores": cores, "load": args.load,
               "cpu": platform.processor() or platform.machine(), "ratios": {}}
    for r in results:
        base = next(b for b in results if b["command"] == r["command"] and b["load"] == r["load"]
                    and b["setting"] == "oversubscribed")
        key = f"{r['command']}/{r['setting']}/load{r['load']}"
        field = "train_s" if r["command"] == "train" else "wall_s"
        summary["ratios"][key] = {field: r[field],
                                  "speedup_vs_oversubscribed": round(base[field] / r[field], 2)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
