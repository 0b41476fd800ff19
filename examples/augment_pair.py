"""Augment aligned real/fake pairs and mix them, as the recipe's frame and sequence models see them.

    python examples/augment_pair.py [--preset tight_erase] [--out grid.png]

Real: carphone (a talking face). Fake: the same frames with the face region
tinted. Each pair gets ONE draw of flip, crop, AutoAugment and erasing, applied to
both members and to all 7 frames of its sequence; mixup then blends the members
with t ~ Beta(0.5, 0.5), and t is the soft target.
"""
import argparse

import numpy as np
import torch

import dfaug
from dfaug.augment import PRESETS
from dfaug.testing import media_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tight_erase", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="save the augmented real/fake/mixed frames as PNG")
    args = ap.parse_args()

    frames = dfaug.read_video(media_path("carphone_pristine.mp4")).frames    # (120, 144, 176, 3)
    real = torch.from_numpy(frames[19:33:2].copy()).permute(0, 3, 1, 2)     # 7 frames, 1/15 s apart
    fake = real.clone()
    fake[:, :, 36:108, 52:124] = (fake[:, :, 36:108, 52:124] * 0.8).to(torch.uint8)
    pairs = torch.stack([real, fake]).unsqueeze(0).repeat(4, 1, 1, 1, 1, 1)  # (4, 2, 7, 3, H, W)

    g = torch.Generator().manual_seed(args.seed)                  # all randomness from here
    aug = dfaug.PairAugment(args.preset)
    batch = aug(pairs, g)                                         # (4, 2, 7, 3, 224, 192)
    x, y = dfaug.mix_pairs(batch, g, mode="sequence")             # (4, 7, 3, 224, 192), (4, 7)
    # one draw per pair: the members differ in the face, hardly anywhere else
    diff = (batch[:, 0] - batch[:, 1]).abs().mean(dim=(0, 1, 2))      # (224, 192)
    face, border = diff[70:150, 60:130].mean().item(), diff[:30].mean().item()
    print(f"preset {args.preset}: batch {tuple(batch.shape)} -> x {tuple(x.shape)}, "
          f"targets t = {[round(v, 3) for v in y[:, 0].tolist()]}")
    print(f"mean |real - fake|: face region {face:.3f}, top border {border:.3f}")
    print(f"the 4 copies of the pair got different draws: "
          f"{len({round(batch[i].sum().item(), 2) for i in range(4)}) == 4}")
    if args.out:
        import av
        mean = torch.tensor(aug.config.mean).view(3, 1, 1)
        std = torch.tensor(aug.config.std).view(3, 1, 1)

        def picture(t):
            return (t * std + mean).clamp(0, 1).mul(255).byte().permute(1, 2, 0).numpy()

        rows = [np.concatenate([picture(batch[i, 0, 0]), picture(batch[i, 1, 0]), picture(x[i, 0])], 1)
                for i in range(4)]
        av.VideoFrame.from_ndarray(np.concatenate(rows, 0), format="rgb24").save(args.out)
        print(f"wrote {args.out} (rows: pairs; columns: real, fake, mixed)")


if __name__ == "__main__":
    main()
