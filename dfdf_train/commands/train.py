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

from ..recipes import RECIPES
from ..train.config import OPTIMIZERS, PRECISIONS, TrainConfig

HELP = "train one of the recipe's models (" + ", ".join(RECIPES) + ") on pair shards"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    S = argparse.SUPPRESS  # unset flags stay unset, so a YAML value is not overridden
    g = p.add_argument_group("data and run")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=S,
                   help="which model: " + "; ".join(f"{r.name} ({r.title})"
                                                     for r in RECIPES.values()))
    g.add_argument("--data", nargs="+", default=S, metavar="SHARDS",
                   help="pair shards from `preprocess` (paths or quoted globs)")
    g.add_argument("--out", default=S, help="run folder: checkpoints, metrics.csv, TensorBoard logs")
    g.add_argument("--val-data", nargs="+", default=S, metavar="SHARDS",
                   help="validation pair shards (other videos than --data); log-loss of "
                        "real and fake members, centre crops, every --val-every iterations")
    g.add_argument("--config", metavar="YAML", help="settings file; flags given here win")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last.pt exactly")
    g.add_argument("--stop-at", type=int, default=S, metavar="IT",
                   help="stop (with a checkpoint) at this iteration without changing the "
                        "schedule, to split a long run into jobs")
    g = p.add_argument_group("model")
    g.add_argument("--model-size", choices=["b7", "b0"], default=S,
                   help=f"EfficientNet size (default {d.model_size}, the recipe; b0 for trials)")
    g.add_argument("--pretrained", default=S, metavar="PATH|hub",
                   help="ImageNet weights: a local tf_efficientnet_b7.ns_jft_in1k file "
                        "(.pth/.safetensors), or 'hub' to let timm download them; "
                        "default: random initialisation")
    g = p.add_argument_group("optimisation (recipe defaults)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=S,
                   help=f"default {d.optimizer}: the recipe's SGD with Nesterov momentum; "
                        "adamw (--momentum unused) trains small models from random weights "
                        "reliably, where SGD's first steps decide by chance whether they learn "
                        "(docs/training.md, \"Training from scratch\")")
    g.add_argument("--lr", type=float, default=S, help=f"default {d.lr}")
    g.add_argument("--momentum", type=float, default=S, help=f"default {d.momentum}")
    g.add_argument("--weight-decay", type=float, default=S, help=f"default {d.weight_decay}")
    g.add_argument("--warmup-iters", type=int, default=S,
                   help=f"classifier-only iterations, backbone frozen (default {d.warmup_iters})")
    g.add_argument("--lr-ramp-iters", type=int, default=S, metavar="N",
                   help="raise the lr linearly from lr/N to lr over the first N iterations "
                        f"(default {d.lr_ramp_iters}: the recipe has none); for trials "
                        "of models trained from scratch")
    g.add_argument("--max-iters", type=int, default=S,
                   help=f"iterations; the lr decays linearly to 0 there (default {d.max_iters})")
    g.add_argument("--batch-size", type=int, default=S, help=f"pairs per batch and process "
                   f"(default {d.batch_size})")
    g.add_argument("--image-size", type=int, nargs=2, default=S, metavar=("H", "W"),
                   help="model input crop (default 224 192); the augmentation scales with it")
    g.add_argument("--input-size", type=int, nargs=2, default=S, metavar=("H", "W"),
                   help="size the loader brings clips to (default: 9/7 x 7/6 of --image-size)")
    g.add_argument("--no-compression", dest="compression", action="store_false", default=S,
                   help="switch off the H.264 re-encoding augmentation")
    g = p.add_argument_group("machine")
    g.add_argument("--threads", type=int, default=S,
                   help="CPU cores this process and its loader workers may use together "
                        "(default: the cores it may run on, shared among a node's torchrun "
                        "processes); each worker runs one thread, training gets the rest. "
                        "Losses are reproducible for a fixed setting")
    g.add_argument("--workers", type=int, default=S,
                   help="loader worker processes per process (default: half of --threads on "
                        "a CPU, all but one on a GPU)")
    g.add_argument("--shuffle-buffer", type=int, default=S,
                   help="pairs mixed within each loader split; a buffered pair holds no frames, "
                   f"so a large one is cheap (default {d.shuffle_buffer})")
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=S)
    g.add_argument("--precision", choices=PRECISIONS, default=S,
                   help="auto: bf16 autocast on GPUs that have it, else fp16; fp32 on CPU")
    g.add_argument("--channels-last", dest="channels_last", action="store_true", default=S,
                   help="default on CUDA")
    g.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=S)
    g.add_argument("--seed", type=int, default=S)
    g = p.add_argument_group("logging")
    g.add_argument("--log-every", type=int, default=S, help=f"default {d.log_every}")
    g.add_argument("--val-every", type=int, default=S, help=f"default {d.val_every}")
    g.add_argument("--ckpt-every", type=int, default=S, help=f"default {d.ckpt_every}")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=S)
    g.add_argument("--progress-every", type=float, default=S, metavar="SECONDS",
                   help="progress line interval when not on a terminal (default 10)")


def run(args: argparse.Namespace) -> int:
    from ..train.config import config_from_args, resumed_config
    from ..train.loop import train
    cfg = config_from_args(args)
    if args.resume:
        cfg = resumed_config(cfg, explicit=set(vars(args)))
    train(cfg.check(), resume=args.resume)
    return 0
