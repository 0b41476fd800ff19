"""The whole recipe on a small set built from real video (the ``demo`` command,
:mod:`dfdf_train.commands.demo`, says what it runs and how long it takes)."""
from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger("dfdf_train.demo")


@dataclass(frozen=True)
class DemoConfig:
    train_reals: int = 12
    test_reals: int = 4
    frames: int = 90
    clips_per_pair: int = 3
    iters: int = 300
    batch_size: int = 2
    image_size: tuple = (64, 56)
    optimizer: str = "adamw"   # from random weights: docs/training.md, "Training from scratch"
    lr: float = 0.002
    weight_decay: float = 0.01
    seed: int = 0
    threads: Optional[int] = None
    grid: Optional[tuple] = None  # robustness cells (None: the command's default grid)


QUICK = DemoConfig(train_reals=3, test_reals=2, iters=30, grid=("h264:23,40",))


def demo(out: str, cfg: DemoConfig = DemoConfig()) -> dict:
    """Run every step in ``out``; returns the figures (log-loss, pairs, seconds)."""
    from . import synth
    from .evaluate import evaluate, format_table
    from .files import details_path_for
    from .predict import PredictConfig, list_videos, load_models, predict
    from .preprocess import PreprocessConfig, preprocess
    from .recipes import RECIPES
    from .train import TrainConfig, train

    if os.path.exists(os.path.join(out, "runs")):
        raise ValueError(f"--out {out} holds an earlier demo; remove it or choose another --out")
    t0 = time.perf_counter()
    times = {}

    log.info(f"demo: 1/5 building a DFDC-layout set from carphone ({cfg.train_reals} real + "
             f"{cfg.train_reals} synthetic fake videos to train on, {cfg.test_reals} + "
             f"{cfg.test_reals} held out)")
    easy = {"fakes_per_real": 1, "methods": synth.EASY_METHODS, "frames": cfg.frames}
    train_set = synth.make_dfdc_folder(os.path.join(out, "dfdc"), n_real=cfg.train_reals,
                                       seed=cfg.seed, **easy)
    test_set = synth.make_dfdc_folder(os.path.join(out, "dfdc"), n_real=cfg.test_reals,
                                      seed=cfg.seed + 1000, folder="test_videos", split="test",
                                      **easy)
    times["data_s"] = time.perf_counter() - t0

    log.info("demo: 2/5 preprocess: faces, tracks, aligned pairs -> pair shards")
    t = time.perf_counter()
    shards_dir = os.path.join(out, "shards")
    summary = preprocess(train_set.folders, shards_dir,
                         config=PreprocessConfig(clips_per_pair=cfg.clips_per_pair, seed=cfg.seed),
                         shard_pairs=2, threads=cfg.threads)
    if summary.pairs == 0:
        raise RuntimeError(f"preprocess wrote no pairs; see {shards_dir}/skipped.jsonl")
    times["preprocess_s"] = time.perf_counter() - t

    log.info(f"demo: 3/5 train: {len(RECIPES)} small models, {cfg.iters} iterations each")
    t = time.perf_counter()
    checkpoints = {}
    for recipe in RECIPES:
        run_dir = os.path.join(out, "runs", recipe)
        train(TrainConfig(recipe=recipe, data=[os.path.join(shards_dir, "*.tar")], out=run_dir,
                          model_size="b0", image_size=cfg.image_size, batch_size=cfg.batch_size,
                          max_iters=cfg.iters, warmup_iters=0, optimizer=cfg.optimizer,
                          lr=cfg.lr, weight_decay=cfg.weight_decay, seed=cfg.seed,
                          log_every=max(1, cfg.iters // 4), ckpt_every=cfg.iters,
                          tensorboard=False, threads=cfg.threads).check())
        checkpoints[recipe] = os.path.join(run_dir, "last.pt")
    times["train_s"] = time.perf_counter() - t

    log.info("demo: 4/5 predict the held-out videos and evaluate")
    t = time.perf_counter()
    submission = os.path.join(out, "submission.csv")
    test_dir = test_set.folders[0]
    predict(list_videos([test_dir]), load_models(checkpoints, "cpu"), submission,
            cfg=PredictConfig(threads=cfg.threads))
    result = evaluate(submission, [test_dir], details=details_path_for(submission))
    times["predict_s"] = time.perf_counter() - t
    print(format_table(result))
    log.info("demo: 5/5 robustness: the held-out videos re-encoded over a grid of codecs")
    t = time.perf_counter()
    from .robustness import DEFAULT_GRID, parse_grid, robustness
    grid = parse_grid(cfg.grid or DEFAULT_GRID)
    table = robustness(list_videos([test_dir]), load_models(checkpoints, "cpu"),
                       os.path.join(out, "robustness"), grid, labels=[test_dir],
                       threads=cfg.threads)
    times["robustness_s"] = time.perf_counter() - t
    print(table["markdown"])
    rows = {r["key"]: r["log_loss"] for r in result["rows"]}
    figures = {"log_loss": round(rows["submission"], 4), "constant_0.5": 0.6931,
               "per_model": {k: round(v, 4) for k, v in rows.items() if k != "submission"},
               "robustness_auc": {r["cell"]: r["auc"] and round(r["auc"], 4)
                                  for r in table["rows"]},
               "videos": len(test_set.videos), "train_pairs": summary.pairs,
               "shards": len(glob.glob(os.path.join(shards_dir, "*.tar"))),
               **{k: round(v, 1) for k, v in times.items()},
               "total_s": round(time.perf_counter() - t0, 1)}
    return figures
