"""Key ingredient 2 of the recipe: random re-encoding of paired clips.

A :class:`CompressionSampler` draws one :class:`CompressionParams` per pair;
:func:`recompress` encodes every clip of the pair in-process (PyAV), with exactly the
same settings, and decodes it back. Frame-rate reduction follows ffmpeg's ``fps``
filter, by timestamps. H.264 (libx264) is the recipe's codec and the default; H.265
(libx265), VP9 (libvpx-vp9) and AV1 (SVT-AV1) are the others (:data:`CODECS`,
docs/compression.md).
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from . import simd
from .clip import Clip
from .sampling import nearest, nearest_indices
from .storage import YUV_INTERPOLATION
from .video import LazyFrames

TUNES = ("film", "animation", "grain", "stillimage", "fastdecode", "zerolatency")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
           "slower", "veryslow", "placebo")
ENCODE_MODES = ("needed", "full")


@dataclass(frozen=True)
class Codec:
    """How :func:`recompress` drives one codec through PyAV.

    ``encoder`` / ``decoder``: FFmpeg's names. ``quality``: the inclusive range of
    :attr:`CompressionParams.crf` on this codec's own scale (lower is better).
    ``presets``: its speed presets, slowest first, and ``default_preset``.
    ``tunes``: the tunes it takes (None is always allowed). ``min_side``: the
    smallest width and height it encodes safely. ``needed_frames``: whether encoding
    only the frames a sample needs is shown to keep the full encode's artifacts
    (docs/needed-frames.md, H.264 only); other codecs encode from the clip's first
    frame, still stopping once the last returned frame is out.
    """

    name: str
    encoder: str
    decoder: str
    quality: tuple
    presets: tuple
    default_preset: str
    tunes: tuple = ()
    min_side: int = 2
    needed_frames: bool = False

    def missing(self) -> list:
        """The encoder and decoder this PyAV build lacks."""
        return [c for c in (self.encoder, self.decoder) if c not in av.codecs_available]

    def options(self, params: "CompressionParams", threads: int) -> dict:
        """The encoder's options for ``params`` with ``threads`` threads (0 = the
        library's own choice), fixed so that the same input gives the same bytes."""
        q = str(params.crf)
        if self.name == "h264":
            return {"crf": q, "preset": params.preset, "threads": str(threads),
                    **({"tune": params.tune} if params.tune else {}), **simd.x264_options()}
        if self.name == "hevc":
            # pools=none: x265's own thread pool off, one frame at a time
            pools = "pools=none:frame-threads=1" if threads == 1 else (
                f"pools={threads}" if threads else "")
            x265 = ":".join(p for p in (pools, "log-level=error") if p)
            return {"crf": q, "preset": params.preset, "x265-params": x265,
                    **({"tune": params.tune} if params.tune else {})}
        if self.name == "vp9":
            deadline, speed = params.preset.split("-")
            return {"crf": q, "b": "0", "deadline": deadline, "cpu-used": speed,
                    "threads": str(threads), "row-mt": "0" if threads == 1 else "1"}
        # av1, SVT-AV1: lp = the logical processors it may use
        return {"crf": q, "preset": params.preset,
                **({"svtav1-params": f"lp={threads}"} if threads else {})}


# Default presets: each codec's cost a pair at most 2x x264 medium's (docs/compression.md,
# benchmarks/bench_recompress.py --codecs): x265's own default, VP9's fastest "good"
# speed costs 2.0x there, so its slowest real-time one; SVT-AV1's 8 (1.1x; 6: 1.8x).
# x265 (PyAV's wheels, x265 3.6 / 4.x) corrupts its heap on frames under about 50 pixels
# a side (its lookahead's half-resolution planes): 44x36, 48x36 and 40x32 crashed the
# process here, every size from 52 to 72 encoded cleanly; 64 leaves a margin.
CODECS = {
    "h264": Codec("h264", "libx264", "h264", (0, 51), PRESETS, "medium", TUNES,
                  needed_frames=True),
    "hevc": Codec("hevc", "libx265", "hevc", (0, 51), PRESETS, "medium",
                  ("grain", "animation", "fastdecode", "zerolatency"), min_side=64),
    "vp9": Codec("vp9", "libvpx-vp9", "vp9", (0, 63),
                 tuple(f"good-{n}" for n in range(6)) + tuple(f"realtime-{n}" for n in range(5, 9)),
                 "realtime-5"),
    "av1": Codec("av1", "libsvtav1", "libdav1d", (1, 63), tuple(str(n) for n in range(14)), "8"),
}

