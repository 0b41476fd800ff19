"""A training run's settings: the dataclass, its flags and YAML file, and what --resume
may change."""
from __future__ import annotations

import argparse  # noqa: F401  (config_from_args takes an argparse.Namespace)
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Optional

from ..recipes import RECIPES, Recipe

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
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
    # None: the recipe entry's schedule (dfdf_train.recipes)
    optimizer: Optional[str] = None
    lr: Optional[float] = None
    momentum: Optional[float] = None
    weight_decay: Optional[float] = None
    warmup_iters: Optional[int] = None
    lr_ramp_iters: int = 0
    max_iters: Optional[int] = None
    stop_at: Optional[int] = None
    batch_size: Optional[int] = None
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

    def __post_init__(self):
        if self.recipe in RECIPES:  # else check() says so
            schedule = RECIPES[self.recipe].schedule
            for f in dataclasses.fields(schedule):
                if getattr(self, f.name) is None:
                    setattr(self, f.name, getattr(schedule, f.name))

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
    def entry(self) -> Recipe:
        """The recipe entry this run trains."""
        return RECIPES[self.recipe]

    @property
    def mode(self) -> str:
        return self.entry.mode

    def loader_size(self) -> tuple:
        return self.entry.loader_size(self.image_size, self.input_size)

    def augment(self):
        """The entry's PairAugment view, scaled to ``image_size``."""
        return self.entry.augment_for(self.image_size)


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
