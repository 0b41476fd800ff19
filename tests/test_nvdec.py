"""NVDEC backends of read_video ("dali", "pyav-cuda").

On a CPU-only machine: registration, availability, the fallback of "auto", the
errors, the container timestamps DALI's frames get, the NV12 -> RGB conversion of
"pyav-cuda" (device-agnostic torch, checked against PyAV here) and, when DALI is
installed, the DALI pipeline code through DALI's CPU decoder (VP9; H.264 is
GPU-only in DALI). On a GPU machine: each backend against PyAV on real video.
"""
import io
import importlib.util

import av
import numpy as np
import pytest
import torch

import dfaug
from dfaug import VideoDecodeError, nvdec, read_video
from dfaug.testing import media_path
from test_video import _faststart

VIDEOS = ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")

# Pixel tolerances against the "pyav" backend, in 8-bit levels of |difference|.
# "pyav-cuda": NVDEC's H.264 output is bit-exact (the standard fixes the decoded
# picture), and nv12_to_rgb is calibrated to swscale: measured here on the CPU
# <= 1 everywhere, mean 0.3-0.45. Checked on the GPU machine by the GPU tests.
PYAV_CUDA_MAX_DIFF = 1
PYAV_CUDA_MEAN_DIFF = 0.6
# "dali": DALI converts YUV -> RGB its own way (other chroma upsampling and
# rounding). DALI's CPU decoder on VP9 carphone measured mean 1.4, 99th
# percentile 6 here; its GPU decoder is checked against these on the GPU machine.
DALI_MEAN_DIFF = 2.0
DALI_P99_DIFF = 10

HAS_DALI = importlib.util.find_spec("nvidia.dali") is not None
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
needs_dali = pytest.mark.skipif(not HAS_DALI, reason="nvidia-dali-cuda120 not installed")


def diff_stats(frames, reference: np.ndarray) -> tuple[float, float, int]:
    """(mean, 99th percentile, max) of |frames - reference| over every pixel."""
    got = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames
    d = np.abs(got.astype(np.int16) - reference.astype(np.int16))
    return float(d.mean()), float(np.percentile(d, 99)), int(d.max())


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# ---------------------------------------------------------------- registry, CPU only


def test_nvdec_backends_are_registered_and_leave_frames_on_cuda():
    backends = dfaug.backends._BACKENDS
    assert backends["dali"].device == backends["pyav-cuda"].device == "cuda"
    # set by expected speed until bench_decode.py measures them on a GPU
    assert backends["dali"].priority > backends["pyav-cuda"].priority > backends["pyav"].priority


def test_without_a_gpu_auto_falls_back_to_pyav(no_gpu):
    assert not dfaug.backends._BACKENDS["dali"].is_available()
    assert not dfaug.backends._BACKENDS["pyav-cuda"].is_available()
    assert dfaug.available_backends()[0] == "pyav"
    clip = read_video(media_path("carphone_pristine.mp4"))
    assert isinstance(clip.frames, np.ndarray)
    assert np.array_equal(clip.frames, read_video(media_path("carphone_pristine.mp4"),
                                                  backend="pyav").frames)
    # asking for the GPU without one falls back to the CPU too
    assert isinstance(read_video(media_path("carphone_pristine.mp4"), device="cuda").frames,
                      np.ndarray)
    with pytest.raises(ValueError, match="device"):
        read_video(media_path("carphone_pristine.mp4"), device="gpu")


@pytest.mark.parametrize("backend", ["dali", "pyav-cuda"])
def test_unavailable_backend_error_names_what_is_missing(no_gpu, backend, monkeypatch):
    # the packages count as installed, so the missing GPU is what the error must name
    monkeypatch.setattr(nvdec, "_dali_package_missing", lambda: None)
    monkeypatch.setattr(nvdec, "_pyav_cuda_missing", lambda: None)
    with pytest.raises(ValueError, match=r"not available.*no CUDA GPU.*available: \['pyav'"):
        read_video(media_path("carphone_pristine.mp4"), backend=backend)


def test_missing_dali_package_is_named(monkeypatch):
    monkeypatch.setattr(nvdec, "_dali_package_missing",
                        lambda: "NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")
    assert not dfaug.backends._BACKENDS["dali"].is_available()
    with pytest.raises(ValueError, match="nvidia-dali-cuda120"):
        read_video(media_path("carphone_pristine.mp4"), backend="dali")


def test_availability_never_raises(monkeypatch):
    def broken():
        raise RuntimeError("driver mismatch")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    assert nvdec.dali_missing() and nvdec.pyav_cuda_missing()
    assert "pyav" in dfaug.available_backends()


def test_pyav_wheel_has_the_cuda_hwaccel():
    # PyAV's wheels carry an FFmpeg built with CUDA/NVDEC hwaccel: "pyav-cuda"
    # needs no other package, only a GPU and its driver
    assert nvdec._pyav_cuda_missing() is None
    assert "cuda" in av.codec.hwaccel.hwdevices_available()


