"""Seconds per 10-second 1080p video of ``python -m dfdf_train preprocess``, by stage.

The input is a DFDC-like group built from real video: a 1920x1080, 30 fps H.264
"real" (bigbuckbunny upscaled as the background, the carphone talking face
upscaled 4x on it, ~270x320-pixel face like DFDC's) and its fake (the same with the
face tinted, synthetic). Both go through :func:`dfdf_train.preprocess.preprocess`
with the default MTCNN detector: decode, faces on every 6th frame (rescaled to 512
pixels), tracks, alignment, one 50-frame clip per pair cropped and written to a
pair shard (dfaug's default storage format; ``--format`` to compare). Seconds per
video = wall time of the group / 2 (two videos); the stages are summed over both
videos and also given per video.

Runs: ``cpu1`` pinned to ONE core (torch and FFmpeg threads inherit the pinning),
``cpu`` on every core, ``cuda`` when a GPU is there (detector on the GPU, the
fastest ``dfaug.read_video`` backend available, NVDEC when installed).

    python benchmarks/bench_preprocess.py               # 10-second videos
    python benchmarks/bench_preprocess.py --seconds 4   # quicker; figures scaled to 10 s
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

W, H, FPS = 1920, 1080, 30
FACE_SCALE = 4  # carphone 176x144 -> 704x576 on the 1080p frame
OFFSET = (608, 252)  # where the upscaled carphone frame goes (x, y)


def _pingpong(n_src: int, n: int) -> np.ndarray:
    cycle = np.r_[np.arange(n_src), np.arange(n_src - 2, 0, -1)]
    return cycle[np.arange(n) % len(cycle)]


def build_group(folder: str, seconds: float) -> None:
    """Write real.mp4, fake.mp4 and metadata.json (skipped when already there)."""
    if os.path.exists(os.path.join(folder, "metadata.json")):
        return
    import av
    import torch
    import torch.nn.functional as F

    import dfaug
    from dfaug.testing import media_path
    from dfdf_train import synth

    n = int(round(seconds * FPS))
    src = synth.load_source()
    idx = _pingpong(len(src.frames), n)
    source = synth.Source(src.frames[idx], src.faces[idx])
    full = synth.Variant(0, n, False, (0, 0, source.frames.shape[2], source.frames.shape[1]),
                         False, (1.0, 1.0, 1.0))
    faces = {"real": synth.render(source, full)[0],
             "fake": synth.make_fake(source, full, "tint", np.random.default_rng(0))}
    bbb = dfaug.read_video(media_path("bigbuckbunny.mp4")).frames
    bg_idx = _pingpong(len(bbb), n)
    os.makedirs(folder, exist_ok=True)
    for name, small in faces.items():
        path = os.path.join(folder, f"{name}.mp4")
        with av.open(path + ".tmp", "w", format="mp4") as c:
            s = c.add_stream("libx264", rate=FPS)
            s.width, s.height, s.pix_fmt = W, H, "yuv420p"
            s.options = {"crf": "23", "preset": "veryfast"}
            for i in range(n):
                bg = torch.from_numpy(bbb[bg_idx[i]]).permute(2, 0, 1)[None].float()
                frame = F.interpolate(bg, size=(H, W), mode="bilinear", align_corners=False)
                fg = torch.from_numpy(small[i]).permute(2, 0, 1)[None].float()
                fg = F.interpolate(fg, scale_factor=FACE_SCALE, mode="bilinear", align_corners=False)
                x, y = OFFSET
                frame[..., y:y + fg.shape[2], x:x + fg.shape[3]] = fg
                arr = frame[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
                for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        os.replace(path + ".tmp", path)
    with open(os.path.join(folder, "metadata.json"), "w") as f:
        json.dump({"real.mp4": {"label": "REAL", "split": "train"},
                   "fake.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"}}, f)


def run_once(folder: str, device: str, threads: int, repeats: int, fmt: str) -> dict:
    import torch

    from dfdf_train.preprocess import DetectorSpec, PreprocessConfig, preprocess

    torch.set_num_threads(threads)
    detector = DetectorSpec(device=device).build()
    detector.detect(np.zeros((1, H, W, 3), np.uint8))  # warm-up: weights, kernels
    import dfaug
    # preprocess's "auto" decodes on the CPU (its workers fork): name NVDEC explicitly
    nvdec = [b for b in dfaug.available_backends() if b in ("dali", "pyav-cuda")]
    decoder = nvdec[0] if device == "cuda" and nvdec else "pyav"
    best = None
    for _ in range(repeats):
        out = tempfile.mkdtemp(prefix="bench_pre_out")
        try:
            if device != "cpu":
                torch.cuda.synchronize()
            t = time.perf_counter()
            s = preprocess([folder], out, detector=detector, progress=False,
                           config=PreprocessConfig(decoder=decoder), fmt=fmt)
            wall = time.perf_counter() - t
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if s.pairs < 1:
            raise RuntimeError(f"no pair came out of the benchmark group: {s}")
        if best is None or wall < best[0]:
            best = (wall, s)
    wall, s = best
    stages = dict(s.timings)
    stages["crop+write"] = stages.pop("crop", 0.0) + stages.pop("write", 0.0)
    return {"seconds_per_video": wall / 2, "wall_group": wall, "pairs": s.pairs,
            "stage_seconds_per_video": {k: v / 2 for k, v in stages.items()},
            "stage_share": {k: v / sum(stages.values()) for k, v in stages.items()},
            "decoder": decoder, "format": fmt}


def machine() -> dict:
    import av
    import torch
    from bench_recompress import cpu_model  # run as a script: benchmarks/ is on sys.path
    info = {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "torch": torch.__version__, "av": av.__version__,
            "ffmpeg": str(getattr(av, "ffmpeg_version_info", "")) or None,
            # other jobs on a shared machine inflate every figure: say how busy it was
            "load_average_1min": round(os.getloadavg()[0], 2)}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    import dfaug
    info["read_video_backends"] = dfaug.available_backends()
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="video length (default 10)")
    ap.add_argument("--runs", default="cpu1,cpu,cuda",
                    help="comma list of cpu1 (one core), cpu (all cores), cuda")
    ap.add_argument("--repeats", type=int, default=1, help="best of N per run")
    ap.add_argument("--format", default=None, help="shard storage format (default: dfaug's default)")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "dfaug_bench_preprocess"),
                    help="folder for the built videos (reused)")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 60:
        raise SystemExit("--seconds must be in (0, 60]")
    import torch

    from dfaug.shards import DEFAULT_FORMAT
    fmt = args.format or DEFAULT_FORMAT
    folder = os.path.join(args.cache, f"dfdc_bench_{args.seconds:g}s")
    t = time.perf_counter()
    build_group(folder, args.seconds)
    build_s = time.perf_counter() - t
    cores = sorted(os.sched_getaffinity(0))
    result = {"bench": "preprocess", "video": f"{W}x{H} H.264, {FPS} fps, "
              f"{int(round(args.seconds * FPS))} frames ({args.seconds:g} s), real + fake",
              "machine": machine(), "build_seconds": round(build_s, 1), "runs": {}}
    for run in [r.strip() for r in args.runs.split(",") if r.strip()]:
        if run == "cuda" and not torch.cuda.is_available():
            continue
        if run == "cpu1":
            os.sched_setaffinity(0, {cores[0]})
            r = run_once(folder, "cpu", 1, args.repeats, fmt)
            os.sched_setaffinity(0, set(cores))
        elif run == "cpu":
            r = run_once(folder, "cpu", len(cores), args.repeats, fmt)
        elif run == "cuda":
            r = run_once(folder, "cuda", len(cores), args.repeats, fmt)
        else:
            raise SystemExit(f"--runs: unknown run {run!r} (cpu1, cpu, cuda)")
        r["seconds_per_10s_video"] = r["seconds_per_video"] * 10 / args.seconds
        result["runs"][run] = {k: (round(v, 3) if isinstance(v, float) else
                                   {kk: round(vv, 3) for kk, vv in v.items()} if isinstance(v, dict)
                                   else v) for k, v in r.items()}
    result["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
