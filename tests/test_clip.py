import numpy as np
import pytest

from dfaug import Clip


def test_clip_holds_frames_and_times(clip50):
    assert len(clip50) == 50
    assert (clip50.height, clip50.width) == (144, 176)
    assert clip50.pts.dtype == np.float64
    assert clip50.frame_duration() == pytest.approx(1 / 30)
    sub = clip50.take([3, 7])
    assert np.array_equal(sub.frames, clip50.frames[[3, 7]])
    assert np.array_equal(sub.pts, clip50.pts[[3, 7]])


def test_clip_converts_timestamps_to_float64():
    clip = Clip(np.zeros((2, 4, 4, 3), np.uint8), [0, 1])
    assert clip.pts.dtype == np.float64


@pytest.mark.parametrize("frames, pts, message", [
    (np.zeros((2, 4, 4), np.uint8), [0, 1], r"\(T, H, W, 3\)"),
    (np.zeros((2, 4, 4, 3), np.float32), [0, 1], "uint8"),
    (np.zeros((2, 0, 4, 3), np.uint8), [0, 1], "zero-sized"),
    (np.zeros((2, 4, 4, 3), np.uint8), [0], "one timestamp per frame"),
    (np.zeros((3, 4, 4, 3), np.uint8), [0, 2, 1], "strictly increasing"),
])
def test_clip_rejects_bad_arrays(frames, pts, message):
    with pytest.raises(ValueError, match=message):
        Clip(frames, pts)
