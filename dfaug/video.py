"""``read_video``: one entry point, decoding backends in a registry.

The PyAV backend (CPU) is always there. GPU backends (NVDEC, :mod:`dfaug.nvdec`:
``"dali"`` and ``"pyav-cuda"``, frames left on the GPU as torch tensors) register
themselves with :func:`register_backend` and are picked by ``backend="auto"`` when
their ``available()`` says so; the package imports without any of them.
"""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import Callable, Optional, Union

import av
import numpy as np

from .clip import Clip

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
    read: Callable[..., Clip]
    available: Callable[[], bool]
    priority: int
    device: str  # where the frames are left: "cpu" or "cuda"
    # why it is not available here (e.g. "no CUDA GPU"), for the error of read_video
    why_unavailable: Callable[[], Optional[str]] | None = None


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> None:
    """Add (or replace) a backend of :func:`read_video`."""
    _BACKENDS[backend.name] = backend


def available_backends() -> list[str]:
    """Names of the backends usable on this machine, fastest (highest priority) first."""
    usable = [b for b in _BACKENDS.values() if b.available()]
    return [b.name for b in sorted(usable, key=lambda b: -b.priority)]


def read_video(src: VideoSource, *, backend: str = "auto", device: str = "cpu",
               **options) -> Clip:
    """Decode every frame of a video into a :class:`Clip` of RGB frames.

    ``src``: a path or the file's bytes. ``backend``: ``"auto"`` (the fastest
    available backend that leaves frames on ``device``) or one of
    :func:`available_backends`. ``device``: where ``"auto"`` should leave the frames:
    ``"cpu"`` (numpy, the default, so callers never get GPU tensors unasked) or
    ``"cuda"`` (torch tensors from NVDEC when a GPU backend is available, else numpy
    from the CPU). ``options`` go to the backend.
    Raises :class:`VideoDecodeError` (a ValueError) for anything that is not a
    complete, readable video, and ``FileNotFoundError`` for a missing path.
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if backend == "auto":
        usable = available_backends()
        # none on the asked device: every usable one then leaves frames on the CPU
        names = [n for n in usable if _BACKENDS[n].device == device] or usable
        if not names:  # pragma: no cover - pyav is always registered
            raise RuntimeError("no read_video backend is available")
        chosen = _BACKENDS[names[0]]
    else:
        if backend not in _BACKENDS:
            raise ValueError(
                f"backend must be 'auto' or one of {sorted(_BACKENDS)}, got {backend!r}")
        chosen = _BACKENDS[backend]
        if not chosen.available():
            reason = chosen.why_unavailable() if chosen.why_unavailable else None
            raise ValueError(
                f"backend {backend!r} is not available on this machine"
                f"{f' ({reason})' if reason else ''}; available: {available_backends()}")
    return chosen.read(src, **options)


def _open_source(src: VideoSource):
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


class LazyFrames:
    """Decoded frames left in FFmpeg's own buffers (YUV as decoded), converted to RGB
    only when indexed: for callers that use a fraction of the frames of a long video.

    Indexing works like the (T, H, W, 3) uint8 array it stands for, with the first
    index an integer, a slice or an integer array (more indices then cut rows,
    columns, channels), and returns numpy arrays with the same pixels that
    ``read_video`` would have given; ``np.asarray`` converts everything. A 1080p
    frame held this way takes half the memory of its RGB.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, frames: list):
        if not frames:
            raise ValueError("LazyFrames needs at least one frame")
        self._frames = frames
        self.shape = (len(frames), frames[0].height, frames[0].width, 3)

    def __len__(self) -> int:
        return self.shape[0]

    def _rgb(self, i: int) -> np.ndarray:
        return self._frames[i].to_ndarray(format="rgb24", threads=SWSCALE_THREADS)

    def prefetch(self, indices) -> None:
        """A reader about to index ``indices`` says so (:func:`dfaug.recompress` does).
        These frames are in memory already; a subclass whose frames still lie in a
        file reads them here at once (:class:`dfaug.storage.StoredFrames`)."""

    def __getitem__(self, key):
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            return self._rgb(range(len(self))[first])[rest]
        if first is Ellipsis:
            raise IndexError("LazyFrames: index the frames first, not with ...")
        indices = np.arange(len(self))[first]  # a slice, an integer or boolean array
        if indices.ndim != 1:
            raise IndexError("LazyFrames: the first index must select a 1-D set of frames, "
                             f"got {first!r}")
        if len(indices) == 0:
            return np.empty((0, *self.shape[1:]), np.uint8)[(slice(None), *rest)]
        # cut each frame as it is converted, so a crop of many frames stays small
        return np.stack([self._rgb(int(i))[rest] for i in indices])

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _read_pyav(src: VideoSource, *, threads: int = 0, lazy: bool = False) -> Clip:
    """Decode with PyAV (FFmpeg) on the CPU. ``threads``: decoder threads, 0 = auto.
    ``lazy``: keep the frames as decoded and convert to RGB on indexing
    (:class:`LazyFrames`): faster and half the memory when few frames are used."""
    handle, name = _open_source(src)
    frames, pts, declared = [], [], 0
    try:
        with av.open(handle) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{name}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = threads
            declared = stream.frames
            fallback_step = frame_step(stream)
            for frame in container.decode(stream):
                frames.append(frame if lazy else frame.to_ndarray(format="rgb24",
                                                                   threads=SWSCALE_THREADS))
                t = frame.time
                pts.append(t if t is not None else len(pts) * fallback_step)
    except av.error.FFmpegError as e:
        raise decode_error(name, len(frames), declared, e) from e
    pts = np.asarray(pts, dtype=np.float64)
    check_decoded(name, len(frames), declared, pts)
    return Clip(LazyFrames(frames) if lazy else np.stack(frames), pts)


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


register_backend(Backend("pyav", _read_pyav, available=lambda: True, priority=0, device="cpu"))

# The NVDEC backends ("dali", "pyav-cuda") register themselves; importing them needs
# neither a GPU nor their packages. Last, because they build on the names above.
from . import nvdec as _nvdec  # noqa: E402,F401
