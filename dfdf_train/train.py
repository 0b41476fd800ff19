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
import csv
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Optional

HELP = "train one of the recipe's models (large_crop, re, sequence) on pair shards"
log = logging.getLogger("dfdf_train.train")

RECIPES = {"large_crop": "frame", "re": "frame", "sequence": "sequence"}
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# the loader's frame size against the model's crop: the recipe's 1.5x face boxes are
# brought to 288x224 so that SmallestMaxSize(224) + RandomCrop(224x192) sees the face
INPUT_PER_CROP = (288 / 224, 224 / 192)
OPTIMIZERS = ("sgd", "adamw")
# flags that may change on --resume without changing what the run computes
RESUME_MAY_CHANGE = {"stop_at", "log_every", "ckpt_every", "val_every", "tensorboard",
                     "progress_every", "threads"}


@dataclass
class TrainConfig:
    """Every setting of a run; saved in each checkpoint."""

    recipe: str = "large_crop"
    data: list = field(default_factory=list)
    out: str = ""
    val_data: list = field(default_factory=list)
    model_size: str = "b7"
    pretrained: Optional[str] = None
    optimizer: str = "sgd"
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    lr_ramp_iters: int = 0
    max_iters: int = 100_000
    stop_at: Optional[int] = None
    batch_size: int = 8
    image_size: tuple = (224, 192)
    input_size: Optional[tuple] = None
    compression: bool = True
    workers: Optional[int] = None
    threads: Optional[int] = None
    shuffle_buffer: int = 1024
    precision: str = "auto"
    channels_last: Optional[bool] = None
    device: str = "auto"
    seed: int = 0
    log_every: int = 20
    val_every: int = 1000
    ckpt_every: int = 1000
    tensorboard: bool = True
    progress_every: float = 10.0

    def check(self) -> "TrainConfig":
        if self.recipe not in RECIPES:
            raise ValueError(f"--recipe must be one of {sorted(RECIPES)}, got {self.recipe!r}")
        if not self.data:
            raise ValueError("--data is required: pair shards, e.g. 'shards/*.tar'")
        if not self.out:
            raise ValueError("--out is required: the run's folder")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("max_iters", "batch_size", "log_every", "val_every", "ckpt_every",
                     "shuffle_buffer"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.lr_ramp_iters <= self.max_iters:
            raise ValueError(f"--lr-ramp-iters must be in [0, max_iters], got {self.lr_ramp_iters}")
        if not 0 <= self.warmup_iters <= self.max_iters:
            raise ValueError(f"--warmup-iters must be in [0, max_iters], got {self.warmup_iters}")
        if self.stop_at is not None and not 0 < self.stop_at <= self.max_iters:
            raise ValueError(f"--stop-at must be in (0, max_iters], got {self.stop_at}")
        if self.lr <= 0 or self.momentum < 0 or self.weight_decay < 0:
            raise ValueError("--lr must be > 0, --momentum and --weight-decay >= 0")
        for name in ("image_size", "input_size"):
            v = getattr(self, name)
            if v is not None:
                if len(v) != 2 or min(v) < 16:
                    raise ValueError(f"--{name.replace('_', '-')} must be two sizes H W >= 16, got {v}")
                setattr(self, name, tuple(int(x) for x in v))
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"--workers must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        return self

    @property
    def mode(self) -> str:
        return RECIPES[self.recipe]

    def loader_size(self) -> tuple:
        if self.input_size:
            return self.input_size
        return tuple(round(s * r) for s, r in zip(self.image_size, INPUT_PER_CROP))

    def augment(self):
        """The recipe's PairAugment preset for this model, scaled to ``image_size``."""
        from dfaug import PairAugment
        h, w = self.image_size
        if self.image_size == (224, 192):
            return PairAugment(self.recipe)
        extra = {"smallest_max_size": w, "pad_to": (h, w)} if self.recipe == "large_crop" \
            else {"smallest_max_size": h}
        return PairAugment(self.recipe, crop=(h, w), translate_const=int(w * 0.45), **extra)


# ------------------------------------------------------------------ command line

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    S = argparse.SUPPRESS  # unset flags stay unset, so a YAML value is not overridden
    g = p.add_argument_group("data and run")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=S,
                   help="which model: large_crop (model 1), re (model 2), sequence (model 3)")
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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values: dict = {}
    if args.config:
        values.update(read_yaml(args.config))
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values.update({k: v for k, v in vars(args).items() if k in names})
    cfg = TrainConfig(**values)
    if isinstance(cfg.data, str):
        cfg.data = [cfg.data]
    if isinstance(cfg.val_data, str):
        cfg.val_data = [cfg.val_data]
    return cfg


