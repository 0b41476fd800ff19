"""How one clip's frames are stored inside a pair shard: encode and decode, in-process.

Every format shares one container, so a shard member is self-describing and damage is
caught instead of turning into wrong pixels::

    header   magic b"DFCL", version, format code, T, H, W, extradata length
    table    per frame: payload length, CRC-32 of the payload, keyframe flag
    crc      CRC-32 of header + table
    extradata, then the T payloads back to back

Per-frame CRCs let a loader that reads a few frames check just those bytes.
Which format is the default, and why, is measured in ``benchmarks/bench_storage.py``
and written up in ``docs/storage.md``.
"""
from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from typing import Optional, Sequence

import av
import numba
import numpy as np
import zstandard

from .backends import SWSCALE_THREADS, VideoDecodeError
from .video import LazyFrames

from .formats import FORMATS, LOSSLESS  # noqa: F401  (part of this module's API)

# zstd: each frame is predicted from its left, upper and upper-left neighbours
# (x - left - up + upleft, mod 256, per channel) after subtracting G from R and B,
# and the residuals are compressed with zstd. On 300x300 crops and a real face video
# this is 15-19% smaller than PNG, decodes 2.2-2.5x faster and encodes 7x faster
# (docs/storage.md): zstd's decoder is several times faster than zlib's, and the
# predictor is undone by compiled loops instead of per-row filter code.
ZSTD_LEVEL = 3

# Keyframe interval of h264-lossless. On a 300x300 crop an IDR every 5 frames costs
# ~5% more bytes than one per clip and bounds what a sample decodes beyond the frames
# it uses to 4 per run; all-intra costs ~25% more bytes (docs/storage.md).
H264_GOP = 5

# yuv420p: RGB is taken to yuv420p with the filter dfaug.recompress uses for the same
# step, so a stored clip feeds x264 the very planes it would have made from the RGB.
YUV_INTERPOLATION = "BICUBIC"

_MAGIC, _VERSION = b"DFCL", 1
_HEADER = struct.Struct("<4sBBHIIII")  # magic, version, format, reserved, T, H, W, extradata
_ENTRY = struct.Struct("<IIB")          # length, crc32, flags
_CRC = struct.Struct("<I")
_KEY = 1
_CODE = {name: i for i, name in enumerate(FORMATS)}

# (encoder, encoder pixel format, decoder, options). Options are pinned rather than
# left to FFmpeg's defaults, which change between releases.
_CODECS = {
    # The old recipe stored PNG files. FFmpeg's encoder, zlib level 6, with the "up"
    # row filter instead of its default Paeth: on bigbuckbunny, bikes and carphone
    # frames it is as small or smaller and decodes 12-30% faster (Paeth's unfilter
    # is the slowest), and decoding is most of a loader worker's non-x264 time.
    "png": ("png", "rgb24", "png", {"pred": "up"}),
    # qp=0 on RGB input is exact. tune=fastdecode (CAVLC, no weighted prediction)
    # decodes as fast as ultrafast while preset medium's search makes the stream ~15%
    # smaller; CABAC presets are smaller again but ~3x slower to decode. No B-frames,
    # so decode order is display order and a sample stops at its last frame.
    "h264-lossless": ("libx264rgb", "rgb24", "h264",
                      {"qp": "0", "preset": "medium", "tune": "fastdecode", "bframes": "0",
                       "sc_threshold": "0", "threads": "1"}),
    # FFV1 carries adaptive context state from frame to frame unless every frame is
    # a keyframe: gop_size=1 (set below) makes each frame decodable alone. Version 3
    # with slice CRCs; Golomb-Rice coding decodes faster than the range coder for
    # ~6% more bytes. bgr0 is its 8-bit RGB input (reversible colour transform).
    "ffv1": ("ffv1", "bgr0", "ffv1",
             {"level": "3", "coder": "rice", "context": "0", "slicecrc": "1"}),
}


def _check_format(fmt) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    return fmt