# Frames encoded before the first and after the last frame a sample uses when only
# the needed frames are encoded. Chosen by benchmarks/study_needed_frames.py: with
# these, the PSNR of the used frames matches the full-clip encode (docs/needed-frames.md).
DEFAULT_WARMUP = 4
DEFAULT_TAIL = 12


@dataclass(frozen=True)
class CompressionParams:
    """One draw of the re-encoding settings, shared by both clips of a pair.

    ``fps``: frame rate after reduction (frames are dropped as by ffmpeg's ``fps``
    filter; a rate at or above the clip's own keeps every frame). ``scale``: factor
    in (0, 1] on width and height, each rounded down to even. ``crf``: the codec's
    constant-quality value on its own scale (``CODECS[codec].quality``: x264 and
    x265 0..51, VP9 0..63, SVT-AV1 1..63; lower is better). ``tune``: one of the
    codec's tunes (x264: :data:`TUNES`), or None. ``preset``: the codec's speed
    preset (None: its default; x264 medium). ``codec``: one of :data:`CODECS`,
    H.264 by default.
    """

    fps: float
    scale: float
    crf: int
    tune: Optional[str]
    preset: Optional[str] = None
    codec: str = "h264"

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"codec must be one of {tuple(CODECS)}, got {self.codec!r}")
        spec = CODECS[self.codec]
        missing = spec.missing()
        if missing:
            raise ValueError(f"codec {self.codec!r} needs FFmpeg's {' and '.join(missing)}, "
                             f"which this PyAV build ({av.__version__}) lacks")
        if not (isinstance(self.fps, numbers.Real) and math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps!r}")
        if not (isinstance(self.scale, numbers.Real) and 0 < self.scale <= 1):
            raise ValueError(f"scale must be in (0, 1], got {self.scale!r}")
        lo, hi = spec.quality
        if isinstance(self.crf, bool) or not isinstance(self.crf, numbers.Integral) \
                or not lo <= self.crf <= hi:
            raise ValueError(f"crf must be an integer in [{lo}, {hi}] for {self.codec}, "
                             f"got {self.crf!r}")
        if self.tune is not None and self.tune not in spec.tunes:
            raise ValueError(f"tune must be one of {spec.tunes} or None for {self.codec}, "
                             f"got {self.tune!r}")
        preset = spec.default_preset if self.preset is None else self.preset
        if preset not in spec.presets:
            raise ValueError(f"preset must be one of {spec.presets} for {self.codec}, "
                             f"got {self.preset!r}")
        object.__setattr__(self, "preset", preset)
        object.__setattr__(self, "crf", int(self.crf))
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "scale", float(self.scale))

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after scaling: each rounded down to even, at least the
        codec's smallest (2x2; 64x64 for hevc)."""
        w = int(width * self.scale) // 2 * 2
        h = int(height * self.scale) // 2 * 2
        least = CODECS[self.codec].min_side
        if w < least or h < least:
            raise ValueError(
                f"scale {self.scale} turns a {width}x{height} frame into {w}x{h}; "
                f"{self.codec} needs at least {least}x{least}")
        return w, h


def _check_probability(name, p):
    if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_range(name, lo_hi, lo_limit, hi_limit, integer):
    try:
        lo, hi = lo_hi
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {lo_hi!r}") from None
    kind = numbers.Integral if integer else numbers.Real
    if not (isinstance(lo, kind) and isinstance(hi, kind) and lo_limit <= lo < hi <= hi_limit):
        raise ValueError(
            f"{name} must be {'integers' if integer else 'numbers'} with "
            f"{lo_limit} <= low < high <= {hi_limit}, got {lo_hi!r}")