def read_yaml(path: str) -> dict:
    import yaml
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config {path!r} not found")
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ValueError(f"--config {path}: expected a mapping of settings")
    values = {k.replace("-", "_"): v for k, v in values.items()}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"--config {path}: unknown settings {unknown}; known: {sorted(names)}")
    return values


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if args.resume:
        cfg = resumed_config(cfg, explicit=set(vars(args)))
    train(cfg.check(), resume=args.resume)
    return 0


def resumed_config(cfg: TrainConfig, explicit: set) -> TrainConfig:
    """The saved run's settings; flags that would change what it computes must match."""
    import torch
    path = os.path.join(cfg.out, "last.pt")
    if not cfg.out or not os.path.isfile(path):
        raise FileNotFoundError(f"--resume: no checkpoint {path!r}")
    # mmap: only the settings are read here, not the weights (train() loads those)
    saved = TrainConfig(**torch.load(path, map_location="cpu", weights_only=False,
                                     mmap=True)["config"])
    for name in explicit & {f.name for f in dataclasses.fields(TrainConfig)}:
        new, old = getattr(cfg, name), getattr(saved, name)
        if name in RESUME_MAY_CHANGE:
            setattr(saved, name, new)
        elif _norm(new) != _norm(old):
            raise ValueError(f"--resume: --{name.replace('_', '-')} {new!r} differs from the "
                             f"saved run's {old!r}; start a new run to change it")
    return saved


def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v


# ------------------------------------------------------------------ the run

