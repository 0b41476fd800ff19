"""Aligned pairs of real video for shard and loader tests.

Real: carphone_pristine (a talking face, 29.97 fps) and bikes (25 fps). Fakes: the
distorted carphone (the same frames, compressed: a real aligned pair) and synthetic
fakes, the real clip with its central region tinted and blurred like a face swap.
"""
import numpy as np

from dfaug import Clip, read_video
from dfaug.testing import media_path


def synthetic_fake(clip: Clip) -> Clip:
    frames = clip.frames.copy()
    t, h, w, _ = frames.shape
    ys, xs = slice(h // 4, 3 * h // 4), slice(w // 3, 2 * w // 3)
    face = frames[:, ys, xs].astype(np.float32)
    face = (face + np.roll(face, 1, 1) + np.roll(face, 1, 2) + np.roll(face, -1, 1)) / 4
    frames[:, ys, xs] = np.clip(face * [1.08, 0.95, 0.92], 0, 255).astype(np.uint8)
    return Clip(frames, clip.pts)


def real_pairs(n_carphone: int = 6, n_bikes: int = 2, length: int = 50):
    """(key, real, fake, meta) tuples of 50-frame aligned clips."""
    pristine = read_video(media_path("carphone_pristine.mp4"))
    distorted = read_video(media_path("carphone_distorted.mp4"))
    out = []
    for i in range(n_carphone):
        start = (i * 11) % (len(pristine) - length)
        idx = np.arange(start, start + length)
        real = pristine.take(idx)
        fake = distorted.take(idx) if i % 2 == 0 else synthetic_fake(real)
        out.append((f"carphone{i:03d}", real, fake,
                    {"real": "carphone_pristine.mp4", "fake": "carphone_distorted.mp4" if i % 2 == 0
                     else "synthetic", "first_frame": int(start), "label": "FAKE"}))
    if n_bikes:
        bikes = read_video(media_path("bikes.mp4"))
        for i in range(n_bikes):
            start = 40 * i
            crop = bikes.frames[start:start + length, 40:232, 200:392]     # 192x192
            real = Clip(np.ascontiguousarray(crop), bikes.pts[start:start + length])
            out.append((f"bikes{i:03d}", real, synthetic_fake(real),
                        {"real": "bikes.mp4", "fake": "synthetic", "first_frame": start,
                         "crop_box": [200, 40, 392, 232], "label": "FAKE"}))
    return out
