"""NVDEC backends of :func:`dfaug.read_video`: H.264 decoded on the GPU, frames left there.

Two backends, declared in :mod:`dfaug.backends` and usable only where
a CUDA GPU and its package exist (``available()`` is cheap and never raises, so
``import dfaug`` and ``backend="auto"`` behave the same on a CPU-only machine):

- ``"dali"``: NVIDIA DALI's video decoder (``fn.decoders.video``, called
  ``fn.experimental.decoders.video`` before DALI 2) on the file's bytes, ``mixed``
  backend: FFmpeg demuxes on the CPU, NVDEC decodes, DALI converts to RGB on the GPU.
  The RGB frames are copied device-to-device into a torch tensor (the pipeline
  reuses its output buffers on the next run). DALI gives no timestamps: they come
  from the container (:func:`container_pts`, a demux without decoding).
- ``"pyav-cuda"``: PyAV with FFmpeg's CUDA hwaccel (PyAV's own wheels carry it;
  checked in 18.1). Frames stay on the device (``HWAccel(is_hw_owned=True)``, PyAV
  >= 17), their NV12 planes are taken through DLPack
  and converted to RGB by :func:`nv12_to_rgb` (torch, on the GPU), calibrated
  to match the ``"pyav"`` backend's swscale conversion.

Frames are ``torch.uint8`` (T, H, W, 3) RGB on ``cuda:N``; ``pts`` float64 numpy
seconds, as for the CPU backend.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import threading
import warnings

import av
import numpy as np
import torch

from .clip import Clip
from .backends import (SWSCALE_THREADS, VideoDecodeError, VideoSource, check_decoded,
                       decode_error, frame_step, open_source, open_video)

# --------------------------------------------------------------------------------------
# Colour conversion (device-agnostic torch, so it is tested on the CPU too)

# (Kr, Kb) of the YCbCr matrices FFmpeg's swscale knows, by AVColorSpace value;
# swscale treats anything else (unspecified = 2 included) as BT.601.
_KR_KB = {
    1: (0.2126, 0.0722),   # BT.709
    4: (0.30, 0.11),       # FCC
    5: (0.299, 0.114),     # BT.470BG (= BT.601)
    6: (0.299, 0.114),     # SMPTE 170M (= BT.601)
    7: (0.212, 0.087),     # SMPTE 240M
    9: (0.2627, 0.0593),   # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (swscale uses the NCL matrix)
}
_BT601 = (0.299, 0.114)

# Added before flooring to each of R, G, B so that the result matches swscale's
# unscaled yuv420p -> rgb24 conversion (table-driven fixed point), what the "pyav"
# backend runs: it comes out about one level under exact rounding on R and B and
# 1.5 on G for limited range, half a level less dark for full range. Calibrated on
# the CPU against PyAV 18.1 / FFmpeg 8 (carphone, bikes, bigbuckbunny; BT.601,
# BT.709, BT.2020, full range): |diff| <= 1 level, mean 0.3-0.5.
# tests/test_nvdec.py checks it on every run, on the CPU.
_SWSCALE_BIAS = {False: (-0.5, -1.0, -0.5), True: (0.0, -0.5, 0.0)}  # by full_range


def yuv_to_rgb_matrix(colorspace: int, full_range: bool) -> tuple[np.ndarray, float, float]:
    """(M, y_scale, c_scale): RGB = y_scale * (Y - y0) + M @ (c_scale * (Cb - 128, Cr - 128)).

    ``colorspace`` is FFmpeg's AVColorSpace of the frame (``frame.colorspace``),
    ``full_range`` whether its colour range is JPEG (0..255) rather than MPEG (16..235).
    """
    kr, kb = _KR_KB.get(int(colorspace), _BT601)
    kg = 1.0 - kr - kb
    m = np.array([[0.0, 2 * (1 - kr)],
                  [-2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
                  [2 * (1 - kb), 0.0]])
    if full_range:
        return m, 1.0, 1.0
    return m, 255.0 / 219.0, 255.0 / 224.0


@functools.lru_cache(maxsize=16)
def _nv12_constants(colorspace: int, full_range: bool, h: int, w: int, uv_h: int, uv_w: int,
                    device: torch.device):
    """What :func:`nv12_to_rgb` needs besides the pixels, once per video format: built
    for every frame, its two small host-to-device copies stalled the decoding loop."""
    m, y_scale, c_scale = yuv_to_rgb_matrix(colorspace, full_range)
    m_t = torch.as_tensor(m.T, dtype=torch.float32, device=device)
    bias = torch.tensor(_SWSCALE_BIAS[full_range], device=device)
    rows = (torch.arange(h, device=device) // 2).clamp_(max=uv_h - 1)
    cols = (torch.arange(w, device=device) // 2).clamp_(max=uv_w - 1)
    return m_t, bias, rows, cols, y_scale, c_scale


def nv12_to_rgb(y: torch.Tensor, uv: torch.Tensor, *, colorspace: int = 2,
                full_range: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """RGB uint8 (H, W, 3) from an NV12 picture, on the device of ``y``.

    ``y``: uint8 (H, W); ``uv``: uint8 (H2, W2, 2) interleaved Cb, Cr at half
    resolution (strided views, as DLPack gives them, are fine). Chroma is
    upsampled by repetition, as swscale's unscaled path does; indices are clamped,
    so an odd-sized frame whose chroma plane was exported rounded down still works.
    """
    h, w = y.shape
    m_t, bias, rows, cols, y_scale, c_scale = _nv12_constants(
        int(colorspace), bool(full_range), h, w, uv.shape[0], uv.shape[1], y.device)
    y0 = 0.0 if full_range else 16.0
    chroma = (uv.float() - 128.0) * c_scale                       # (H2, W2, 2)
    chroma_rgb = chroma @ m_t + bias
    luma = (y.float() - y0) * y_scale                             # (H, W)
    rgb = luma[:, :, None] + chroma_rgb[rows][:, cols]
    rgb = rgb.floor_().clamp_(0, 255)
    if out is None:
        return rgb.to(torch.uint8)
    return out.copy_(rgb)


# --------------------------------------------------------------------------------------
# Availability: cheap, never raising


def _cuda_missing() -> str | None:
    try:
        if torch.cuda.is_available():
            return None
    except Exception as e:  # a broken driver install must not break import dfaug
        return f"CUDA is unusable ({e})"
    return "no CUDA GPU (torch.cuda.is_available() is False)"


@functools.lru_cache(maxsize=None)
def _dali_package_missing() -> str | None:
    try:
        found = importlib.util.find_spec("nvidia.dali") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else "NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)"


@functools.lru_cache(maxsize=None)
def _pyav_cuda_missing() -> str | None:
    if int(av.__version__.split(".")[0]) < 17:
        return (f"PyAV {av.__version__} cannot keep decoded frames on the GPU: pyav-cuda "
                "needs PyAV >= 17 (pip install 'av>=17')")
    # what the backend uses, present in 17-19 (19 changed rationals and removed
    # CodecContext.hwaccel, neither used here): HWAccel(is_hw_owned=...), frames'
    # sw_format and DLPack planes
    try:
        av.codec.hwaccel.HWAccel(device_type="cuda", allow_software_fallback=False,
                                 is_hw_owned=True, options={})
        probe = av.VideoFrame(16, 16, "yuv420p")
        probe.sw_format, probe.planes[0].__dlpack__  # noqa: B018 - attribute checks
    except (TypeError, AttributeError) as e:
        return (f"PyAV {av.__version__} lacks what pyav-cuda uses ({e}); it runs on "
                "PyAV 17 to 19")
    if "cuda" not in av.codec.hwaccel.hwdevices_available():
        return f"the FFmpeg inside PyAV {av.__version__} was built without CUDA hwaccel"
    return None


def dali_missing() -> str | None:
    """Why the ``"dali"`` backend cannot run here, or None when it can."""
    return _dali_package_missing() or _cuda_missing()


def pyav_cuda_missing() -> str | None:
    """Why the ``"pyav-cuda"`` backend cannot run here, or None when it can."""
    return _pyav_cuda_missing() or _cuda_missing()


def dali_available() -> bool:
    return dali_missing() is None


def pyav_cuda_available() -> bool:
    return pyav_cuda_missing() is None


# --------------------------------------------------------------------------------------
# Shared helpers


def cuda_device(device=None) -> torch.device:
    """The CUDA device to decode on: ``device`` (index, "cuda:N", torch.device) or the current one."""
    if device is None:
        return torch.device("cuda", torch.cuda.current_device())
    dev = torch.device(device) if not isinstance(device, int) else torch.device("cuda", device)
    if dev.type != "cuda":
        raise ValueError(f"device must be a CUDA device, got {device!r}")
    return torch.device("cuda", dev.index if dev.index is not None else torch.cuda.current_device())


def read_bytes(src: VideoSource) -> tuple[bytes, str]:
    """The whole file as bytes (DALI decodes from memory) and a name for messages."""
    handle, name = open_source(src)
    if isinstance(handle, str):
        with open(handle, "rb") as f:
            return f.read(), name
    return handle.getvalue(), name


def container_pts(src: VideoSource) -> np.ndarray:
    """Presentation times (s) of the frames of the first video stream, sorted, no decoding.

    The packets' pts in presentation order are the frames' pts that PyAV's decoder
    reports (packets FFmpeg marks as discarded, e.g. cut by an edit list, give no
    frame); without pts, frames are spaced by the average rate as in the ``"pyav"``
    backend. Raises :class:`VideoDecodeError` like ``read_video`` for non-videos and
    truncated files (fewer packets than the declared frame count).
    """
    handle, name = open_source(src)
    try:
        with open_video(handle, name) as (container, stream):
            declared = stream.frames
            step = frame_step(stream)
            pts = [p.pts for p in container.demux(stream)
                   if p.size > 0 and not p.is_discard]
            base = stream.time_base
    except av.error.FFmpegError as e:
        raise VideoDecodeError(f"{name}: not a readable video ({e})") from e
    if not pts:
        raise VideoDecodeError(f"{name}: no frame could be decoded")
    if any(p is None for p in pts):
        times = np.arange(len(pts)) * step
    else:
        # the same float operations as PyAV's frame.time, so the two agree exactly
        times = np.sort(np.asarray(pts, dtype=np.int64)).astype(np.float64) \
            * base.numerator / base.denominator
    check_decoded(name, len(times), declared, times)
    return np.asarray(times, dtype=np.float64)


# --------------------------------------------------------------------------------------
# "pyav-cuda": FFmpeg's NVDEC hwaccel through PyAV, frames kept on the device


def _plane(frame, index: int) -> torch.Tensor:
    """A plane of a CUDA hw frame as a torch view (no copy).

    Goes through the raw DLPack capsule: torch.from_dlpack(plane) would pass its
    stream to ``__dlpack__``, which PyAV refuses; the work is ordered instead by
    running on the legacy default stream, the one FFmpeg's CUDA copies use.
    """
    return torch.utils.dlpack.from_dlpack(frame.planes[index].__dlpack__())


def _hwaccel(dev: torch.device, fallback: bool):
    """FFmpeg's CUDA device in torch's own context (FFmpeg's ``current_ctx``).

    PyAV asks for the device's primary context by default. FFmpeg wants that context
    with blocking-sync scheduling and refuses one torch already made without it
    ("Primary context already active with incompatible flags", ENOTSUP: seen on an
    H200), so the hwaccel takes the context current on the calling thread instead:
    run inside :func:`_torch_context`. Frames then live in torch's context, which is
    what lets torch view them through DLPack.
    """
    return av.codec.hwaccel.HWAccel(device_type="cuda", device=str(dev.index),
                                    allow_software_fallback=fallback, is_hw_owned=True,
                                    options={"primary_ctx": "0", "current_ctx": "1"})


@contextlib.contextmanager
def _torch_context(dev: torch.device):
    """Make torch's CUDA context of ``dev`` current on this thread while FFmpeg opens.

    The runtime binds a thread to a context lazily, at its first runtime call, and a
    new thread (a decoding worker) has made none: a stream query is such a call.
    """
    with torch.cuda.device(dev):
        torch.cuda.current_stream(dev).query()
        yield


@functools.lru_cache(maxsize=None)
def _cuda_hwdevice_error(index: int) -> str | None:
    """Why FFmpeg cannot open CUDA device ``index``, or None; tried once per device.

    Opening it inside ``av.open`` would fail with the same FFmpeg error types as a
    corrupt file; checking first keeps "the GPU is unusable" apart from "bad video".
    """
    dev = torch.device("cuda", index)
    try:
        with _torch_context(dev):
            _hwaccel(dev, False).create(av.codec.Codec("h264", "r"))
    except Exception as e:  # noqa: BLE001 - any failure means the same to the caller
        return f"FFmpeg cannot open CUDA device {index} for decoding ({type(e).__name__}: {e})"
    return None


def _hw_frame_to_rgb(frame, out: torch.Tensor) -> bool:
    """Write the RGB picture of ``frame`` into ``out``; False if it was decoded on the CPU."""
    if frame.format.name != "cuda":
        # FFmpeg fell back to software decoding (a stream NVDEC cannot take, or no
        # NVDEC library in the driver install): the frame is in host memory,
        # converted there exactly as "pyav" does, then uploaded.
        out.copy_(torch.from_numpy(frame.to_ndarray(format="rgb24", threads=SWSCALE_THREADS)))
        return False
    sw = frame.sw_format.name if frame.sw_format is not None else None
    if sw != "nv12":
        raise VideoDecodeError(
            f"pyav-cuda converts 8-bit 4:2:0 (nv12) frames only, NVDEC gave {sw}; "
            "use backend='pyav'")
    nv12_to_rgb(_plane(frame, 0), _plane(frame, 1), colorspace=frame.colorspace,
                full_range=frame.color_range == 2, out=out)
    return True


def read_pyav_cuda(src: VideoSource, *, device=None, fallback: bool = True) -> Clip:
    """Decode on NVDEC via PyAV's CUDA hwaccel; frames stay on ``device``.

    ``fallback``: let FFmpeg decode on the CPU a stream NVDEC cannot take (with a
    warning: it is correct but slow); False makes such a stream an error.
    The conversion runs on the legacy default stream, which FFmpeg's CUDA copies
    use too, so a surface is read before the decoder reuses it; the caller's
    stream then waits for it.
    """
    dev = cuda_device(device)
    error = _cuda_hwdevice_error(dev.index)
    if error:
        raise RuntimeError(f"pyav-cuda: {error}")
    handle, name = open_source(src)
    caller_stream, legacy = torch.cuda.current_stream(dev), torch.cuda.default_stream(dev)
    pts, on_gpu, out, extra, declared = [], 0, None, [], 0
    try:
        with _torch_context(dev), \
                open_video(handle, name, hwaccel=_hwaccel(dev, fallback)) as (container, stream), \
                torch.cuda.stream(legacy):
            declared = stream.frames
            step = frame_step(stream)
            for frame in container.decode(stream):
                if out is None:  # one allocation for the whole clip when its length is known
                    out = torch.empty((max(declared, 1), frame.height, frame.width, 3),
                                      dtype=torch.uint8, device=dev)
                i = len(pts)
                target = out[i] if i < len(out) else torch.empty_like(out[0])
                on_gpu += _hw_frame_to_rgb(frame, target)
                if i >= len(out):
                    extra.append(target)
                t = frame.time
                pts.append(t if t is not None else i * step)
    except av.error.FFmpegError as e:
        raise decode_error(name, len(pts), declared, e) from e
    caller_stream.wait_stream(legacy)
    pts = np.asarray(pts, dtype=np.float64)
    check_decoded(name, len(pts), declared, pts)
    if on_gpu < len(pts):
        warnings.warn(f"pyav-cuda: {len(pts) - on_gpu} of {len(pts)} frames of {name} were "
                      "decoded on the CPU (NVDEC could not take the stream)", stacklevel=3)
    frames = out[:len(pts)] if not extra else torch.cat([out, torch.stack(extra)])
    if caller_stream != legacy:  # allocated on the legacy stream, used on the caller's
        frames.record_stream(caller_stream)
    return Clip(frames, pts)


# --------------------------------------------------------------------------------------
# "dali": DALI's NVDEC video decoder on the encoded bytes

_DALI_PIPES = threading.local()  # a DALI pipeline is not thread-safe: one per thread


def _dali_video_op():
    from nvidia.dali import fn
    op = getattr(getattr(fn, "decoders", None), "video", None)
    return op if op is not None else fn.experimental.decoders.video


def _dali_pipeline(batch_size: int, device_id: int | None):
    """A built pipeline (external source of encoded files -> video decoder), cached.

    ``device_id`` None builds DALI's CPU decoder instead of the mixed (NVDEC) one:
    it takes no H.264, but lets the tests run this code on a machine without a GPU.
    Synchronous (no prefetch, not pipelined): each ``run`` decodes exactly the
    files fed just before it, which is what a read call needs.
    """
    pipes = getattr(_DALI_PIPES, "pipes", None)
    if pipes is None:
        pipes = _DALI_PIPES.pipes = {}
    key = (batch_size, device_id)
    if key not in pipes:
        from nvidia.dali import Pipeline, fn, types

        # one DALI thread per video of the batch: each drives its own NVDEC session
        threads = max(1, min(batch_size, os.cpu_count() or 1))
        pipe = Pipeline(batch_size=batch_size, num_threads=threads, device_id=device_id,
                        prefetch_queue_depth=1, exec_async=False, exec_pipelined=False)
        with pipe:
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1,
                                         device="cpu")
            decoder = "cpu" if device_id is None else "mixed"
            # affine=False: a library must not pin the caller's threads to cores
            pipe.set_outputs(_dali_video_op()(encoded, device=decoder, affine=False))
        pipe.build()
        pipes[key] = pipe
    return pipes[key]


def _forget_dali_pipeline(key: tuple) -> None:
    """Drop a pipeline after a failed run: its state is not trusted afterwards."""
    getattr(_DALI_PIPES, "pipes", {}).pop(key, None)


def release_dali_pipelines() -> None:
    """Drop this thread's cached DALI pipelines and the GPU memory they hold.

    A pipeline keeps its output buffers (the decoded frames of its last batch, 1.9
    GB for a 10-second 1080p video) until the next run; call this when done decoding.
    """
    getattr(_DALI_PIPES, "pipes", {}).clear()


def _dali_sample(batch, i: int):
    """Sample ``i`` of a DALI TensorList as a DALI tensor (TensorGPU, or TensorCPU).

    Indexing is the current API; older DALI has only ``at``, which gives a TensorGPU
    too (the CPU decoder is only used by the tests, on a recent DALI).
    """
    try:
        return batch[i]
    except TypeError:
        return batch.at(i)


def dali_decode(datas: list[bytes], device=None) -> list[torch.Tensor]:
    """Decode several encoded videos in one DALI batch (concurrent NVDEC sessions).

    Returns one uint8 (T, H, W, 3) RGB tensor per video on ``device`` (a CUDA
    device, default the current one; ``"cpu"``: DALI's CPU decoder, for tests).
    The frames are copied device-to-device out of DALI's reused output buffers, on
    torch's current stream, never through host memory.
    """
    from nvidia.dali.plugin.pytorch import feed_ndarray

    dev = torch.device("cpu") if str(device) == "cpu" else cuda_device(device)
    key = (len(datas), dev.index)
    pipe = _dali_pipeline(*key)
    try:
        pipe.feed_input("encoded", [np.frombuffer(d, dtype=np.uint8) for d in datas])
        (decoded,) = pipe.run()
    except RuntimeError as e:
        _forget_dali_pipeline(key)
        raise VideoDecodeError(f"DALI could not decode the video ({e})") from e
    stream = torch.cuda.current_stream(dev) if dev.type == "cuda" else None
    results = []
    for i in range(len(datas)):
        sample = _dali_sample(decoded, i)
        target = torch.empty(tuple(sample.shape()), dtype=torch.uint8, device=dev)
        results.append(feed_ndarray(sample, target, cuda_stream=stream))
    if stream is not None:
        stream.synchronize()  # the next run may overwrite the buffers copied from
    return results


def read_dali(src: VideoSource, *, device=None) -> Clip:
    """Decode with DALI on NVDEC; timestamps from the container, counts checked against it."""
    data, name = read_bytes(src)
    pts = container_pts(data)
    try:
        (frames,) = dali_decode([data], device)
    except VideoDecodeError as e:
        raise VideoDecodeError(f"{name}: {e}") from e
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoDecodeError(f"{name}: DALI gave frames of shape {tuple(frames.shape)}")
    if frames.shape[0] != len(pts):
        raise VideoDecodeError(
            f"{name}: DALI decoded {frames.shape[0]} frames, the container has {len(pts)}")
    return Clip(frames, pts)