def _check_frames(frames) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise ValueError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if 0 in frames.shape:
        raise ValueError(f"frames must hold at least one non-empty frame, got shape {frames.shape}")
    if max(frames.shape) >= 2 ** 32:
        raise ValueError(f"frames is too large to store: {frames.shape}")
    return np.ascontiguousarray(frames)


def _yuv_sizes(height: int, width: int) -> tuple[int, int, int, int]:
    """Plane sizes of yuv420p; odd sides round the chroma planes up, as FFmpeg does."""
    ch, cw = (height + 1) // 2, (width + 1) // 2
    return height, width, ch, cw


def _codec_payloads(frames: np.ndarray, fmt: str) -> tuple[list[bytes], list[bool], bytes]:
    name, pix_fmt, _, options = _CODECS[fmt]
    t, h, w, _ = frames.shape
    enc = av.CodecContext.create(name, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, pix_fmt
    enc.time_base = Fraction(1, 30)  # arbitrary: timestamps live in the sample's JSON
    enc.thread_count = 1
    enc.gop_size = H264_GOP if fmt == "h264-lossless" else 1
    enc.options = dict(options)
    packets = []
    try:
        for i in range(t):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            if pix_fmt != "rgb24":
                frame = frame.reformat(format=pix_fmt, threads=SWSCALE_THREADS)
            frame.pts = i
            packets += enc.encode(frame)
        packets += enc.encode(None)
    except av.error.FFmpegError as e:
        raise ValueError(f"{fmt} cannot encode frames of shape {frames.shape}: {e}") from e
    if len(packets) != t:
        raise RuntimeError(f"{name} returned {len(packets)} packets for {t} frames")
    keys = [True] * t if fmt != "h264-lossless" else [p.is_keyframe for p in packets]
    return [bytes(p) for p in packets], keys, bytes(enc.extradata or b"")


def _zstd_residuals(frame: np.ndarray) -> np.ndarray:
    """The bytes the zstd format compresses for one (H, W, 3) uint8 frame."""
    x = frame.copy()
    x[..., 0] -= frame[..., 1]
    x[..., 2] -= frame[..., 1]
    up = x.copy()
    up[1:] -= x[:-1]
    out = up.copy()
    out[:, 1:] -= up[:, :-1]
    return out


def compiled(fn):
    """``fn`` compiled by numba, its machine code cached on disk when a cache folder is
    writable (next to the source, else numba's user cache); otherwise compiled in
    each process (about a second) rather than failing at import."""
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


@compiled
def _zstd_unpredict(res, out):  # pragma: no cover (compiled)
    """Undo :func:`_zstd_residuals`: ``res`` (H, W, 3) uint8 -> ``out`` (H, W, 3).

    The predictor is separable: a running sum along each row, then a running sum
    down the columns; the colour transform is undone last.
    """
    h, w = res.shape[0], res.shape[1]
    for y in range(h):
        r = g = b = 0
        for x in range(w):
            r = (r + res[y, x, 0]) & 255
            g = (g + res[y, x, 1]) & 255
            b = (b + res[y, x, 2]) & 255
            out[y, x, 0], out[y, x, 1], out[y, x, 2] = r, g, b
        if y > 0:
            for x in range(w):
                for c in range(3):
                    out[y, x, c] = (out[y, x, c] + out[y - 1, x, c]) & 255
    for y in range(h):
        for x in range(w):
            g = out[y, x, 1]
            out[y, x, 0] = (out[y, x, 0] + g) & 255
            out[y, x, 2] = (out[y, x, 2] + g) & 255


def warm_up() -> None:
    """Load (or compile) the compiled decoder now: about a second the first time in a
    process. A loader calls it before forking its workers, so that they inherit it."""
    _zstd_unpredict(np.zeros((1, 1, 3), np.uint8), np.empty((1, 1, 3), np.uint8))


def encode_frames(frames: np.ndarray, fmt: str) -> bytes:
    """Store RGB frames uint8 (T, H, W, 3) as one blob in format ``fmt`` (see FORMATS)."""
    fmt = _check_format(fmt)
    frames = _check_frames(frames)
    t, h, w, _ = frames.shape
    extradata = b""
    if fmt == "raw":
        payloads, keys = [f.tobytes() for f in frames], [True] * t
    elif fmt == "zstd":
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        payloads, keys = [compressor.compress(_zstd_residuals(f)) for f in frames], [True] * t
    elif fmt == "yuv420p":
        payloads, keys = [], [True] * t
        for f in frames:
            yuv = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(
                format="yuv420p", interpolation=YUV_INTERPOLATION, threads=SWSCALE_THREADS)
            payloads.append(b"".join(
                np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, :p.width].tobytes()
                for p in yuv.planes))
    else:
        payloads, keys, extradata = _codec_payloads(frames, fmt)
    head = _HEADER.pack(_MAGIC, _VERSION, _CODE[fmt], 0, t, h, w, len(extradata))
    head += b"".join(_ENTRY.pack(len(p), zlib.crc32(p), _KEY if k else 0)
                     for p, k in zip(payloads, keys))
    return b"".join([head, _CRC.pack(zlib.crc32(head)), extradata, *payloads])


