"""Limit the SIMD instruction sets FFmpeg and libx264 use in this process.

Why: on the AVX-512 Xeon of a lent GPU host, re-encoding the same clip with the same
draw gave different frames now and then (docs/benchmarks.md, "Fourth session"), while
an AVX2 machine reproduces every time. FFmpeg (swscale, the H.264 decoder) and x264
choose their SIMD code by CPU at run time; capping it at AVX2 is the experiment that
tells whether the AVX-512 code is the cause, and the workaround if it is. Unverified
so far: ``bash benchmarks/gpu_acceptance.sh t`` runs the check both ways.

    dfaug.simd.limit_simd("avx2")     # or DFAUG_LIMIT_SIMD=avx2 in the environment

The FFmpeg part is process-wide and inherited by forked loader workers; the x264 part
applies to encoders :func:`dfaug.compression.x264_encoder` makes afterwards. Both
libraries are found among the shared objects PyAV loaded (its wheel ships them).
"""
from __future__ import annotations

import ctypes
import os
from typing import Optional

import av  # noqa: F401  (loads the FFmpeg and x264 shared objects)

# FFmpeg's AV_CPU_FLAG_* (libavutil/cpu.h) and x264's X264_CPU_* (x264.h) bits
AV = {"XOP": 0x400, "FMA4": 0x800, "AVX": 0x4000, "AVX2": 0x8000, "FMA3": 0x10000,
      "AVX512": 0x100000, "AVX512ICL": 0x200000, "AVXSLOW": 0x8000000}
X264 = {"AVX": 1 << 9, "XOP": 1 << 10, "FMA4": 1 << 11, "FMA3": 1 << 12, "AVX2": 1 << 15,
        "AVX512": 1 << 16}
_REMOVED = {"avx2": ("AVX512", "AVX512ICL"), "sse4": tuple(AV)}  # what each level removes
LEVELS = {level: (sum(AV[n] for n in names), sum(X264.get(n, 0) for n in names))
          for level, names in _REMOVED.items()}
ENV = "DFAUG_LIMIT_SIMD"

_x264_asm: Optional[int] = None  # the x264 "asm" mask once limited


def _loaded(stem: str) -> ctypes.CDLL:
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if f"/{stem}" in line and ".so" in line}
    if len(paths) != 1:
        raise RuntimeError(f"cannot limit SIMD: {stem} is not loaded as one shared object "
                           f"(found {sorted(paths)}); PyAV's wheels ship it")
    return ctypes.CDLL(paths.pop())


def limit_simd(level: str) -> None:
    """Keep FFmpeg and libx264 to SIMD up to ``level`` ("avx2" or "sse4") from now on."""
    global _x264_asm
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    av_mask, x264_mask = LEVELS[level]
    avutil, x264 = _loaded("libavutil"), _loaded("libx264")  # both found, or neither capped
    avutil.av_force_cpu_flags(avutil.av_get_cpu_flags() & ~av_mask)
    x264.x264_cpu_detect.restype = ctypes.c_uint32
    _x264_asm = x264.x264_cpu_detect() & ~x264_mask


def x264_options() -> dict:
    """Encoder options that carry the x264 limit, if one is set."""
    return {} if _x264_asm is None else {"x264-params": f"asm={_x264_asm}"}


if os.environ.get(ENV):
    limit_simd(os.environ[ENV])