@dataclass(frozen=True)
class CodecChoice:
    """One codec of a :class:`CompressionSampler`'s mix.

    ``weight``: its share of the re-encoded draws (the weights are normalised).
    ``crf_range``: (low, high), crf an integer in [low, high) on the codec's own
    scale (default: its whole :attr:`Codec.quality` range). ``preset``: its speed
    preset (None: the codec's default). ``tunes``: drawn uniformly; () gives None.
    """

    codec: str
    weight: float = 1.0
    crf_range: Optional[tuple] = None
    preset: Optional[str] = None
    tunes: tuple = ()

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"codecs: codec must be one of {tuple(CODECS)}, got {self.codec!r}")
        spec = CODECS[self.codec]
        if not (isinstance(self.weight, numbers.Real) and self.weight > 0):
            raise ValueError(f"codecs: the weight of {self.codec} must be a positive number, "
                             f"got {self.weight!r}")
        lo, hi = spec.quality
        crf_range = (lo, hi + 1) if self.crf_range is None else tuple(self.crf_range)
        _check_range(f"codecs: crf_range of {self.codec}", crf_range, lo, hi + 1, integer=True)
        object.__setattr__(self, "crf_range", crf_range)
        tunes = (self.tunes,) if isinstance(self.tunes, str) else tuple(self.tunes)
        if any(t not in spec.tunes for t in tunes):
            raise ValueError(f"codecs: tunes of {self.codec} must be some of {spec.tunes}, "
                             f"got {self.tunes!r}")
        object.__setattr__(self, "tunes", tunes)
        preset = spec.default_preset if self.preset is None else self.preset
        if preset not in spec.presets:
            raise ValueError(f"codecs: preset of {self.codec} must be one of {spec.presets}, "
                             f"got {self.preset!r}")
        object.__setattr__(self, "preset", preset)