class _Blob:
    """Parsed header of an encoded clip; payloads are checked only when read.

    ``data``: the clip's bytes, or a file range that reads its own (anything with
    ``size`` and ``read_ranges([(start, stop), ...]) -> list[bytes]``, such as
    :class:`dfaug.shards.ShardMember`). From a file range only the header is read
    at once, and then just the frames asked for (:meth:`load`).
    """

    _PREFIX = 4096  # one read holds the header of a clip of up to ~450 frames

    def __init__(self, data, fmt: str):
        if isinstance(data, (bytes, bytearray, memoryview)):
            view = memoryview(data).cast("B")
            self.size, self._ranges, head = len(view), None, view
        elif hasattr(data, "read_ranges") and hasattr(data, "size"):
            self.size, self._ranges = int(data.size), data.read_ranges
            head = memoryview(self._read(0, min(self.size, self._PREFIX)))
        else:
            raise ValueError(f"data must be bytes or a file range such as a ShardMember, "
                             f"got {type(data).__name__}")
        if len(head) < _HEADER.size:
            raise VideoDecodeError(f"data is truncated: {len(head)} bytes, no clip header")
        magic, version, code, _, self.t, self.h, self.w, n_extra = _HEADER.unpack_from(head)
        if magic != _MAGIC or version != _VERSION:
            raise VideoDecodeError("data is not an encoded clip (bad magic or version)")
        stored = FORMATS[code] if code < len(FORMATS) else f"<code {code}>"
        if stored != fmt:
            raise ValueError(f"fmt is {fmt!r} but data holds a {stored!r} clip")
        table_end = _HEADER.size + self.t * _ENTRY.size
        extra_start = table_end + _CRC.size
        if self._ranges is not None and len(head) < min(self.size, extra_start + n_extra):
            head = memoryview(self._read(0, min(self.size, extra_start + n_extra)))
        if len(head) < extra_start:
            raise VideoDecodeError("data is truncated inside the frame table")
        if zlib.crc32(head[:table_end]) != _CRC.unpack_from(head, table_end)[0]:
            raise VideoDecodeError("data is corrupt: clip header checksum mismatch")
        entries = [_ENTRY.unpack_from(head, _HEADER.size + i * _ENTRY.size)
                   for i in range(self.t)]
        self.lengths = np.array([e[0] for e in entries], np.int64)
        self.crcs = [e[1] for e in entries]
        self.keys = np.array([bool(e[2] & _KEY) for e in entries])
        self.extradata = bytes(head[extra_start:extra_start + n_extra])
        self.offsets = extra_start + n_extra + np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        end = extra_start + n_extra + int(self.lengths.sum())
        if self.size != end:
            raise VideoDecodeError(
                f"data is {'truncated' if self.size < end else 'too long'}: "
                f"{self.size} bytes, the header describes {end}")
        # the payloads' bytes: all of them in memory, or those loaded from the file range
        self._payloads: dict[int, memoryview] = {}
        self._view = head if self._ranges is None else None

    def _read(self, start: int, stop: int) -> bytes:
        return self._ranges([(start, stop)])[0]

    def load(self, indices) -> None:
        """Read the payloads of frames ``indices`` from the file range, one read per
        run of consecutive frames (their payloads lie back to back); a no-op for
        bytes in memory and for frames already read."""
        if self._ranges is None:
            return
        todo = sorted({int(i) for i in indices} - self._payloads.keys())
        if not todo:
            return
        runs: list[list[int]] = []
        for i in todo:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        spans = [(int(self.offsets[r[0]]), int(self.offsets[r[-1]] + self.lengths[r[-1]]))
                 for r in runs]
        for run, (start, _), data in zip(runs, spans, self._ranges(spans)):
            view = memoryview(data)
            for i in run:
                at = int(self.offsets[i]) - start
                self._payloads[i] = view[at:at + int(self.lengths[i])]

    def payload(self, i: int) -> memoryview:
        if self._view is not None:
            p = self._view[self.offsets[i]:self.offsets[i] + self.lengths[i]]
        else:
            if i not in self._payloads:
                self.load([i])
            p = self._payloads[i]
        if zlib.crc32(p) != self.crcs[i]:
            raise VideoDecodeError(f"data is corrupt: frame {i} fails its checksum")
        return p


