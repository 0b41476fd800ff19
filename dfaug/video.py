"""``read_video``: one entry point to the decoding backends (:mod:`dfaug.backends`),
the CPU one (PyAV), and :class:`LazyFrames`.

The PyAV backend (CPU) is always there. GPU backends (NVDEC, :mod:`dfaug.nvdec`:
``"dali"`` and ``"pyav-cuda"``, frames left on the GPU as torch tensors) are picked
by ``backend="auto"`` when their availability check says so; the package imports
without any of them.
"""
from __future__ import annotations

import av
import numpy as np

from .backends import (SWSCALE_THREADS, VideoSource, check_decoded, choose_backend,
                       decode_error, frame_step, open_source, open_video)
from .clip import Clip


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
    return choose_backend(backend, device).call("read", src, **options)


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


def read_pyav(src: VideoSource, *, threads: int = 0, lazy: bool = False) -> Clip:
    """Decode with PyAV (FFmpeg) on the CPU. ``threads``: decoder threads, 0 = auto.
    ``lazy``: keep the frames as decoded and convert to RGB on indexing
    (:class:`LazyFrames`): faster and half the memory when few frames are used."""
    handle, name = open_source(src)
    frames, pts, declared = [], [], 0
    try:
        with open_video(handle, name) as (container, stream):
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