@dataclass(frozen=True)
class CompressionSampler:
    """The recipe's distribution of re-encoding settings, every part adjustable
    (docs/recipe.md "Re-encoding augmentation"; other codecs: docs/compression.md).

    With probability ``p_skip`` no re-encoding (``sample`` returns None). Otherwise:
    with probability ``p_fps`` fps = integer in [fps_range[0], fps_range[1]) else
    ``full_fps``; with probability ``p_scale`` scale ~ U(scale_range) (or one of
    ``scales``, uniformly, when given) else 1.0; crf = integer in
    [crf_range[0], crf_range[1]); tune uniform over ``tunes``; H.264 with ``preset``.
    ``codecs``: instead of H.264 alone, a mix of :class:`CodecChoice` (or codec
    names), one drawn by weight per pair, with its own crf range, preset and tunes.
    Every value is drawn on every call, so the generator advances the same way
    whatever the branches; without ``codecs`` and ``scales`` the draws are the
    recipe's, number for number. :meth:`named` gives the presets of :data:`SAMPLERS`.
    """

    p_skip: float = 0.5
    p_fps: float = 0.5
    fps_range: tuple = (15, 30)
    full_fps: float = 30
    p_scale: float = 0.5
    scale_range: tuple = (0.25, 1.0)
    crf_range: tuple = (17, 40)
    tunes: tuple = TUNES
    preset: str = "medium"
    codecs: Optional[tuple] = None
    scales: Optional[tuple] = None

    def __post_init__(self):
        for name in ("p_skip", "p_fps", "p_scale"):
            _check_probability(name, getattr(self, name))
        _check_range("fps_range", self.fps_range, 1, 1000, integer=True)
        if not (isinstance(self.full_fps, numbers.Real) and self.full_fps > 0):
            raise ValueError(f"full_fps must be a positive number, got {self.full_fps!r}")
        _check_range("scale_range", self.scale_range, 0, 1, integer=False)
        if self.scale_range[0] <= 0:
            raise ValueError(f"scale_range must start above 0, got {self.scale_range!r}")
        _check_range("crf_range", self.crf_range, 0, 52, integer=True)
        tunes = tuple(self.tunes) if not isinstance(self.tunes, str) else (self.tunes,)
        if not tunes or any(t not in TUNES for t in tunes):
            raise ValueError(f"tunes must be a non-empty subset of {TUNES}, got {self.tunes!r}")
        object.__setattr__(self, "tunes", tunes)
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {self.preset!r}")
        if self.codecs is not None:
            if isinstance(self.codecs, (str, CodecChoice)) or not len(self.codecs):
                raise ValueError(f"codecs must be a non-empty sequence of CodecChoice or codec "
                                 f"names (one of {tuple(CODECS)}), got {self.codecs!r}")
            object.__setattr__(self, "codecs", tuple(
                c if isinstance(c, CodecChoice) else CodecChoice(c) for c in self.codecs))
        if self.scales is not None:
            scales = tuple(self.scales)
            if not scales or not all(isinstance(x, numbers.Real) and 0 < x <= 1 for x in scales):
                raise ValueError(f"scales must be a non-empty sequence of factors in (0, 1], "
                                 f"got {self.scales!r}")
            object.__setattr__(self, "scales", scales)

    @staticmethod
    def named(name: str) -> "CompressionSampler":
        """A preset of :data:`SAMPLERS` (docs/compression.md says where each number
        comes from)."""
        if name not in SAMPLERS:
            raise ValueError(f"name must be one of {tuple(SAMPLERS)}, got {name!r}")
        return SAMPLERS[name]

    def sample(self, rng: np.random.Generator) -> Optional[CompressionParams]:
        """One draw; None means: use the clips as they are."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        u_skip, u_fps, u_scale = rng.random(3)
        fps = int(rng.integers(*self.fps_range))
        if self.scales is None:
            scale = float(rng.uniform(*self.scale_range))
        else:
            scale = float(self.scales[int(rng.integers(len(self.scales)))])
        if self.codecs is None:
            codec, crf_range, tunes, preset = "h264", self.crf_range, self.tunes, self.preset
        else:
            weights = np.array([c.weight for c in self.codecs], dtype=np.float64)
            choice = self.codecs[int(rng.choice(len(self.codecs), p=weights / weights.sum()))]
            codec, crf_range, tunes, preset = (choice.codec, choice.crf_range, choice.tunes,
                                               choice.preset)
        crf = int(rng.integers(*crf_range))
        tune = tunes[int(rng.integers(len(tunes)))] if tunes else None
        if u_skip < self.p_skip:
            return None
        return CompressionParams(
            fps=fps if u_fps < self.p_fps else self.full_fps,
            scale=scale if u_scale < self.p_scale else 1.0,
            crf=crf, tune=tune, preset=preset, codec=codec)


# Named distributions; each number's source is in docs/compression.md.
SAMPLERS = {
    # the 3rd-place DFDC recipe: H.264 only
    "recipe": CompressionSampler(),
    # web video: a platform-like ladder of downscales (1080p to 1080/720/480/360 lines),
    # the frame rate kept, H.264, VP9 and AV1 at the qualities their guides give
    "web": CompressionSampler(
        p_skip=0.25, p_fps=0.0, p_scale=1.0, scales=(1.0, 2 / 3, 4 / 9, 1 / 3),
        codecs=(CodecChoice("h264", 0.5, (20, 29), "medium"),
                CodecChoice("vp9", 0.3, (31, 38)),
                CodecChoice("av1", 0.2, (30, 41)))),
    # phones: H.265 at its default-centred quality, full size, frame rate kept
    "phone": CompressionSampler(
        p_skip=0.25, p_fps=0.0, p_scale=0.0,
        codecs=(CodecChoice("hevc", 1.0, (23, 33)),)),
}


def fps_filter(pts: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Which frames ffmpeg's ``fps`` filter keeps at rate ``fps``, and their new times.

    As the filter does (``round=near``, ``eof_action=round``) on a clip that starts at
    time 0, as the recipe's PNG clips did: each input time, counted from the first
    frame, is rounded to the output grid 1/fps; output slot n shows the last input frame whose
    rounded time is <= n; the stream ends at the rounded end time of the last frame.
    A rate at or above the clip's own keeps every frame and its time (the recipe only
    reduces; duplicating frames would add nothing). Returns (source indices, pts).
    """
    pts = np.asarray(pts, dtype=np.float64)
    if pts.size == 0:
        raise ValueError("fps_filter needs at least one frame")
    step = float(np.median(np.diff(pts))) if pts.size > 1 else 1 / fps
    if fps * step >= 1 - 1e-6:
        return np.arange(pts.size), pts.copy()
    rel = (pts - pts[0]) * fps
    # av_rescale_q_rnd with AV_ROUND_NEAR_INF: halves away from zero (times are >= 0).
    slot = np.floor(rel + 0.5).astype(np.int64)
    n_out = int(np.floor((pts[-1] - pts[0] + step) * fps + 0.5))
    src = np.searchsorted(slot, np.arange(n_out), side="right") - 1
    return src, pts[0] + np.arange(n_out) / fps


