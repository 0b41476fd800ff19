"""Train one of the recipe's three models on pair shards.

    python -m dfdf_train train --recipe large_crop --data 'shards/*.tar' --out runs/large_crop

Defaults are the recipe's (docs/recipe.md "Training"): SGD Nesterov, lr 0.005, momentum
0.9, weight decay 1e-4; the first 100 iterations train only the classifier with the
backbone frozen in eval mode; then lr * (max_iters - it) / max_iters down to
--max-iters 100000; 8 pairs per batch (x 8 frames for the frame models, 7-frame
sequences for the sequence model); aligned mixup with soft-target BCE. Every value can
be set by a flag or in a YAML file (--config; keys are the flag names with
underscores; flags win over the file).

Beyond the recipe: bf16/fp16 autocast and channels_last on CUDA (--precision fp32 for
the recipe's FP32); DDP under torchrun (NCCL on GPUs, gloo on CPUs; the loader splits
the shards by rank); validation log-loss on --val-data every --val-every iterations;
checkpoints (--out/last.pt) written atomically every --ckpt-every iterations;
--resume continues the run exactly where its last checkpoint left it (model, optimiser,
schedule, loader position, random state); metrics to --out/metrics.csv and to
TensorBoard when the tensorboard package is installed.

Multi-GPU: torchrun --nproc-per-node 8 -m dfdf_train train --recipe re --data ... --out ...
"""
from __future__ import annotations

import argparse

from .config import (OPTIMIZERS, PRECISIONS, RESUME_MAY_CHANGE, TrainConfig, add_arguments,
                     config_from_args, read_yaml, resumed_config)
from .loop import CHECKPOINT_FORMAT, Metrics, atomic_save, train, validate
from .run import Run, cpu_plan, lr_factor, pick_device

HELP = "train one of the recipe's models (large_crop, re, sequence) on pair shards"

__all__ = ["HELP", "run", "OPTIMIZERS", "PRECISIONS", "RESUME_MAY_CHANGE", "TrainConfig",
           "add_arguments", "config_from_args", "read_yaml", "resumed_config",
           "CHECKPOINT_FORMAT", "Metrics", "atomic_save", "train", "validate", "Run",
           "cpu_plan", "lr_factor", "pick_device"]


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.resume:
        cfg = resumed_config(cfg, explicit=set(vars(args)))
    train(cfg.check(), resume=args.resume)
    return 0
