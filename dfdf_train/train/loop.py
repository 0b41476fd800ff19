"""The training loop, with its validation, metrics and checkpoints."""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import time
from typing import Optional

import torch
import torch.nn.functional as F

import dfaug
from dfaug.device_stage import Augment
from dfaug.threads import torch_threads

from ..progress import Progress
from .config import TrainConfig
from .run import Run, _channels_last

log = logging.getLogger("dfdf_train.train")

# 2: the recipe entry saved beside the settings ("recipe"); 1 (no "format"): settings only
CHECKPOINT_FORMAT = 2


def validate(run) -> dict:
    """Validation log-loss and accuracy of the real and fake members apart, centre
    crops, no re-encoding, no mixup."""
    cfg = run.cfg
    if not cfg.val_data:
        return {}
    loader = dfaug.PairLoader(
        cfg.val_data, mode=cfg.mode, batch_size=cfg.batch_size, size=cfg.loader_size(),
        compression=None, shuffle_buffer=1, rank=run.rank, world_size=run.world,
        device_stage=Augment(run.augment, cfg.mode, mixup=False, center=True),
        num_workers=min(2, run.loader.num_workers), device=str(run.device))
    run.model.eval()
    total = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
    with torch.no_grad(), torch.autocast(run.device.type, dtype=run.amp_dtype or torch.float32,
                                         enabled=run.amp_dtype is not None):
        for x, target in loader:   # real and fake members apart: targets 0 and 1
            x, target = x.to(run.device), target.to(run.device)
            if run.channels_last:
                x = _channels_last(x)
            logits = run.model(x).float().view(target.shape)
            total[0] += F.binary_cross_entropy_with_logits(logits, target, reduction="sum").item()
            total[1] += ((logits > 0).float() == target).sum().item()
            total[2] += target.numel()
    if run.world > 1:
        total = total.to(run.device)
        torch.distributed.all_reduce(total)
        total = total.cpu()
    run.set_phase()
    if total[2] == 0:
        log.warning("no validation pairs were read from %s", cfg.val_data)
        return {}
    return {"val_loss": float(total[0] / total[2]), "val_accuracy": float(total[1] / total[2]),
            "val_images": int(total[2])}


def checkpoint_state(run) -> dict:
    """Everything a checkpoint holds (every rank joins the loaders' gather)."""
    loaders = [run.loader.state_dict()]
    if run.world > 1:
        loaders = [None] * run.world
        torch.distributed.all_gather_object(loaders, run.loader.state_dict())
    # run-describing: the recipe entry and the settings, so that predict needs
    # nothing of train to run the model (CHECKPOINT_FORMAT says which layout)
    return {"format": CHECKPOINT_FORMAT, "recipe": run.cfg.entry.as_dict(),
            "config": dataclasses.asdict(run.cfg), "iteration": run.iteration,
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
            "loaders": loaders, "torch_rng": torch.get_rng_state(),
            "elapsed_s": run.elapsed_s(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

def save_checkpoint(run) -> Optional[str]:
    """--out/last.pt, written atomically by rank 0."""
    state = checkpoint_state(run)  # every rank joins the gather
    if run.rank != 0:
        return None
    path = os.path.join(run.cfg.out, "last.pt")
    atomic_save(state, path)
    return path

def load_checkpoint(run, path: str) -> None:
    """Continue ``run`` exactly where the checkpoint at ``path`` left it."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if len(state["loaders"]) != run.world:
        raise ValueError(f"{path} was saved by {len(state['loaders'])} processes; resume it "
                         f"with the same number, not {run.world}")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.loader.load_state_dict(state["loaders"][run.rank])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    run.iteration = state["iteration"]
    run.elapsed = state.get("elapsed_s", 0.0)
    run.started = time.perf_counter()


def atomic_save(obj, path: str) -> None:
    """torch.save to a temporary name beside ``path``, then rename: never half a file."""
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
    with torch_threads(None):  # Run sets the run's count; the caller's comes back after
        return _train(cfg, resume)


def _train(cfg: TrainConfig, resume: bool) -> dict:

    if not resume and os.path.exists(os.path.join(cfg.out, "last.pt")):
        raise ValueError(f"--out {cfg.out} already holds a run (last.pt): pass --resume to "
                         "continue it, or choose another --out")
    run = Run(cfg)  # bad --data and the like fail here, before --out is made
    os.makedirs(cfg.out, exist_ok=True)
    if resume:
        load_checkpoint(run, os.path.join(cfg.out, "last.pt"))
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
                row.update(validate(run))
            if row:
                row.update(iteration=it, epoch=epoch, elapsed_s=round(run.elapsed_s(), 1))
                metrics.write(row)
                last = row
            progress.update(1, _figures({**last, "loss": window_loss / window_steps}
                                        if window_steps else last))
            if it % cfg.ckpt_every == 0 or it == stop:
                save_checkpoint(run)
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


def _figures(row: dict) -> str:
    parts = []
    for key, fmt in (("loss", "loss {:.4f}"), ("lr", "lr {:.2e}"), ("images_per_s", "{:.1f} img/s"),
                     ("val_loss", "val log-loss {:.4f}")):
        if row.get(key, "") != "":
            parts.append(fmt.format(row[key]))
    return ", ".join(parts)