def _check_indices(indices, t: int) -> np.ndarray:
    if indices is None:
        return np.arange(t)
    idx = np.asarray(indices)
    if idx.ndim != 1 or not (idx.size == 0 or np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D sequence of integers, got {indices!r}")
    if idx.size == 0:
        raise ValueError("indices must name at least one frame, got none")
    if idx.min() < 0 or idx.max() >= t:
        raise ValueError(f"indices must be in [0, {t - 1}] for this {t}-frame clip, "
                         f"got {idx.min()}..{idx.max()}")
    return idx.astype(np.int64)


def _decode_runs(blob: _Blob, fmt: str, needed: np.ndarray) -> dict[int, np.ndarray]:
    """Decode ``needed`` (sorted, unique); inter-coded runs start at their keyframe."""
    if fmt == "h264-lossless":
        if not blob.keys[0]:
            raise VideoDecodeError("data is corrupt: the first h264 frame is not a keyframe")
        key_at = np.maximum.accumulate(np.where(blob.keys, np.arange(blob.t), 0))
        runs, end = [], -1
        for i in needed:
            if key_at[i] > end:  # restarting at the keyframe is never more work
                runs.append(list(range(key_at[i], i + 1)))
            else:
                runs[-1] += range(end + 1, i + 1)
            end = i
    else:  # intra-only: every frame decodes alone, one decoder serves them all
        runs = [list(needed)]
    blob.load([i for run in runs for i in run])
    dec_name = _CODECS[fmt][2]
    wanted, out = set(needed.tolist()), {}
    try:
        for run in runs:
            dec = av.CodecContext.create(dec_name, "r")
            dec.thread_count = 1
            dec.width, dec.height = blob.w, blob.h  # FFV1's decoder needs them up front
            if blob.extradata:
                dec.extradata = blob.extradata
            decoded = []
            for i in run:
                packet = av.Packet(blob.payload(i))
                # FFmpeg's PNG decoder treats a packet not flagged key as a delta on
                # the previous picture: the flag must travel with the bytes.
                packet.is_keyframe = bool(blob.keys[i])
                decoded += dec.decode(packet)
            decoded += dec.decode(None)
            if len(decoded) != len(run):
                raise VideoDecodeError(f"data is corrupt: {len(decoded)} of {len(run)} "
                                       f"{fmt} frames decoded")
            for i, frame in zip(run, decoded):
                if (frame.width, frame.height) != (blob.w, blob.h):
                    raise VideoDecodeError(f"data is corrupt: frame {i} decoded as "
                                           f"{frame.width}x{frame.height}, expected {blob.w}x{blob.h}")
                if i in wanted:
                    out[i] = frame.to_ndarray(format="rgb24", threads=SWSCALE_THREADS)
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"data is corrupt: {fmt} decoding failed ({e})") from e
    return out


