"""The loader's speed against another version of its own code, interleaved on one machine.

    python benchmarks/ab_loader.py --baseline GIT_REF [--pairs 48] [--repeats 6]

``--baseline``: a git ref of this repository (exported to a temporary folder) or the
path of another source tree. Both versions read the same shards (50-frame 300x300
crops of real video with synthetic fakes, written once by the current code) with the
recipe's compression draws, ``--workers`` workers, device stage excluded (it runs on
the GPU in training): the loader's whole CPU work. Each run is a fresh process with
one version's ``dfaug`` first on its path; the runs alternate A, B, B, A, ... so that
the machine's drift falls on both alike. Prints one JSON line per mode: each
version's median rate (images or sequences per second, wall), the median of the
back-to-back ratios current / baseline, and their spread (min, max).

``--windows``: also time the current code with 16-frame windows 1/30 s apart
(``dfaug.times.window(16, 1/30)``, sequence mode), a temporal model's batches, beside
the recipe's 7-frame sequences.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

import dfaug
from dfaug.testing import media_path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_recompress import cpu_model, make_pairs, write_pair_shards  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# one run, in a fresh process; only the API both versions share, plus times= when asked
CHILD = r"""
import json, sys, time, resource
import torch
torch.set_num_threads(1)
from dfaug.loader import PairDataset
shards, mode, workers, seed, windows = json.loads(sys.argv[1])
extra = {}
if windows:
    from dfaug import times
    extra["times"] = times.window(16, 1 / 30)
ds = PairDataset(shards, mode=mode, batch_size=4, size=(288, 224), seed=seed, **extra)
loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                     prefetch_factor=4 if workers else None,
                                     collate_fn=lambda b: b)
per_pair = 8 if mode == "frame" else 1
t0 = time.perf_counter()
n = sum(len(b.keys) for b in loader)
seconds = time.perf_counter() - t0
print(json.dumps({"pairs": n, "items": n * per_pair, "seconds": seconds}))
"""


def source_tree(ref: str, tmp: str) -> str:
    """A folder holding ``dfaug``: the path itself, or the git ref exported."""
    if os.path.isdir(os.path.join(ref, "dfaug")):
        return os.path.abspath(ref)
    out = os.path.join(tmp, "baseline")
    os.makedirs(out)
    archive = subprocess.run(["git", "-C", ROOT, "archive", ref], capture_output=True)
    if archive.returncode:
        sys.exit(f"--baseline {ref!r}: neither a source tree nor a git ref "
                 f"({archive.stderr.decode().strip()})")
    with tempfile.TemporaryFile() as f:
        f.write(archive.stdout)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(out, filter="data")
    return out


def one_run(tree: str, shards: list, mode: str, workers: int, seed: int, windows: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps([shards, mode, workers, seed, windows])],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(f"a run of {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="git ref or source tree to compare with")
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=6, help="runs of each version (alternating)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--modes", default="frame,sequence")
    ap.add_argument("--windows", action="store_true",
                    help="also the current code with 16-frame windows 1/30 s apart")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.pairs < 1 or args.repeats < 1 or args.workers < 0:
        ap.error("--pairs and --repeats must be positive, --workers >= 0")
    modes = args.modes.split(",")
    if not set(modes) <= {"frame", "sequence"}:
        ap.error(f"--modes takes frame and/or sequence, got {args.modes!r}")
    video = dfaug.read_video(media_path("bigbuckbunny.mp4"))
    pairs = make_pairs(video, args.pairs, np.random.default_rng(args.seed))
    del video
    with tempfile.TemporaryDirectory() as tmp:
        baseline = source_tree(args.baseline, tmp)
        shards = write_pair_shards(pairs, tmp, max(1, args.pairs // (2 * max(1, args.workers))),
                                   os.cpu_count() or 1)
        trees = {"current": ROOT, "baseline": baseline}
        jobs = [(mode, False) for mode in modes] + ([("sequence", True)] if args.windows else [])
        for mode, windows in jobs:
            rates: dict = {"current": [], "baseline": []}
            names = ["current"] if windows else ["current", "baseline"]
            for r in range(args.repeats):
                order = names if r % 2 == 0 else names[::-1]
                for name in order:
                    got = one_run(trees[name], shards, mode, args.workers, args.seed, windows)
                    rates[name].append(got["items"] / got["seconds"])
                    print(f"{mode}{' windows' if windows else ''} run {r + 1} {name}: "
                          f"{rates[name][-1]:.2f}/s", file=sys.stderr, flush=True)
            row = {"bench": "ab_loader", "mode": mode,
                   "times": "window(16, 1/30)" if windows else "recipe",
                   "unit": ("images" if mode == "frame" else "sequences") + "_per_s",
                   "pairs": args.pairs, "workers": args.workers, "repeats": args.repeats,
                   "baseline": args.baseline,
                   "rate": {k: round(float(np.median(v)), 2) for k, v in rates.items() if v},
                   "cpu": cpu_model(), "cores": os.cpu_count()}
            if not windows:
                ratios = [c / b for c, b in zip(rates["current"], rates["baseline"])]
                row.update(ratio=round(float(np.median(ratios)), 3),
                           ratio_spread=[round(min(ratios), 3), round(max(ratios), 3)])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
