"""Bytes and decode time of each ``dfaug.storage`` format, side by side on the same pairs.

One process pinned to ONE core (as a loader worker is). Clips are 50 frames of real
video: carphone's full 176x144 frames, and 300x300 crops of bigbuckbunny (a face
crop's size); the fake of each pair is the same window with its centre blurred and
tinted. Per format: bytes per pair, encode ms per clip, and decode ms per PAIR for
the frames one sample needs:

- ``frame_reencode``: frames 5..49 (the frame models' 9..37 plus recompress's
  warm-up 4 and tail 12), ``sequence_reencode``: 15..43 (19..31 likewise);
- ``frame_noreencode``: 9, 13, ..., 37; ``sequence_noreencode``: 19, 21, ..., 31;
- ``full``: all 50.

Every (pair, repeat) decodes all formats in rotating order; figures are medians.
For scale, ``recompress_ms_per_pair`` times ``dfaug.recompress`` (recipe draws, one
thread) on the 300x300 pairs, for the re-encoding cases.

    python benchmarks/bench_storage.py --repeats 5
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import av
import numpy as np

import dfaug
from dfaug.storage import FORMATS, H264_GOP, decode_frames, encode_frames
from dfaug.testing import media_path

from bench_recompress import cpu_model  # run as a script: benchmarks/ is on sys.path

CLIP_LEN, CROP = 50, 300
CASES = {
    "full": list(range(50)),
    "frame_reencode": list(range(5, 50)),
    "sequence_reencode": list(range(15, 44)),
    "frame_noreencode": list(range(9, 38, 4)),
    "sequence_noreencode": list(range(19, 32, 2)),
}
SPANS = {"frame_reencode": (9, 37), "sequence_reencode": (19, 31)}


def fake_of(real: np.ndarray) -> np.ndarray:
    """The same window with its centre blurred and tinted: a stand-in for a swapped face."""
    fake = real.copy()
    h, w = real.shape[1:3]
    cy, cx = slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4)
    c = fake[:, cy, cx].astype(np.float32)
    blurred = (c + np.roll(c, 2, 1) + np.roll(c, 2, 2) + np.roll(c, -2, 1)) / 4
    fake[:, cy, cx] = np.clip(blurred * [1.05, 0.95, 0.9], 0, 255).astype(np.uint8)
    return fake


def make_pairs(n_bunny: int, rng: np.random.Generator) -> dict[str, list]:
    carphone = dfaug.read_video(media_path("carphone_pristine.mp4")).frames
    starts = np.linspace(0, len(carphone) - CLIP_LEN, 3).astype(int)
    pairs = {"carphone": [(carphone[t:t + CLIP_LEN], fake_of(carphone[t:t + CLIP_LEN]))
                          for t in starts]}
    bunny = dfaug.read_video(media_path("bigbuckbunny.mp4")).frames
    pairs["bunny300"] = []
    for _ in range(n_bunny):
        t = int(rng.integers(0, len(bunny) - CLIP_LEN + 1))
        y = int(rng.integers(0, bunny.shape[1] - CROP + 1))
        x = int(rng.integers(0, bunny.shape[2] - CROP + 1))
        real = np.ascontiguousarray(bunny[t:t + CLIP_LEN, y:y + CROP, x:x + CROP])
        pairs["bunny300"].append((real, fake_of(real)))
    return pairs


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def bench_video(pairs: list, repeats: int) -> dict:
    size = {f: [] for f in FORMATS}
    enc_ms = {f: [] for f in FORMATS}
    blobs = []
    for real, fake in pairs:
        pair_blobs = {}
        for fmt in FORMATS:
            out = []
            for clip in (real, fake):
                t0 = time.perf_counter()
                out.append(encode_frames(clip, fmt))
                enc_ms[fmt].append(1e3 * (time.perf_counter() - t0))
            pair_blobs[fmt] = out
            size[fmt].append(sum(len(b) for b in out))
        blobs.append(pair_blobs)

    dec_ms = {f: {c: [] for c in CASES} for f in FORMATS}
    n = 0
    for _ in range(repeats):
        for pair_blobs in blobs:
            order = FORMATS[n % len(FORMATS):] + FORMATS[:n % len(FORMATS)]
            n += 1
            for fmt in order:
                for case, indices in CASES.items():
                    t0 = time.perf_counter()
                    for blob in pair_blobs[fmt]:
                        decode_frames(blob, fmt, indices)
                    dec_ms[fmt][case].append(1e3 * (time.perf_counter() - t0))

    result = {}
    for fmt in FORMATS:
        row = {"bytes_per_pair": int(np.mean(size[fmt])),
               "encode_ms_per_clip": round(float(np.median(enc_ms[fmt])), 1),
               "decode_ms_per_pair": {c: round(float(np.median(v)), 2)
                                      for c, v in dec_ms[fmt].items()}}
        if fmt == "yuv420p":
            row["psnr_db"] = round(float(np.mean(
                [psnr(decode_frames(b[fmt][k], fmt), p[k]) for b, p in zip(blobs, pairs)
                 for k in (0, 1)])), 2)
        result[fmt] = row
    real = pairs[0][0]
    return {"clip": f"{CLIP_LEN}x{real.shape[1]}x{real.shape[2]}", "pairs": len(pairs),
            "raw_bytes_per_pair": 2 * real.nbytes, "formats": result}


def bench_recompress(pairs: list, draws: int, rng: np.random.Generator) -> dict:
    sampler = dfaug.CompressionSampler(p_skip=0.0)
    pts = np.arange(CLIP_LEN) / 30.0
    times = {case: [] for case in SPANS}
    for k in range(draws):
        real, fake = pairs[k % len(pairs)]
        params = sampler.sample(rng)
        for case, span in SPANS.items():
            t0 = time.perf_counter()
            dfaug.recompress([dfaug.Clip(real, pts), dfaug.Clip(fake, pts)], params, span=span)
            times[case].append(1e3 * (time.perf_counter() - t0))
    return {case: round(float(np.median(v)), 1) for case, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="decodes of every pair per format")
    ap.add_argument("--bunny-pairs", type=int, default=4, help="300x300 bigbuckbunny pairs")
    ap.add_argument("--draws", type=int, default=8, help="recompress draws for the reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--core", type=int, default=None, help="CPU core to pin to (default: the last)")
    args = ap.parse_args()
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})

    rng = np.random.default_rng(args.seed)
    pairs = make_pairs(args.bunny_pairs, rng)
    row = {"bench": "storage", "repeats": args.repeats, "cores": 1,
           "videos": {name: bench_video(p, args.repeats) for name, p in pairs.items()},
           "recompress_ms_per_pair": bench_recompress(pairs["bunny300"], args.draws, rng),
           "h264_gop": H264_GOP,
           "cpu": cpu_model(), "av": av.__version__,
           "ffmpeg": av.ffmpeg_version_info}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
