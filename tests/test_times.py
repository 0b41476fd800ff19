"""dfaug.times: the frame choices, on real timestamps (25 and 29.97 fps, and a variable
frame rate made by dropping frames of real video irregularly)."""
import numpy as np
import pytest

from dfaug import read_video, times
from dfaug.sampling import nearest_indices
from dfaug.times import FRAME_MODE_FRAMES, SEQUENCE_MODE_FRAMES
from dfaug.testing import media_path


def vfr_pts(carphone) -> np.ndarray:
    """carphone's own timestamps with frames dropped at random: intervals of 1 to 3
    frames (33 to 100 ms)."""
    keep = np.cumsum(np.random.default_rng(3).integers(1, 4, size=60))
    return carphone.pts[keep[keep < len(carphone)]]


@pytest.fixture(scope="module")
def bikes_pts():
    return read_video(media_path("bikes.mp4")).pts[:50]  # 25 fps, 2 s


def test_the_recipe_presets_are_the_recipe_frames():
    pts = np.arange(50) / 30
    assert nearest_indices(pts, times.recipe_frames()(pts, None)).tolist() == list(FRAME_MODE_FRAMES)
    assert nearest_indices(pts, times.recipe_sequence()(pts, None)).tolist() == list(SEQUENCE_MODE_FRAMES)
    assert not times.recipe_frames().repeat and not times.recipe_sequence().repeat


def test_uniform_spreads_n_frames_from_the_first_to_the_last(bikes_pts, carphone):
    for pts in (bikes_pts, vfr_pts(carphone)):
        t = times.uniform(16)(pts, np.random.default_rng(0))
        assert len(t) == 16 and t[0] == pts[0] and t[-1] == pts[-1]
        np.testing.assert_allclose(np.diff(t), (pts[-1] - pts[0]) / 15)
        idx = nearest_indices(pts, t, repeat=True)
        assert idx[0] == 0 and idx[-1] == len(pts) - 1 and np.all(np.diff(idx) > 0)


@pytest.mark.parametrize("kind", ["25fps", "vfr"])
def test_window_of_16_frames_a_30th_apart(bikes_pts, carphone, kind):
    pts = bikes_pts if kind == "25fps" else vfr_pts(carphone)
    choice = times.window(16, 1 / 30)
    starts = []
    for seed in range(20):
        t = choice(pts, np.random.default_rng(seed))
        np.testing.assert_allclose(np.diff(t), 1 / 30)
        assert pts[0] <= t[0] and t[-1] <= pts[-1] + 1e-9
        idx = nearest_indices(pts, t, repeat=True)      # 16 frames, some twice at 25 fps
        assert len(idx) == 16 and np.all(np.diff(idx) >= 0)
        assert np.all(np.abs(pts[idx] - t) <= np.max(np.diff(pts)) / 2 + 1e-9)
        starts.append(t[0])
    assert len(set(np.round(starts, 6))) == 20          # the start is drawn
    # the same generator state gives the same window: a pair's members share it
    assert np.array_equal(choice(pts, np.random.default_rng(5)), choice(pts, np.random.default_rng(5)))
    if kind == "25fps":  # a 30 fps spacing on 25 fps video repeats the nearest frame
        with pytest.raises(ValueError, match="repeated frames"):
            nearest_indices(pts, choice(pts, np.random.default_rng(0)))


def test_a_window_longer_than_the_clip_is_a_value_error(bikes_pts):
    with pytest.raises(ValueError, match="longer than the clip"):
        times.window(16, 1 / 5)(bikes_pts, np.random.default_rng(0))   # 3 s of a 2 s clip
    exact = times.window(50, 1 / 25)(bikes_pts, np.random.default_rng(0))  # the whole clip
    assert nearest_indices(bikes_pts, exact).tolist() == list(range(50))


@pytest.mark.parametrize("make, match", [
    (lambda: times.uniform(0), "n must be a positive integer"),
    (lambda: times.uniform(2.5), "n must be a positive integer"),
    (lambda: times.window(0, 0.1), "n must be a positive integer"),
    (lambda: times.window(8, 0), "step must be a positive number"),
    (lambda: times.window(8, float("nan")), "step must be a positive number"),
    (lambda: times.for_mode("video"), "mode must be"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_checked_times_names_a_bad_choice():
    pts = np.arange(50) / 30
    for bad in (lambda p, r: [], lambda p, r: [[0.1, 0.2]], lambda p, r: [0.1, np.nan]):
        with pytest.raises(ValueError, match="non-empty 1-D array of finite seconds"):
            times.checked_times(bad, pts, None)
    assert not times.allows_repeats(lambda p, r: p[:3])       # a plain function is strict
