"""Re-encode a whole video file as a delivery platform would, streaming.

:func:`transcode` reads a video frame by frame and writes it again with one
:class:`~dfaug.compression.CompressionParams` (codec, quality, scale, frame rate), into
an in-memory Matroska file: no decoded copy of the video is kept, only the frame in
hand and the encoder's lookahead. For testing a detector on compressed copies of its
test videos (``python -m dfdf_train robustness``); training augmentation re-encodes
clips with :func:`dfaug.recompress` instead.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from .compression import (CODECS, YUV_INTERPOLATION, CompressionParams, configure_encoder,
                          fps_filter)
from .backends import VideoDecodeError, VideoSource, frame_step, open_source, open_video


@dataclass(frozen=True)
class Transcoded:
    """A re-encoded video: ``data`` (Matroska bytes), its frame count, duration in
    seconds and mean bitrate in kbit/s."""

    data: bytes
    frames: int
    seconds: float

    @property
    def kbit_s(self) -> float:
        return len(self.data) * 8 / 1000 / self.seconds if self.seconds > 0 else 0.0


def _frames(src: VideoSource, threads: int):
    """(frame, time in seconds) of every frame of ``src``'s first video stream, decoded
    one at a time; the stream's frame step."""
    handle, name = open_source(src)
    try:
        with open_video(handle, name) as (container, stream):
            stream.codec_context.thread_count = threads
            step = frame_step(stream)
            n = 0
            for frame in container.decode(stream):
                t = frame.time
                yield frame, (t if t is not None else n * step), step
                n += 1
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{name}: not a readable video ({e})") from e


def transcode(src: VideoSource, params: CompressionParams, *, threads: int = 1) -> Transcoded:
    """``src`` (a path or bytes) re-encoded with ``params``: every frame, or those the
    frame-rate reduction keeps (as ffmpeg's ``fps`` filter, by timestamps), scaled to
    ``params.output_size`` from the decoded yuv420p with bicubic filtering, encoded at
    a constant rate. ``threads``: decoder and encoder threads (1 = reproducible bytes)."""
    if not isinstance(params, CompressionParams):
        raise TypeError(f"params must be CompressionParams, got {type(params).__name__}")
    keep = None
    first = next(_frames(src, threads), None)
    if first is None:
        raise VideoDecodeError("no frame could be decoded")
    frame0, _, step = first
    own_rate = 1 / step
    if params.fps < own_rate * (1 - 1e-6):
        # the fps filter needs every frame's time: one decoding pass that keeps none
        times = np.array([t for _, t, _ in _frames(src, threads)])
        kept, _ = fps_filter(times, params.fps)
        keep = set(int(i) for i in kept)
        rate = Fraction(params.fps).limit_denominator(1001)
    else:
        rate = Fraction(own_rate).limit_denominator(1001)
    size = params.output_size(frame0.width, frame0.height)
    buf = io.BytesIO()
    n = 0
    # bitexact: no random segment id or writing-application tag: the same bytes every time
    with av.open(buf, "w", format="matroska", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(CODECS[params.codec].encoder, rate=rate)
        configure_encoder(stream.codec_context, params, size, rate, threads)
        for i, (frame, _, _) in enumerate(_frames(src, threads)):
            if keep is not None and i not in keep:
                continue
            f = frame.reformat(*size, "yuv420p", interpolation=YUV_INTERPOLATION, threads=threads)
            f.pts, f.time_base = n, stream.codec_context.time_base
            out.mux(stream.encode(f))
            n += 1
        out.mux(stream.encode(None))
    return Transcoded(buf.getvalue(), n, n / float(rate))
