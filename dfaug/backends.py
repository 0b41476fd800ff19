"""What every video decoding backend shares, and the registry of backends.

:func:`dfaug.read_video` asks the registry for a backend. The built-in ones are
declared here by where their code lives ("module:function"), and that module is
imported only when the backend is asked for or its availability checked: the CPU
backend ``"pyav"`` (:mod:`dfaug.video`) and the NVDEC ones ``"dali"`` and
``"pyav-cuda"`` (:mod:`dfaug.nvdec`, which imports torch). A user's own backend
registers with :func:`register_backend`. The opening of a video file, the checks on
what was decoded and the errors are written here once, for every backend.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

import av
import numpy as np

VideoSource = Union[str, os.PathLike, bytes, bytearray, memoryview]


class VideoDecodeError(ValueError):
    """The source is not a readable video (corrupt, truncated, empty, not a video)."""


@dataclass(frozen=True)
class Backend:
    """A decoder of whole videos into a :class:`Clip`.

    ``priority``: ``"auto"`` takes the available backend with the highest one, so a
    backend's priority should follow its measured speed (benchmarks/).
    """

    name: str
    read: Union[Callable, str]
    available: Union[Callable[[], bool], str]
    priority: int
    device: str  # where the frames are left: "cpu" or "cuda"
    # why it is not available here (e.g. "no CUDA GPU"), for the error of read_video
    why_unavailable: Union[Callable[[], Optional[str]], str, None] = None

    def call(self, what: str, *args, **kwargs):
        """Call ``read``, ``available`` or ``why_unavailable``: a function, or a
        "module:function" name imported now."""
        fn = getattr(self, what)
        if isinstance(fn, str):
            module, _, name = fn.partition(":")
            fn = getattr(importlib.import_module(module), name)
        return fn(*args, **kwargs)

    def is_available(self) -> bool:
        return bool(self.call("available"))


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend of :func:`read_video`."""
    _BACKENDS[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, fastest (highest priority) first."""
    usable = [b for b in _BACKENDS.values() if b.is_available()]
    return [b.name for b in sorted(usable, key=lambda b: -b.priority)]


def choose_backend(backend: str, device: str) -> Backend:
    """The backend ``read_video(backend=, device=)`` decodes with (see there)."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if backend == "auto":
        usable = available_backends()
        # none on the asked device: every usable one then leaves frames on the CPU
        names = [n for n in usable if _BACKENDS[n].device == device] or usable
        if not names:  # pragma: no cover - pyav is always registered
            raise RuntimeError("no read_video backend is available")
        return _BACKENDS[names[0]]
    if backend not in _BACKENDS:
        raise ValueError(
            f"backend must be 'auto' or one of {sorted(_BACKENDS)}, got {backend!r}")
    chosen = _BACKENDS[backend]
    if not chosen.is_available():
        reason = chosen.call("why_unavailable") if chosen.why_unavailable else None
        raise ValueError(
            f"backend {backend!r} is not available on this machine"
            f"{f' ({reason})' if reason else ''}; available: {available_backends()}")
    return chosen


def open_source(src: VideoSource):
    """(what av.open takes, a name for messages) of a path or bytes; a missing or empty
    file is an error before FFmpeg sees it."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise VideoDecodeError("empty bytes: not a video")
        return io.BytesIO(bytes(src)), "<bytes>"
    path = os.fspath(src)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: empty file, not a video")
    return path, path


def frame_step(stream, default_fps: float = 30.0) -> float:
    """Seconds between frames by the stream's average rate, for frames without a
    timestamp. The rate is None when unknown in PyAV up to 18 and 0/1 or 0/0 from 19
    on (its rationals are never None): both mean ``default_fps``."""
    try:
        rate = float(stream.average_rate)
    except (TypeError, ValueError, ZeroDivisionError):  # None, 0/0
        rate = 0.0
    return 1 / rate if math.isfinite(rate) and rate > 0 else 1 / default_fps


# Threads for one frame's colour conversion (swscale). PyAV's default, 0 = one per
# CPU, sets up a new context with its own thread pool for every frame it converts:
# read_video took 4.60 against 3.48 ms a 1280x720 frame that way, 0.98 against 0.55
# at 176x144 (dev-cpu, 2 cores, idle), and it starts a thread per core in every
# loader or preprocess worker besides. The pixels are the same.
SWSCALE_THREADS = 1


@contextlib.contextmanager
def open_video(handle, name: str, **options):
    """``av.open(handle, **options)`` and its first video stream: (container, stream).
    FFmpeg's errors pass through, for the caller to word (:func:`decode_error`)."""
    with av.open(handle, **options) as container:
        if not container.streams.video:
            raise VideoDecodeError(f"{name}: no video stream")
        yield container, container.streams.video[0]


def decode_error(name: str, n_frames: int, declared: int, error: Exception) -> VideoDecodeError:
    """The error for FFmpeg failing inside a file: a truncation when some of the declared
    frames came out before it (a hardware decoder may stop with an error where FFmpeg's
    software decoder conceals a cut frame), else an unreadable video."""
    if n_frames and declared and n_frames < declared:
        return VideoDecodeError(f"{name}: truncated video, {n_frames} of {declared} declared "
                                f"frames decoded before FFmpeg failed ({error})")
    return VideoDecodeError(f"{name}: not a readable video ({error})")


def check_decoded(name: str, n_frames: int, declared: int, pts: np.ndarray) -> None:
    """The checks every backend makes on what it decoded, so that all fail alike.

    ``declared``: the container's frame count (0 when it does not say); fewer frames
    than declared means a truncated file, which must not pass as a short clip.
    """
    if n_frames == 0:
        raise VideoDecodeError(f"{name}: no frame could be decoded")
    if declared and n_frames < declared:
        raise VideoDecodeError(
            f"{name}: truncated video, {n_frames} of {declared} declared frames decoded")
    if np.any(np.diff(pts) <= 0):
        raise VideoDecodeError(f"{name}: timestamps are not increasing")


# The built-in backends. Priorities follow speed (the highest available wins "auto").
# The NVDEC ones are NOT measured yet: no GPU was at hand when they were set.
# Re-measure on a GPU with benchmarks/bench_decode.py, which prints the priorities.
DALI_PRIORITY = 20
PYAV_CUDA_PRIORITY = 10

register_backend(Backend("pyav", "dfaug.video:read_pyav", available=lambda: True, priority=0,
                         device="cpu"))
register_backend(Backend("dali", "dfaug.nvdec:read_dali", available="dfaug.nvdec:dali_available",
                         priority=DALI_PRIORITY, device="cuda",
                         why_unavailable="dfaug.nvdec:dali_missing"))
register_backend(Backend("pyav-cuda", "dfaug.nvdec:read_pyav_cuda",
                         available="dfaug.nvdec:pyav_cuda_available",
                         priority=PYAV_CUDA_PRIORITY, device="cuda",
                         why_unavailable="dfaug.nvdec:pyav_cuda_missing"))