def decode_frames(data: bytes, fmt: str, indices: Optional[Sequence[int]] = None,
                  out: Optional[np.ndarray] = None) -> np.ndarray:
    """Frames ``indices`` (all if None, in the order given) of a clip from :func:`encode_frames`.

    ``data``: the clip's bytes, or a file range holding them (a lazy shard record's
    :class:`dfaug.shards.ShardMember`): then only the header and the bytes of the
    frames decoded are read, one read per run of consecutive frames.
    Returns uint8 (len(indices), H, W, 3) RGB. Only the asked frames are decoded, plus,
    for h264-lossless, the frames from each one's preceding keyframe. ``out``: a
    C-contiguous uint8 (T, H, W, 3) buffer of the whole clip to fill instead, frame
    ``i`` at ``out[i]`` (the others untouched); it is returned. That saves a copy
    where frames are wanted at their own index. Raises ``ValueError`` for bad
    arguments and ``VideoDecodeError`` (a ValueError) for truncated or corrupt data.
    """
    fmt = _check_format(fmt)
    blob = _Blob(data, fmt)
    idx = _check_indices(indices, blob.t)
    h, w = blob.h, blob.w
    if out is None:
        out, at = np.empty((len(idx), h, w, 3), np.uint8), np.arange(len(idx))
    elif (isinstance(out, np.ndarray) and out.dtype == np.uint8
          and out.shape == (blob.t, h, w, 3) and out.flags.c_contiguous):
        at = idx
    else:
        raise ValueError(f"out must be a C-contiguous uint8 array of the stored clip's shape "
                         f"{(blob.t, h, w, 3)}, got {getattr(out, 'dtype', type(out).__name__)} "
                         f"{getattr(out, 'shape', '')}")
    return _decode_into(blob, fmt, idx, out, at)


class StoredFrames(LazyFrames):
    """A stored clip whose frames are decoded only when indexed, one at a time.

    Indexes like the decoded (T, H, W, 3) uint8 clip (see :class:`dfaug.video.LazyFrames`),
    so it can be a :class:`dfaug.Clip`'s frames where a reader takes frames one by
    one, as :func:`dfaug.recompress` does. Frames never asked for are never decoded
    (e.g. the tail that x264 with tune zerolatency does not need), and no whole-clip
    buffer is filled; in speed it measured the same as decoding first, on two
    machines (docs/benchmarks.md). Each index gives new arrays. The header is checked
    at once; damaged frame data raises ``VideoDecodeError`` when that frame is read.
    ``data`` may be a file range, as for :func:`decode_frames`: a frame's bytes are
    then read when it is decoded, or before, by :meth:`prefetch`.
    """

    def __init__(self, data, fmt: str):
        self.fmt = _check_format(fmt)
        self._blob = _Blob(data, self.fmt)
        self.shape = (self._blob.t, self._blob.h, self._blob.w, 3)
        self._decompressor = zstandard.ZstdDecompressor() if self.fmt == "zstd" else None
        self._run: dict[int, np.ndarray] = {}  # h264-lossless: the last keyframe run decoded

    @property
    def pix_fmt(self) -> str:
        """"yuv420p" for that format (its planes are what is stored), else "rgb24"."""
        return "yuv420p" if self.fmt == "yuv420p" else "rgb24"

    def video_frame(self, i: int) -> av.VideoFrame:
        """Frame ``i`` as a new frame in :attr:`pix_fmt`: a yuv420p clip's stored planes,
        not converted (:func:`dfaug.recompress` feeds them to x264 as they are)."""
        i = range(len(self))[i]
        if self.fmt != "yuv420p":
            return av.VideoFrame.from_ndarray(self._rgb(i), format="rgb24")
        return _yuv_frame(self._blob, i)

    def _rgb(self, i: int) -> np.ndarray:
        if self.fmt != "h264-lossless":
            frame = np.empty((1, *self.shape[1:]), np.uint8)
            return _decode_into(self._blob, self.fmt, np.array([i]), frame, np.array([0]),
                                self._decompressor)[0]
        if i not in self._run:  # decode i's whole keyframe run: readers go forward
            self._run = _decode_runs(self._blob, self.fmt, self._key_run(i))
        return self._run[i].copy()

    def _key_run(self, i: int) -> np.ndarray:
        """h264-lossless: the frames from i's keyframe up to the next keyframe."""
        keys = np.flatnonzero(self._blob.keys)
        start = int(keys[keys <= i].max()) if (keys <= i).any() else 0
        stop = int(keys[keys > i].min()) if (keys > i).any() else len(self)
        return np.arange(start, stop)

    def prefetch(self, indices) -> None:
        """Read the stored bytes of frames ``indices`` now, in as few reads as their
        runs allow, when the clip's bytes are still in a file (a lazy shard record's
        :class:`dfaug.shards.ShardMember`); frames are still decoded one at a time."""
        idx = _check_indices(indices, len(self))
        if self.fmt == "h264-lossless":
            idx = np.concatenate([self._key_run(int(i)) for i in np.unique(idx)])
        self._blob.load(idx)


