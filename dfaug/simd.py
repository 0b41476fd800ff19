"""Limit the SIMD instruction sets FFmpeg and libx264 use in this process.

Why: on an AVX-512 Xeon host (16 cores, beside an H200 GPU), re-encoding the same clip
with the same draw gave different frames now and then, while AVX2 machines reproduce
every time. The stage-by-stage test named libx264 (its packets differed between runs;
swscale and the H.264 decoder gave the same bytes), and with FFmpeg and x264 capped at
AVX2 every reproducibility test passed there; with x264 alone kept from AVX-512 (the
default below) they passed too (2026-11-26; docs/benchmarks.md, "GPU"). So:

- by default, encoders made by :func:`dfaug.compression.open_encoder` never use
  x264's AVX-512 code (``x264-params asm=``, the CPU's own mask less AVX-512). This
  is per encoder: nothing else in the process changes. On CPUs without AVX-512 the
  options are left as they are.
- ``limit_simd("avx2" | "sse4")`` (or ``DFAUG_LIMIT_SIMD`` in the environment, which
  reaches spawned workers too) also caps FFmpeg, process-wide (``av_force_cpu_flags``,
  inherited by forked loader workers), and x264 further for "sse4".
- ``limit_simd("none")`` (``DFAUG_LIMIT_SIMD=none``) lifts every cap, x264's
  default one included: x264 then uses AVX-512 where the CPU has it.

Both libraries are found among the shared objects PyAV loaded (its wheel ships them).
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
from typing import Optional

import av  # noqa: F401  (loads the FFmpeg and x264 shared objects)

# FFmpeg's AV_CPU_FLAG_* (libavutil/cpu.h) and x264's X264_CPU_* (x264.h) bits
AV = {"XOP": 0x400, "FMA4": 0x800, "AVX": 0x4000, "AVX2": 0x8000, "FMA3": 0x10000,
      "AVX512": 0x100000, "AVX512ICL": 0x200000, "AVXSLOW": 0x8000000}
X264 = {"AVX": 1 << 9, "XOP": 1 << 10, "FMA4": 1 << 11, "FMA3": 1 << 12, "AVX2": 1 << 15,
        "AVX512": 1 << 16}
_REMOVED = {"none": (), "avx2": ("AVX512", "AVX512ICL"), "sse4": tuple(AV)}  # what each removes
LEVELS = {level: (sum(AV[n] for n in names), sum(X264.get(n, 0) for n in names))
          for level, names in _REMOVED.items()}
ENV = "DFAUG_LIMIT_SIMD"

_x264_asm: Optional[int] = None  # the x264 "asm" mask set by limit_simd()
log = logging.getLogger(__name__)


def _loaded(stem: str) -> ctypes.CDLL:
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if f"/{stem}" in line and ".so" in line}
    if len(paths) != 1:
        raise RuntimeError(f"cannot limit SIMD: {stem} is not loaded as one shared object "
                           f"(found {sorted(paths)}); PyAV's wheels ship it")
    return ctypes.CDLL(paths.pop())


def _x264_cpu_detect() -> int:
    """The SIMD mask libx264 detects on this CPU (X264_CPU_* bits)."""
    x264 = _loaded("libx264")
    x264.x264_cpu_detect.restype = ctypes.c_uint32
    return x264.x264_cpu_detect()


def limit_simd(level: str) -> None:
    """Keep FFmpeg and libx264 to SIMD up to ``level`` from this call on ("none": no cap)."""
    global _x264_asm
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    av_mask, x264_mask = LEVELS[level]
    avutil = _loaded("libavutil")
    detected = _x264_cpu_detect()  # both libraries found, or neither capped
    if level == "none":
        avutil.av_force_cpu_flags(-1)  # FFmpeg's own detection again
    else:
        avutil.av_force_cpu_flags(avutil.av_get_cpu_flags() & ~av_mask)
    _x264_asm = detected & ~x264_mask


def _cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def default_x264_asm() -> Optional[int]:
    """The x264 mask used when no limit is set: the CPU's, less AVX-512 (None: the
    CPU has no AVX-512, or libx264 cannot be found, and x264 picks for itself)."""
    try:
        detected = _x264_cpu_detect()
    except (OSError, RuntimeError) as e:
        if _cpu_has_avx512():
            log.warning("cannot keep libx264 from AVX-512 on this CPU (%s): re-encoded "
                        "frames may differ between runs of the same draw", e)
        return None
    return detected & ~X264["AVX512"] if detected & X264["AVX512"] else None


def x264_options() -> dict:
    """Encoder options that carry the x264 limit: ``limit_simd``'s, else the default."""
    asm = _x264_asm if _x264_asm is not None else default_x264_asm()
    return {} if asm is None else {"x264-params": f"asm={asm}"}


if os.environ.get(ENV):
    limit_simd(os.environ[ENV])
