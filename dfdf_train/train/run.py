"""One training process's pieces: model, optimiser and schedule, loader, the recipe's
frozen-backbone warm-up and the step; devices, precision and DDP."""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import dfaug
import dfaug.threads

from ..models import build_model, to_channels_last
from .config import TrainConfig


class Run:
    """The pieces of one training process: model, optimiser, loader, logs."""

    def __init__(self, cfg: TrainConfig):

        self.cfg = cfg
        self.rank, self.world = _init_distributed(cfg)
        self.device = pick_device(cfg, self.rank)
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
        dfaug.threads.set_torch_threads(self.threads)
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


def lr_factor(it: int, max_iters: int, ramp: int = 0) -> float:
    """The lr of iteration ``it`` over --lr: the recipe's linear decay to 0 at
    ``max_iters``, times a linear ramp over the first ``ramp`` iterations."""
    decay = max(0.0, (max_iters - it) / max_iters)
    return decay * min(1.0, (it + 1) / ramp) if ramp else decay


def cpu_plan(cfg: TrainConfig, cuda: bool) -> tuple:
    """(training threads, loader workers) of this process: within --threads cores,
    by default the cores it may run on shared among the node's torchrun processes. On
    a CPU half go to the loader, on a GPU all but the one that drives it."""
    budget = cfg.threads
    if budget is None:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        budget = max(1, dfaug.threads.available_cores() // local)
    default = budget - 1 if cuda else budget // 2  # 1 core: load in-process
    return dfaug.threads.split_cores(budget, cfg.workers, default_workers=default)


def _channels_last(x):
    """channels_last for images (N, C, H, W) and for sequences (B, T, C, H, W), whose
    frames the sequence model runs as one (B*T, C, H, W) batch."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)


def _init_distributed(cfg: TrainConfig) -> tuple:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        cuda = cfg.device != "cpu" and torch.cuda.is_available()
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def pick_device(cfg: TrainConfig, rank: int):
    """The device of this rank: its own GPU, or the CPU."""
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
    if precision == "fp32" or (precision == "auto" and not cuda):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16