# ---------------------------------------------------------------- container timestamps


@pytest.mark.parametrize("name", VIDEOS)
def test_container_pts_are_pyav_frame_pts(name):
    path = media_path(name)
    clip = read_video(path, backend="pyav")
    assert np.array_equal(nvdec.container_pts(path), clip.pts)
    with open(path, "rb") as f:
        assert np.array_equal(nvdec.container_pts(f.read()), clip.pts)


def test_container_pts_reject_what_read_video_rejects(tmp_path):
    data = _faststart(media_path("carphone_pristine.mp4"), tmp_path)
    assert len(nvdec.container_pts(data)) == 120
    with pytest.raises(VideoDecodeError, match="truncated"):
        nvdec.container_pts(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError):
        nvdec.container_pts(b"this is not a video" * 100)
    with pytest.raises(FileNotFoundError):
        nvdec.container_pts(tmp_path / "absent.mp4")


# ---------------------------------------------------------------- NV12 -> RGB (pyav-cuda)


def nv12_planes(frame) -> tuple[torch.Tensor, torch.Tensor]:
    """Y and interleaved UV of a software frame, through DLPack as on the GPU."""
    nv12 = frame.reformat(format="nv12")
    return nvdec._plane(nv12, 0), nvdec._plane(nv12, 1)


def check_conversion(frame):
    y, uv = nv12_planes(frame)
    full = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    rgb = nvdec.nv12_to_rgb(y, uv, colorspace=frame.colorspace, full_range=full)
    assert rgb.dtype == torch.uint8 and rgb.shape == (frame.height, frame.width, 3)
    mean, _, worst = diff_stats(rgb, frame.to_ndarray(format="rgb24"))
    assert worst <= PYAV_CUDA_MAX_DIFF and mean <= PYAV_CUDA_MEAN_DIFF, (mean, worst)


