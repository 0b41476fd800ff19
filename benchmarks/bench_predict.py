"""Seconds per video of ``python -m dfdf_train predict``, start-up excluded.

predict runs twice as a user runs it, on 2 and on ``--videos`` copies of the same
videos (hard links: real.mp4, fake.mp4 of a folder); the difference in wall time over
the difference in count is the time per video, and what is left of the first run is
the start-up (imports, checkpoint and detector loading).

    python benchmarks/bench_predict.py --source .gpu/pre/dfdc_bench_10s \\
        --models large_crop=runs/large_crop/last.pt --device cuda
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True,
                    help="folder with the videos to copy (e.g. bench_preprocess's group)")
    ap.add_argument("--models", nargs="+", required=True, metavar="NAME=CHECKPOINT")
    ap.add_argument("--videos", type=int, default=8, help="videos in the second run (> 2)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    if args.videos <= 2:
        ap.error("--videos must be more than 2")
    names = sorted(f for f in os.listdir(args.source) if f.endswith(".mp4"))
    if not names:
        ap.error(f"no .mp4 in {args.source}")
    walls, tmp = {}, tempfile.mkdtemp(prefix="bench_predict")
    try:
        for n in (2, args.videos):
            folder = os.path.join(tmp, f"videos{n}")
            os.makedirs(folder)
            for k in range(n):
                name = names[k % len(names)]
                os.link(os.path.join(args.source, name), os.path.join(folder, f"{k:03d}_{name}"))
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dfdf_train", "predict", "--videos", folder,
                            "--models", *args.models, "--device", args.device,
                            "--out", os.path.join(tmp, f"sub{n}.csv")], cwd=ROOT, check=True)
            walls[n] = time.perf_counter() - t
        with open(os.path.join(tmp, "sub2.csv")) as f:
            submission = f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = (walls[args.videos] - walls[2]) / (args.videos - 2)
    print(json.dumps({"bench": "predict", "source": args.source, "models": args.models,
                      "device": args.device, "walls_s": {str(k): round(v, 1) for k, v in walls.items()},
                      "seconds_per_video": round(per, 2), "startup_s": round(walls[2] - 2 * per, 1),
                      "submission_of_2": submission}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
