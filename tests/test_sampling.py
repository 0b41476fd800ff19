import numpy as np
import pytest

from dfaug import read_video
from dfaug.sampling import nearest_indices, sequence_indices
from dfaug.times import FRAME_MODE_FRAMES, SEQUENCE_MODE_FRAMES, recipe_indices
from dfaug.testing import media_path


@pytest.mark.parametrize("fps", [15, 25, 30])
def test_sequence_frames_are_within_half_a_frame_of_the_grid(fps):
    pts = 2.0 + np.arange(60) / fps
    idx = sequence_indices(pts, start=2.3)
    grid = 2.3 + np.arange(7) / 15
    assert np.all(np.abs(pts[idx] - grid) <= 0.5 / fps + 1e-9)
    assert np.all(np.diff(idx) > 0)


def test_exact_frames_at_15_and_30_fps():
    assert sequence_indices(np.arange(50) / 30, 19 / 30).tolist() == list(SEQUENCE_MODE_FRAMES)
    assert sequence_indices(np.arange(50) / 15, 1.0).tolist() == list(range(15, 22))
    assert recipe_indices(np.arange(50) / 30, "frame").tolist() == list(FRAME_MODE_FRAMES)
    assert recipe_indices(np.arange(50) / 30, "sequence").tolist() == list(SEQUENCE_MODE_FRAMES)


def test_real_videos_at_29_97_and_25_fps(carphone):
    assert recipe_indices(carphone.pts[:50], "sequence").tolist() == list(SEQUENCE_MODE_FRAMES)
    bikes = read_video(media_path("bikes.mp4")).pts[:50]  # 25 fps
    idx = recipe_indices(bikes, "sequence")
    assert np.all(np.abs(bikes[idx] - (19 / 30 + np.arange(7) / 15)) <= 0.02 + 1e-9)
    frame = recipe_indices(bikes, "frame")
    assert np.all(np.abs(bikes[frame] - np.asarray(FRAME_MODE_FRAMES) / 30) <= 0.02 + 1e-9)


def test_variable_frame_rate():
    rng = np.random.default_rng(0)
    steps = rng.uniform(1 / 40, 1 / 20, size=80)
    pts = np.concatenate([[0.0], np.cumsum(steps)])
    idx = sequence_indices(pts, start=0.5)
    grid = 0.5 + np.arange(7) / 15
    # each chosen frame is the nearest one: no other frame is closer to its grid time
    for i, t in zip(idx, grid):
        assert np.abs(pts[i] - t) == np.min(np.abs(pts - t))
        assert np.abs(pts[i] - t) <= steps.max() / 2


def test_a_window_that_does_not_fit_raises_instead_of_repeating():
    pts = np.arange(20) / 30      # 0.63 s: 7 frames at 1/15 s need 0.4 s
    sequence_indices(pts, 0.2)    # fits
    with pytest.raises(ValueError, match="outside the clip"):
        sequence_indices(pts, 0.4)
    with pytest.raises(ValueError, match="outside the clip"):
        sequence_indices(pts, -0.1)
    with pytest.raises(ValueError, match="repeated frames"):
        sequence_indices(np.arange(20) / 10, 0.0)   # 10 fps cannot give 1/15 s steps
    with pytest.raises(ValueError, match="outside the clip"):
        recipe_indices(np.arange(30) / 30, "frame")  # 30 frames: frame 37 is missing


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        recipe_indices(np.arange(50) / 30, "video")
    with pytest.raises(ValueError, match="length"):
        sequence_indices(np.arange(50) / 30, 0.1, length=0)
    with pytest.raises(ValueError, match="increasing"):
        nearest_indices([0.0, 0.1, 0.05], [0.0])