@pytest.mark.parametrize("name", VIDEOS)
def test_nv12_to_rgb_matches_pyav_swscale(name):
    with av.open(media_path(name)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % 20 == 0:
                check_conversion(frame)
            if i >= 60:
                break


def encode(frames: np.ndarray, *, colorspace: int, color_range: int, size) -> bytes:
    """H.264 of ``frames`` at ``size``, tagged with a colour matrix and range."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.colorspace = colorspace
        stream.codec_context.color_range = color_range
        for a in frames:
            frame = av.VideoFrame.from_ndarray(a, format="rgb24")
            out.mux(stream.encode(frame.reformat(width=size[0], height=size[1],
                                                 format="yuv420p")))
        out.mux(stream.encode())
    return buf.getvalue()


@pytest.mark.parametrize("colorspace, color_range, size", [
    (1, 1, (320, 240)),   # BT.709, limited
    (9, 1, (320, 240)),   # BT.2020
    (2, 2, (320, 240)),   # unspecified (BT.601), full range
    (1, 2, (322, 182)),   # BT.709 full range; chroma planes of odd size
])
def test_nv12_to_rgb_follows_the_frame_colour_tags(colorspace, color_range, size):
    carphone = read_video(media_path("carphone_pristine.mp4"), backend="pyav")
    data = encode(carphone.frames[:2], colorspace=colorspace, color_range=color_range,
                  size=size)
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        assert frame.colorspace == colorspace
        check_conversion(frame)


def test_nv12_to_rgb_takes_chroma_rounded_down_for_odd_frames():
    # PyAV exports a CUDA frame's UV plane as (H // 2, W // 2): the last odd row and
    # column reuse the last chroma sample
    y = torch.full((5, 7), 120, dtype=torch.uint8)
    uv = torch.full((2, 3, 2), 128, dtype=torch.uint8)
    uv[-1, -1] = torch.tensor([90, 170], dtype=torch.uint8)
    rgb = nvdec.nv12_to_rgb(y, uv)
    assert rgb.shape == (5, 7, 3)
    assert torch.equal(rgb[4, 6], rgb[2, 4]) and not torch.equal(rgb[4, 6], rgb[0, 0])


def test_nv12_to_rgb_writes_into_out():
    y = torch.full((4, 4), 120, dtype=torch.uint8)
    uv = torch.full((2, 2, 2), 128, dtype=torch.uint8)
    out = torch.zeros((2, 4, 4, 3), dtype=torch.uint8)
    nvdec.nv12_to_rgb(y, uv, out=out[1])
    assert torch.equal(out[1], nvdec.nv12_to_rgb(y, uv)) and not out[0].any()


# ---------------------------------------------------------------- DALI code on its CPU decoder


@pytest.fixture(scope="module")
def carphone_vp9() -> bytes:
    """Carphone's first 40 frames as VP9 in WebM: a codec DALI's CPU decoder takes."""
    clip = read_video(media_path("carphone_pristine.mp4"))
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx-vp9", rate=30)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        for a in clip.frames[:40]:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")))
        out.mux(stream.encode())
    return buf.getvalue()


@needs_dali
def test_dali_reader_on_its_cpu_decoder_matches_pyav(carphone_vp9):
    reference = read_video(carphone_vp9, backend="pyav")
    clip = nvdec.read_dali(carphone_vp9, device="cpu")
    assert isinstance(clip.frames, torch.Tensor) and clip.frames.shape == reference.frames.shape
    assert np.array_equal(clip.pts, reference.pts)
    mean, p99, _ = diff_stats(clip.frames, reference.frames)
    assert mean < DALI_MEAN_DIFF and p99 <= DALI_P99_DIFF, (mean, p99)
    # a batch (the benchmark's concurrent streams) gives each video's own frames
    a, b = nvdec.dali_decode([carphone_vp9, carphone_vp9], device="cpu")
    assert torch.equal(a, clip.frames) and torch.equal(b, clip.frames)


@needs_dali
def test_dali_bad_input_is_a_decode_error_and_the_next_read_works(carphone_vp9):
    with pytest.raises(VideoDecodeError):
        nvdec.read_dali(b"this is not a video" * 100, device="cpu")
    with pytest.raises(VideoDecodeError):  # DALI's own error, wrapped
        nvdec.dali_decode([b"this is not a video" * 100], device="cpu")
    assert len(nvdec.read_dali(carphone_vp9, device="cpu")) == 40


# ---------------------------------------------------------------- on the GPU machine


def gpu_backend(name: str) -> str:
    """Skip unless ``name`` can run here, with the reason it cannot."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    reason = dfaug.backends._BACKENDS[name].call("why_unavailable")
    if reason:
        pytest.skip(reason)
    return name


@pytest.fixture(scope="module")
def pyav_clips() -> dict:
    return {name: read_video(media_path(name), backend="pyav") for name in VIDEOS}


@pytest.mark.filterwarnings("error:pyav-cuda:UserWarning")  # its CPU fallback fails the test
@pytest.mark.parametrize("backend", ["dali", "pyav-cuda"])
@pytest.mark.parametrize("name", VIDEOS)
def test_nvdec_backend_decodes_like_pyav(backend, name, pyav_clips):
    gpu_backend(backend)
    reference = pyav_clips[name]
    clip = read_video(media_path(name), backend=backend)
    assert isinstance(clip.frames, torch.Tensor) and clip.frames.device.type == "cuda"
    assert clip.frames.dtype == torch.uint8
    assert tuple(clip.frames.shape) == reference.frames.shape
    assert clip.pts.dtype == np.float64 and np.array_equal(clip.pts, reference.pts)
    mean, p99, worst = diff_stats(clip.frames, reference.frames)
    if backend == "pyav-cuda":
        assert worst <= PYAV_CUDA_MAX_DIFF and mean <= PYAV_CUDA_MEAN_DIFF, (mean, worst)
    else:
        assert mean < DALI_MEAN_DIFF and p99 <= DALI_P99_DIFF, (mean, p99)


@pytest.mark.parametrize("backend", ["dali", "pyav-cuda"])
def test_nvdec_backend_reads_bytes_and_rejects_bad_input(backend, tmp_path):
    gpu_backend(backend)
    path = media_path("carphone_pristine.mp4")
    with open(path, "rb") as f:
        from_bytes = read_video(f.read(), backend=backend)
    assert torch.equal(from_bytes.frames, read_video(path, backend=backend).frames)
    with pytest.raises(VideoDecodeError):
        read_video(b"this is not a video" * 100, backend=backend)
    data = _faststart(path, tmp_path)
    with pytest.raises(VideoDecodeError, match="truncated|frames"):
        read_video(data[: len(data) // 2], backend=backend)


@needs_cuda
def test_auto_picks_a_gpu_backend_when_there_is_one():
    gpu = [b for b in dfaug.available_backends() if dfaug.backends._BACKENDS[b].device == "cuda"]
    if not gpu:
        pytest.skip("no NVDEC backend available here")
    clip = read_video(media_path("carphone_pristine.mp4"), device="cuda")
    assert isinstance(clip.frames, torch.Tensor) and clip.frames.is_cuda
    # callers that did not ask for the GPU keep getting numpy
    assert isinstance(read_video(media_path("carphone_pristine.mp4")).frames, np.ndarray)


def test_dali_batch_gives_each_video_its_frames():
    gpu_backend("dali")
    datas = [open(media_path(n), "rb").read() for n in VIDEOS]
    batch = nvdec.dali_decode(datas)
    for data, frames in zip(datas, batch):
        assert torch.equal(frames, nvdec.dali_decode([data])[0])