def _validate_clips(clips: Sequence[Clip]) -> Sequence[Clip]:
    if isinstance(clips, Clip):
        raise TypeError("recompress takes a list of clips (e.g. [real, fake]), got one Clip")
    clips = list(clips)
    if not clips:
        raise ValueError("recompress needs at least one clip")
    for i, clip in enumerate(clips):
        if not isinstance(clip, Clip):
            raise TypeError(f"clips[{i}] must be a dfaug.Clip, got {type(clip).__name__}")
        if len(clip) == 0:
            raise ValueError(f"clips[{i}] is empty: nothing to encode")
        if not isinstance(clip.frames, (np.ndarray, LazyFrames)):
            raise ValueError(f"clips[{i}] holds {type(clip.frames).__name__} frames; "
                             "recompress encodes on the CPU and needs numpy frames "
                             "(or dfaug.video.LazyFrames)")
    first = clips[0]
    for i, clip in enumerate(clips[1:], 1):
        if clip.frames.shape != first.frames.shape:
            raise ValueError(
                f"clips of a pair must have the same shape: clips[0] is {first.frames.shape}, "
                f"clips[{i}] is {clip.frames.shape}")
        if not np.array_equal(clip.pts, first.pts):
            raise ValueError(f"clips of a pair must share timestamps: clips[{i}] differs from clips[0]")
    return clips


def open_encoder(params: CompressionParams, size, rate: Fraction, threads: int = 1):
    """A PyAV encoder of ``params``' codec with its settings, as ffmpeg's CLI would set it up."""
    enc = av.CodecContext.create(CODECS[params.codec].encoder, "w")
    configure_encoder(enc, params, size, rate, threads)
    return enc


def configure_encoder(enc, params: CompressionParams, size, rate: Fraction, threads: int = 1):
    """Give an encoder context (e.g. a muxed output stream's) ``params``' settings."""
    if CODECS[params.codec].encoder == "libsvtav1":
        # SVT-AV1 prints its configuration at every start unless told otherwise
        os.environ.setdefault("SVT_LOG", "1")
    enc.width, enc.height = size
    enc.pix_fmt = "yuv420p"
    enc.time_base, enc.framerate = 1 / rate, rate
    enc.options = CODECS[params.codec].options(params, threads)


def open_decoder(params: CompressionParams, encoder, threads: int = 1):
    """The decoder of ``encoder``'s stream (its headers too, where it keeps them apart)."""
    dec = av.CodecContext.create(CODECS[params.codec].decoder, "r")
    dec.thread_count = threads
    if encoder.extradata:
        dec.extradata = encoder.extradata
    return dec


def _rgb_frame(image: np.ndarray) -> av.VideoFrame:
    """An rgb24 frame over ``image``'s own memory where its rows allow (no copy: 0.1 of
    the 0.6 ms that taking a 300x300 frame to yuv420p costs), else over a copy."""
    if image.strides[0] > 0 and image.strides[1:] == (3, 1):
        return av.VideoFrame.from_numpy_buffer(image, format="rgb24")
    return av.VideoFrame.from_ndarray(image, format="rgb24")


def _source_frame(frames, i: int) -> av.VideoFrame:
    """Frame ``i`` for x264: the stored planes of a yuv420p clip
    (:class:`~dfaug.storage.StoredFrames` with ``pix_fmt`` "yuv420p"), which need no
    conversion at the clip's own size, else an RGB frame. Stored yuv420p frames were
    made from RGB with the filter used here, so x264 gets the same planes either way."""
    if getattr(frames, "pix_fmt", None) == "yuv420p":
        return frames.video_frame(i)
    return _rgb_frame(frames[i])


