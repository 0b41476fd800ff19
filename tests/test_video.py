import av
import numpy as np
import pytest

import dfaug
from dfaug import VideoDecodeError, read_video
from dfaug.testing import media_path


def test_reads_real_video_from_path(carphone):
    assert carphone.frames.shape == (120, 144, 176, 3)
    assert carphone.frames.dtype == np.uint8
    # 29.97 fps: frame i at i * 1001 / 30000 s
    assert np.allclose(carphone.pts, np.arange(120) * 1001 / 30000, atol=1e-6)
    # a real picture, not a blank: a face on a background has texture
    assert carphone.frames[0].std() > 20


def test_bytes_and_path_give_the_same_clip(carphone):
    with open(media_path("carphone_pristine.mp4"), "rb") as f:
        from_bytes = read_video(f.read())
    assert np.array_equal(from_bytes.frames, carphone.frames)
    assert np.array_equal(from_bytes.pts, carphone.pts)
    assert np.array_equal(read_video(memoryview(open(media_path("carphone_pristine.mp4"),
                                                         "rb").read())).frames[:3],
                          carphone.frames[:3])


def test_reads_25fps_video():
    clip = read_video(media_path("bikes.mp4"), backend="pyav")
    assert clip.frames.shape == (250, 272, 640, 3)
    assert np.allclose(np.diff(clip.pts), 1 / 25)


def test_pristine_and_distorted_carphone_are_an_aligned_pair(carphone, carphone_distorted):
    assert carphone.frames.shape == carphone_distorted.frames.shape
    assert np.array_equal(carphone.pts, carphone_distorted.pts)
    # the same content (blurred): each frame is nearer its partner than a frame 0.2 s away
    a, b = carphone.frames[10:110].astype(np.int16), carphone_distorted.frames.astype(np.int16)
    same = np.abs(a - b[10:110]).mean(axis=(1, 2, 3))
    shifted = np.abs(a - b[16:116]).mean(axis=(1, 2, 3))
    assert (same < shifted).mean() > 0.9


def _faststart(path: str, tmp_path) -> bytes:
    """The same video remuxed with its index first, so a truncation keeps it openable."""
    out = tmp_path / "faststart.mp4"
    with av.open(path) as src, av.open(str(out), "w", format="mp4",
                                       options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    return out.read_bytes()


def test_truncated_video_is_an_error_not_a_short_clip(tmp_path):
    data = _faststart(media_path("carphone_pristine.mp4"), tmp_path)
    assert len(read_video(data)) == 120  # the remux itself is complete
    with pytest.raises(VideoDecodeError, match="truncated"):
        read_video(data[: len(data) // 2])
    # index at the end (as in the shipped file): cut anywhere, it cannot be opened
    whole = open(media_path("carphone_pristine.mp4"), "rb").read()
    with pytest.raises(VideoDecodeError, match="not a readable video"):
        read_video(whole[: len(whole) * 9 // 10])


def test_ffmpeg_failing_after_some_frames_is_reported_as_a_truncation():
    # NVDEC may raise on a cut last frame where FFmpeg's software decoder conceals it:
    # both backends then say "truncated", with the counts, like check_decoded
    error = av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
    cut = dfaug.backends.decode_error("v.mp4", 12, 50, error)
    assert isinstance(cut, VideoDecodeError)
    assert "truncated video, 12 of 50 declared frames" in str(cut) and "Invalid data" in str(cut)
    for n, declared in ((0, 50), (50, 50), (12, 0)):  # nothing decoded, all, no count
        assert "not a readable video" in str(dfaug.backends.decode_error("v.mp4", n, declared, error))


@pytest.mark.parametrize("data", [b"", b"this is not a video" * 100, bytes(range(256)) * 64])
def test_non_video_bytes_raise_a_clear_error(data):
    with pytest.raises(VideoDecodeError):
        read_video(data)
    assert issubclass(VideoDecodeError, ValueError)


def test_non_video_file_and_missing_path(tmp_path):
    (tmp_path / "notes.mp4").write_text("hello")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        read_video(tmp_path / "notes.mp4")
    with pytest.raises(VideoDecodeError, match="empty"):
        read_video(str(tmp_path / "empty.mp4"))
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "absent.mp4")


def test_backend_registry(carphone):
    assert "pyav" in dfaug.available_backends()
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        read_video(media_path("carphone_pristine.mp4"), backend="nope")

    calls = []

    def fast_read(src, **options):
        calls.append(src)
        return carphone.take([0])

    dfaug.register_backend(dfaug.Backend("test-fast", fast_read, lambda: True, 100, "cpu"))
    dfaug.register_backend(dfaug.Backend("test-absent", fast_read, lambda: False, 200, "cuda"))
    try:
        assert dfaug.available_backends()[0] == "test-fast"
        assert "test-absent" not in dfaug.available_backends()
        assert len(read_video("any.mp4")) == 1 and calls == ["any.mp4"]
        with pytest.raises(ValueError, match="not available"):
            read_video("any.mp4", backend="test-absent")
    finally:
        dfaug.backends._BACKENDS.pop("test-fast")
        dfaug.backends._BACKENDS.pop("test-absent")
    assert dfaug.available_backends()[0] == "pyav"


@pytest.mark.parametrize("name", ["carphone_pristine.mp4", "bikes.mp4"])
def test_lazy_frames_give_the_pixels_of_the_eager_read(name):
    eager = read_video(media_path(name))
    lazy = read_video(media_path(name), backend="pyav", lazy=True)
    assert isinstance(lazy.frames, dfaug.video.LazyFrames)
    assert lazy.frames.shape == eager.frames.shape and len(lazy) == len(eager)
    np.testing.assert_array_equal(lazy.pts, eager.pts)
    f, lf = eager.frames, lazy.frames
    every6 = np.arange(0, len(f), 6)
    np.testing.assert_array_equal(lf[every6], f[every6])                       # detection frames
    np.testing.assert_array_equal(lf[np.arange(20, 70), 13:101, 7:90], f[20:70, 13:101, 7:90])  # crops
    np.testing.assert_array_equal(lf[3], f[3])
    np.testing.assert_array_equal(lf[-1, 5:9, :, 1], f[-1, 5:9, :, 1])
    np.testing.assert_array_equal(lf[1:30:4], f[1:30:4])
    np.testing.assert_array_equal(lf[np.zeros(len(f), bool)], f[:0])
    np.testing.assert_array_equal(lazy.take([2, 40]).frames, f[[2, 40]])
    np.testing.assert_array_equal(np.asarray(lf), f)


def test_lazy_frames_refuse_indices_they_cannot_honour(carphone):
    lf = read_video(media_path("carphone_pristine.mp4"), backend="pyav", lazy=True).frames
    with pytest.raises(IndexError):
        lf[len(lf)]
    with pytest.raises(IndexError, match="1-D"):
        lf[np.zeros((2, 2), int)]
    with pytest.raises(IndexError, match="frames first"):
        lf[..., 0]


def test_frame_step_falls_back_to_30_fps_for_an_unknown_rate():
    from fractions import Fraction
    from types import SimpleNamespace
    from dfaug.backends import frame_step
    # PyAV <= 18 gives None for an unknown rate, 19 a rational 0/1
    assert frame_step(SimpleNamespace(average_rate=None)) == frame_step(
        SimpleNamespace(average_rate=Fraction(0, 1))) == 1 / 30
    assert frame_step(SimpleNamespace(average_rate=Fraction(25, 1))) == 1 / 25