class Run:
    """The pieces of one training process: model, optimiser, loader, logs."""

    def __init__(self, cfg: TrainConfig):
        import torch
        import dfaug
        from dfaug.threads import set_torch_threads
        from .models import build_model, to_channels_last

        self.cfg = cfg
        self.rank, self.world = _init_distributed(cfg)
        self.device = _device(cfg, self.rank)
        cuda = self.device.type == "cuda"
        self.amp_dtype = _amp_dtype(cfg.precision, cuda)
        self.channels_last = cuda if cfg.channels_last is None else cfg.channels_last
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        model = build_model(cfg.recipe, cfg.pretrained, size=cfg.model_size).to(self.device)
        if self.channels_last:
            model = to_channels_last(model)
        self.model = model
        self.ddp = None
        if cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                               weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                             weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda it: lr_factor(it, cfg.max_iters, cfg.lr_ramp_iters))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.threads, workers = cpu_plan(cfg, cuda)
        set_torch_threads(self.threads)
        self.augment = cfg.augment()  # training batches and validation's centre view
        self.loader = dfaug.PairLoader(
            cfg.data, augment=self.augment, mode=cfg.mode, batch_size=cfg.batch_size,
            num_workers=workers, device=str(self.device), seed=cfg.seed,
            size=cfg.loader_size(), shuffle_buffer=cfg.shuffle_buffer,
            compression=dfaug.CompressionSampler() if cfg.compression else None,
            rank=self.rank, world_size=self.world, drop_last=self.world > 1)
        self.iteration = 0
        self.elapsed, self.started = 0.0, time.perf_counter()  # run time before this process

    def elapsed_s(self) -> float:
        """Seconds the run has trained, across resumes (saved in each checkpoint)."""
        return self.elapsed + time.perf_counter() - self.started

    # -- phases: the recipe's frozen-backbone warm-up, then everything trains

    def set_phase(self) -> None:
        import torch
        warm = self.iteration < self.cfg.warmup_iters
        head = self.model.backbone.get_classifier()
        for p in self.model.parameters():
            p.requires_grad_(not warm)
        for p in head.parameters():
            p.requires_grad_(True)
        if warm:
            self.model.eval()
            head.train()
        else:
            self.model.train()
            if self.world > 1 and self.ddp is None:
                # built after the warm-up: DDP fixes the set of trained parameters
                self.ddp = torch.nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def step(self, x, y) -> float:
        import torch
        import torch.nn.functional as F
        warm = self.iteration < self.cfg.warmup_iters
        net = self.ddp if (self.ddp is not None and not warm) else self.model
        if self.channels_last:
            x = _channels_last(x)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            logits = net(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y.float())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if warm and self.world > 1:  # no DDP yet: average the classifier's gradients
            for p in self.model.backbone.get_classifier().parameters():
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.world
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        return loss.item()

    # -- validation: real and fake members apart, centre crops, no mixup

    def validate(self) -> dict:
        import torch
        import torch.nn.functional as F
        import dfaug
        from dfaug.device_stage import Augment
        cfg = self.cfg
        if not cfg.val_data:
            return {}
        loader = dfaug.PairLoader(
            cfg.val_data, mode=cfg.mode, batch_size=cfg.batch_size, size=cfg.loader_size(),
            compression=None, shuffle_buffer=1, rank=self.rank, world_size=self.world,
            device_stage=Augment(self.augment, cfg.mode, mixup=False, center=True),
            num_workers=min(2, self.loader.num_workers), device=str(self.device))
        self.model.eval()
        total = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
        with torch.no_grad(), torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                             enabled=self.amp_dtype is not None):
            for x, target in loader:   # real and fake members apart: targets 0 and 1
                x, target = x.to(self.device), target.to(self.device)
                if self.channels_last:
                    x = _channels_last(x)
                logits = self.model(x).float().view(target.shape)
                total[0] += F.binary_cross_entropy_with_logits(logits, target, reduction="sum").item()
                total[1] += ((logits > 0).float() == target).sum().item()
                total[2] += target.numel()
        if self.world > 1:
            total = total.to(self.device)
            torch.distributed.all_reduce(total)
            total = total.cpu()
        self.set_phase()
        if total[2] == 0:
            log.warning("no validation pairs were read from %s", cfg.val_data)
            return {}
        return {"val_loss": float(total[0] / total[2]), "val_accuracy": float(total[1] / total[2]),
                "val_images": int(total[2])}

    # -- checkpoints

    def state(self) -> dict:
        import torch
        loaders = [self.loader.state_dict()]
        if self.world > 1:
            loaders = [None] * self.world
            torch.distributed.all_gather_object(loaders, self.loader.state_dict())
        return {"config": dataclasses.asdict(self.cfg), "iteration": self.iteration,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "loaders": loaders, "torch_rng": torch.get_rng_state(),
                "elapsed_s": self.elapsed_s(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def save(self) -> Optional[str]:
        state = self.state()  # every rank joins the gather
        if self.rank != 0:
            return None
        path = os.path.join(self.cfg.out, "last.pt")
        atomic_save(state, path)
        return path

    def load(self, path: str) -> None:
        import torch
        state = torch.load(path, map_location="cpu", weights_only=False)
        if len(state["loaders"]) != self.world:
            raise ValueError(f"{path} was saved by {len(state['loaders'])} processes; resume it "
                             f"with the same number, not {self.world}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.loader.load_state_dict(state["loaders"][self.rank])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.iteration = state["iteration"]
        self.elapsed = state.get("elapsed_s", 0.0)
        self.started = time.perf_counter()


def atomic_save(obj, path: str) -> None:
    """torch.save to a temporary name beside ``path``, then rename: never half a file."""
    import torch
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Metrics:
    """metrics.csv (and TensorBoard when installed), written by rank 0 only."""

    COLUMNS = ["iteration", "epoch", "loss", "lr", "images_per_s", "val_loss",
               "val_accuracy", "elapsed_s"]

    def __init__(self, out: str, enabled: bool, tensorboard: bool, resume_at: int):
        self.enabled = enabled
        self.path = os.path.join(out, "metrics.csv")
        self.tb = None
        if not enabled:
            return
        rows = []
        if resume_at and os.path.isfile(self.path):  # drop what came after the checkpoint
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= resume_at]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.COLUMNS)
            w.writeheader()
            w.writerows(rows)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(os.path.join(out, "tensorboard"), purge_step=resume_at or None)
            except ImportError:
                log.info("tensorboard is not installed: metrics go to %s only "
                         "(pip install tensorboard for TensorBoard logs)", self.path)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.COLUMNS).writerow({k: row.get(k, "") for k in self.COLUMNS})
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("iteration", "epoch") and v != "":
                    self.tb.add_scalar(k, v, row["iteration"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Run (or continue) a training run; returns the last metrics."""
    from dfaug.threads import torch_threads
    with torch_threads(None):  # Run sets the run's count; the caller's comes back after
        return _train(cfg, resume)


def _train(cfg: TrainConfig, resume: bool) -> dict:
    import torch
    from .progress import Progress

    if not resume and os.path.exists(os.path.join(cfg.out, "last.pt")):
        raise ValueError(f"--out {cfg.out} already holds a run (last.pt): pass --resume to "
                         "continue it, or choose another --out")
    run = Run(cfg)  # bad --data and the like fail here, before --out is made
    os.makedirs(cfg.out, exist_ok=True)
    if resume:
        run.load(os.path.join(cfg.out, "last.pt"))
        log.info("resumed %s at iteration %d", cfg.out, run.iteration)
    main = run.rank == 0
    metrics = Metrics(cfg.out, main, cfg.tensorboard, run.iteration)
    stop = cfg.stop_at or cfg.max_iters
    progress = Progress(stop, f"train {cfg.recipe}", "it", enabled=main, initial=run.iteration,
                        every_s=cfg.progress_every)
    run.set_phase()
    epoch = run.loader.dataset.epoch
    resumed_epoch = resume  # its batches may all have been trained on already
    last: dict = {}
    window_start = time.perf_counter()
    window_loss, window_steps, window_images = 0.0, 0, 0
    while run.iteration < stop:
        run.loader.set_epoch(epoch)
        batches = 0
        for x, y in run.loader:
            batches += 1
            was_warm = run.iteration < cfg.warmup_iters
            loss = run.step(x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True))
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at iteration {run.iteration}; lower --lr")
            if was_warm and run.iteration == cfg.warmup_iters:
                run.set_phase()
            window_loss += loss
            window_steps += 1
            window_images += y.numel()
            it = run.iteration
            row = {}
            if it % cfg.log_every == 0 or it == stop:
                elapsed = time.perf_counter() - window_start
                # counted, not derived from `it`: after a resume the first window is short
                row = {"loss": window_loss / window_steps, "lr": run.scheduler.get_last_lr()[0],
                       "images_per_s": window_images * run.world / elapsed}
                window_loss, window_steps, window_images = 0.0, 0, 0
                window_start = time.perf_counter()
            if cfg.val_data and (it % cfg.val_every == 0 or it == stop):
                row.update(run.validate())
            if row:
                row.update(iteration=it, epoch=epoch, elapsed_s=round(run.elapsed_s(), 1))
                metrics.write(row)
                last = row
            progress.update(1, _figures({**last, "loss": window_loss / window_steps}
                                        if window_steps else last))
            if it % cfg.ckpt_every == 0 or it == stop:
                run.save()
            if it >= stop:
                break
        else:
            if batches == 0 and not resumed_epoch:
                raise ValueError(f"no training pairs reached rank {run.rank} in epoch {epoch}: "
                                 f"check --data {cfg.data} (and the skipped-pair warnings)")
            epoch += 1
            resumed_epoch = False
    progress.close()
    metrics.close()
    if main:
        skipped = len(run.loader.skipped)
        log.info("done at iteration %d: %s; %d pairs skipped; checkpoint %s", run.iteration,
                 _figures(last), skipped, os.path.join(cfg.out, "last.pt"))
    if run.world > 1:
        torch.distributed.barrier()
    return last


def lr_factor(it: int, max_iters: int, ramp: int = 0) -> float:
    """The lr of iteration ``it`` over --lr: the recipe's linear decay to 0 at
    ``max_iters``, times a linear ramp over the first ``ramp`` iterations."""
    decay = max(0.0, (max_iters - it) / max_iters)
    return decay * min(1.0, (it + 1) / ramp) if ramp else decay


def cpu_plan(cfg: TrainConfig, cuda: bool) -> tuple:
    """(training threads, loader workers) of this process: within --threads cores,
    by default the cores it may run on shared among the node's torchrun processes. On
    a CPU half go to the loader, on a GPU all but the one that drives it."""
    from dfaug.threads import available_cores, split_cores
    budget = cfg.threads
    if budget is None:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        budget = max(1, available_cores() // local)
    default = budget - 1 if cuda else budget // 2  # 1 core: load in-process
    return split_cores(budget, cfg.workers, default_workers=default)


def _channels_last(x):
    """channels_last for images (N, C, H, W) and for sequences (B, T, C, H, W), whose
    frames the sequence model runs as one (B*T, C, H, W) batch."""
    import torch
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)


def _figures(row: dict) -> str:
    parts = []
    for key, fmt in (("loss", "loss {:.4f}"), ("lr", "lr {:.2e}"), ("images_per_s", "{:.1f} img/s"),
                     ("val_loss", "val log-loss {:.4f}")):
        if row.get(key, "") != "":
            parts.append(fmt.format(row[key]))
    return ", ".join(parts)


def _init_distributed(cfg: TrainConfig) -> tuple:
    import torch
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        cuda = cfg.device != "cpu" and torch.cuda.is_available()
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _device(cfg: TrainConfig, rank: int):
    import torch
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible")
    if cfg.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    index, count = int(os.environ.get("LOCAL_RANK", rank)), torch.cuda.device_count()
    if index >= count:  # two ranks on one GPU: NCCL fails ("Duplicate GPU detected")
        raise ValueError(f"local rank {index} has no GPU of its own ({count} visible): start at "
                         f"most {count} processes per node (torchrun --nproc-per-node), "
                         "or train on CPUs with --device cpu")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _amp_dtype(precision: str, cuda: bool):
    import torch
    if precision == "fp32" or (precision == "auto" and not cuda):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16