def _encode_decode(frames: np.ndarray, plan: EncodePlan, params: CompressionParams,
                   threads: int) -> np.ndarray:
    """Encode ``frames[plan.indices]`` as one stream of ``params.codec``; return the
    decoded frames ``plan.pick`` names.

    Encoding stops as soon as the encoder has emitted every picked frame. The frames
    after them have been through its lookahead, so their effect on the picked frames'
    quality (x264's macroblock-tree, frame types) stays, but they are not encoded
    themselves. An emitted packet is final and the packets come in an order fixed by
    the frames already fed, so the picked frames are bit-identical to those of a full
    flush. Only the picked frames are converted back to RGB.
    """
    width, height = plan.size
    # one swscale context each way for all frames of the clip: a frame's own reformat()
    # sets up a new one each time, 0.06 of its 0.4 ms a 300x300 frame (more when
    # scaling; and with threads=0 a new thread pool each time)
    to_yuv, to_rgb = VideoReformatter(), VideoReformatter()
    if isinstance(frames, LazyFrames):
        frames.prefetch(plan.indices)
    enc = open_encoder(params, plan.size, plan.rate, threads)
    dec = open_decoder(params, enc, threads)
    slot = {int(n): k for k, n in enumerate(plan.pick)}  # encoded position -> output
    picked = np.empty((len(plan.pick), height, width, 3), np.uint8)
    decoded = np.zeros(len(plan.pick), bool)
    unsent = set(slot)  # picked frames x264 has not emitted yet

    def receive(frames_out):
        for frame in frames_out:
            if frame.pts is None:
                raise RuntimeError(f"the {params.codec} decoder returned a frame without a timestamp")
            k = slot.get(frame.pts)
            if k is not None:
                picked[k] = to_rgb.reformat(frame, format="rgb24", threads=threads).to_ndarray()
                decoded[k] = True

    def send(packets) -> bool:
        """Decode ``packets`` (stopping early): True once every picked frame is sent."""
        for packet in packets:
            unsent.discard(packet.pts)
            receive(dec.decode(packet))
            if not unsent:
                return True
        return False

    done = False
    for n, i in enumerate(plan.indices):
        frame = to_yuv.reformat(_source_frame(frames, i), width, height, "yuv420p",
                                interpolation=YUV_INTERPOLATION, threads=threads)
        frame.pts = n
        done = send(enc.encode(frame))
        if done:  # e.g. tune zerolatency (no lookahead): later frames cannot change these
            break
    if not done:
        send(enc.encode_lazy(None))  # lazy: what x264 would emit after this is not encoded
    receive(dec.decode(None))
    if not decoded.all():
        raise RuntimeError(f"{params.codec} round trip returned {int(decoded.sum())} of "
                           f"{len(picked)} picked frames")
    return picked


@dataclass(frozen=True)
class EncodePlan:
    """What :func:`recompress` encodes for one pair: the same for every clip of it.

    ``indices``: input frames fed to the encoder, in order (after fps reduction).
    ``pick``: the encoded frames returned, as increasing positions in ``indices``.
    ``pts``: their times. ``size``: (width, height) encoded.
    ``rate``: the encoder's frame rate.
    """

    indices: np.ndarray
    pick: np.ndarray
    pts: np.ndarray
    size: tuple[int, int]
    rate: Fraction


def plan_encode(clip: Clip, params: CompressionParams, span: Optional[tuple[int, int]] = None,
                encode: str = "needed", warmup: int = DEFAULT_WARMUP,
                tail: int = DEFAULT_TAIL, times=None) -> EncodePlan:
    """The frames, size and rate :func:`recompress` uses (arguments as there)."""
    _check_options(encode, warmup, tail)
    size = params.output_size(clip.width, clip.height)
    src, out_pts = fps_filter(clip.pts, params.fps)
    if times is not None:
        _check_one_of(span, times)
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        used = nearest_indices(clip.pts, times, repeat=True)  # ValueError outside the clip
        first, last = int(used.min()), int(used.max())
        if len(src) < len(clip):
            # dropped frames can move the output frame nearest to a time just outside
            # the input frames nearest to it (e.g. 25 fps clips at 18 fps)
            first, last = max(0, first - 1), min(len(clip) - 1, last + 1)
    else:
        first, last = _check_span(span, len(clip))
    # The output frames nearest in time to the span's ends bound what a sample can pick.
    lo, hi = (int(i) for i in nearest(out_pts, clip.pts[[first, last]]))
    if encode == "needed" and CODECS[params.codec].needed_frames:
        start, stop = max(0, lo - warmup), min(len(src), hi + 1 + tail)
    else:
        start, stop = 0, len(src)
    if len(src) == len(clip):
        rate = Fraction(1 / clip.frame_duration()).limit_denominator(1001)
    else:
        rate = Fraction(params.fps).limit_denominator(1001)
    if times is None:
        out = np.arange(lo, hi + 1)
    else:
        out = lo + np.unique(nearest(out_pts[lo:hi + 1], times))
    return EncodePlan(src[start:stop], out - start, out_pts[out], size, rate)