def _yuv_frame(blob: _Blob, i: int) -> av.VideoFrame:
    """Stored frame ``i`` of a yuv420p blob (its bytes loaded) as a new yuv420p frame."""
    h, w = blob.h, blob.w
    _, _, ch, cw = _yuv_sizes(h, w)
    src = np.frombuffer(blob.payload(i), np.uint8)
    if len(src) != h * w + 2 * ch * cw:
        raise VideoDecodeError(f"data is corrupt: yuv420p frame {i} holds {len(src)} bytes, "
                               f"expected {h * w + 2 * ch * cw} for {w}x{h}")
    frame = av.VideoFrame(w, h, "yuv420p")
    start = 0
    for plane, (ph, pw) in zip(frame.planes, ((h, w), (ch, cw), (ch, cw))):
        dst = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        dst[:, :pw] = src[start:start + ph * pw].reshape(ph, pw)
        start += ph * pw
    return frame


def _decode_into(blob: _Blob, fmt: str, idx: np.ndarray, out: np.ndarray, at: np.ndarray,
                 decompressor: Optional["zstandard.ZstdDecompressor"] = None) -> np.ndarray:
    """Decode frames ``idx`` of ``blob`` into ``out[at]``; returns ``out``."""
    h, w = blob.h, blob.w
    if fmt not in _CODECS:  # intra-only frames of their own; codecs load their runs
        blob.load(idx)
    if fmt == "raw":
        if not np.all(blob.lengths == h * w * 3):
            raise VideoDecodeError("data is corrupt: raw frame lengths do not match the frame size")
        for k, i in enumerate(idx):
            out[at[k]] = np.frombuffer(blob.payload(i), np.uint8).reshape(h, w, 3)
        return out
    if fmt == "zstd":
        decompressor = decompressor or zstandard.ZstdDecompressor()
        for k, i in enumerate(idx):
            try:
                res = decompressor.decompress(blob.payload(i), max_output_size=h * w * 3)
            except zstandard.ZstdError as e:
                raise VideoDecodeError(f"data is corrupt: frame {i} fails to decompress ({e})") from e
            if len(res) != h * w * 3:
                raise VideoDecodeError(f"data is corrupt: frame {i} holds {len(res)} bytes, "
                                       f"expected {h * w * 3}")
            _zstd_unpredict(np.frombuffer(res, np.uint8).reshape(h, w, 3), out[at[k]])
        return out
    if fmt == "yuv420p":
        for k, i in enumerate(idx):
            out[at[k]] = _yuv_frame(blob, i).to_ndarray(format="rgb24", threads=SWSCALE_THREADS)
        return out
    decoded = _decode_runs(blob, fmt, np.unique(idx))
    for k, i in enumerate(idx):
        out[at[k]] = decoded[i]
    return out