def _check_options(encode: str, warmup: int, tail: int) -> None:
    if encode not in ENCODE_MODES:
        raise ValueError(f"encode must be one of {ENCODE_MODES}, got {encode!r}")
    for name, value in (("warmup", warmup), ("tail", tail)):
        if not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _check_one_of(span, times) -> None:
    if span is not None and times is not None:
        raise ValueError("pass span or times, not both")


def _check_span(span, n_frames: int) -> tuple[int, int]:
    if span is None:
        return 0, n_frames - 1
    first, last = (int(v) for v in span)
    if not 0 <= first <= last < n_frames:
        raise ValueError(f"span must satisfy 0 <= first <= last < {n_frames}, got {span!r}")
    return first, last


def recompress(clips: Sequence[Clip], params: Optional[CompressionParams], *,
               span: Optional[tuple[int, int]] = None, times=None, encode: str = "needed",
               warmup: int = DEFAULT_WARMUP, tail: int = DEFAULT_TAIL,
               threads: int = 1) -> list[Clip]:
    """Re-encode every clip with the same settings (``params.codec``, H.264 by default)
    and decode it back.

    ``clips``: the clips of one pair (same shape and timestamps), e.g. [real, fake].
    Their frames may be lazy (:class:`dfaug.video.LazyFrames`, e.g. a shard's
    :class:`dfaug.storage.StoredFrames`): then only the frames fed to the encoder are
    decoded, each just before it is encoded.
    ``params``: the settings; None returns the clips (cut to ``span``, or their frames
    nearest to ``times``) untouched.
    ``span``: (first, last) indices of the input frames the sample will use,
    inclusive; the result holds the re-encoded frames nearest in time to them and
    all between. None means the whole clip.
    ``times``: instead of ``span``, the timestamps (seconds) a sample will use: the
    result holds the re-encoded frames nearest to them, each once, in time order
    (one per time for increasing times at least a frame apart; fewer where a reduced
    frame rate puts two times on one frame), and only those are converted back to
    RGB. A time more than half a frame outside the clip is a ValueError.
    ``encode``: ``"needed"`` feeds the encoder only the frames the sample needs plus ``warmup``
    frames before it and ``tail`` after it; ``"full"`` feeds it the whole clip, as the
    recipe did, and cuts afterwards. Only H.264's needed frames are shown to keep the
    full encode's artifacts (docs/needed-frames.md): other codecs are fed from the
    clip's first frame either way. Either way the encoder stops once it has emitted
    the last frame returned: what it would encode after that cannot change them.
    ``threads``: encoder and decoder threads per clip (1 in loader workers; 0 = auto).

    Returns one Clip per input clip, with the new frame size and timestamps.
    Identical input clips give bit-identical outputs: the path holds no randomness
    and each clip gets a fresh encoder with the same options.
    """
    clips = _validate_clips(clips)
    _check_options(encode, warmup, tail)
    if not isinstance(threads, numbers.Integral) or threads < 0:
        raise ValueError(f"threads must be a non-negative integer (0 = auto), got {threads!r}")
    if params is None:
        if times is not None:
            _check_one_of(span, times)
            idx = np.unique(nearest_indices(clips[0].pts, times, repeat=True))
            return [clip.take(idx) for clip in clips]
        first, last = _check_span(span, len(clips[0]))
        return [clip.take(np.arange(first, last + 1)) for clip in clips]
    if not isinstance(params, CompressionParams):
        raise TypeError(f"params must be CompressionParams or None, got {type(params).__name__}")
    plan = plan_encode(clips[0], params, span, encode, warmup, tail, times=times)
    return [Clip(_encode_decode(clip.frames, plan, params, threads), plan.pts) for clip in clips]
