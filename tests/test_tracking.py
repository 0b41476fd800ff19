import numpy as np
import pytest

from dfdf_train.tracking import (Track, TrackerParams, align_tracks, interpolate_boxes, iou,
                                 scale_box, track_iou)


def det(*boxes):
    """Detections of one frame: rows [x1, y1, x2, y2, score]."""
    return np.array(boxes, dtype=np.float64).reshape(-1, 5)


def test_iou():
    a = np.array([0, 0, 10, 10])
    assert iou(a, a) == pytest.approx(1)
    assert iou(a, [20, 20, 30, 30]) == 0
    assert iou(a, [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou(a, [0, 0, 0, 0]) == 0  # an empty box
    m = iou(np.array([a, a + 5])[:, None], np.array([a, a + 5, a + 100])[None])
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m.diagonal(), 1)


def test_tracker_links_faces_and_keeps_frame_numbers():
    frames = [0, 6, 12, 18, 24]
    # two faces moving right; a false positive far away scores 0.5 (below sigma_h)
    dets = [det([10 + 2 * i, 10, 50 + 2 * i, 60, 0.99], [200 - i, 10, 240 - i, 60, 0.95],
                [400, 400, 410, 410, 0.5]) for i in range(5)]
    tracks = track_iou(dets, frames)
    assert len(tracks) == 2  # the 0.5-scored track never reaches sigma_h 0.9
    assert [t.frames.tolist() for t in tracks] == [frames, frames]
    assert tracks[0].boxes[0, 0] == 10 and tracks[1].boxes[0, 0] == 200
    np.testing.assert_allclose(tracks[0].box_at(12), [14, 10, 54, 60])
    with pytest.raises(KeyError):
        tracks[0].box_at(13)


def test_tracker_splits_on_low_iou_and_gaps():
    jump = [det([10, 10, 50, 60, 0.99]), det([12, 10, 52, 60, 0.99]),
            det([80, 10, 120, 60, 0.99]), det([82, 10, 122, 60, 0.99])]  # IoU 0 at the jump
    tracks = track_iou(jump, [0, 6, 12, 18])
    assert [t.frames.tolist() for t in tracks] == [[0, 6], [12, 18]]
    gap = [det([10, 10, 50, 60, 0.99]), det(), det([10, 10, 50, 60, 0.99])]
    assert [t.frames.tolist() for t in track_iou(gap, [0, 6, 12])] == [[0], [12]]
    # IoU just under sigma_iou 0.3 splits, just over links
    a = [0, 0, 10, 10]
    for shift, n in ((6, 2), (5, 1)):  # IoU 40/160 = 0.25: split; 50/150 = 0.33: link
        d = [det([*a, 0.99]), det([a[0] + shift, 0, a[2] + shift, 10, 0.99])]
        assert len(track_iou(d)) == n


def test_tracker_thresholds():
    d = [det([0, 0, 10, 10, s]) for s in (0.5, 0.6, 0.95, 0.6)]
    assert len(track_iou(d)[0]) == 4
    # sigma_l: detections below it are not there at all
    assert [t.frames.tolist() for t in track_iou(d, params=TrackerParams(sigma_l=0.55))] == [[1, 2, 3]]
    # sigma_h: no detection reaches it -> no track
    assert track_iou(d, params=TrackerParams(sigma_h=0.99)) == []
    # t_min: short tracks go (predict uses 7)
    short = [det([0, 0, 10, 10, 0.99])] * 3 + [det()] + [det([0, 0, 10, 10, 0.99])] * 7
    assert [len(t) for t in track_iou(short)] == [3, 7]
    assert [len(t) for t in track_iou(short, params=TrackerParams(t_min=7))] == [7]
    with pytest.raises(ValueError, match="t_min"):
        TrackerParams(t_min=0)


def _track(frames, x0=10.0, dx=1.0, id=0):
    frames = np.asarray(frames)
    boxes = np.stack([x0 + dx * frames, np.full(len(frames), 10.0),
                      x0 + 40 + dx * frames, np.full(len(frames), 60.0)], axis=1)
    return Track(frames, boxes, np.full(len(frames), 0.99), id=id)


def test_align_tracks_cuts_to_shared_frames():
    real = _track(np.arange(0, 60, 6))                   # detections 0..54
    fake = _track(np.arange(12, 90, 6), x0=11.0)         # 12..84, nearly the same boxes
    (pair,) = align_tracks([real], [fake])
    assert pair.frames.tolist() == list(range(12, 60, 6))
    assert pair.real.frames.tolist() == pair.fake.frames.tolist()
    assert np.all(pair.ious > 0.9)


def test_align_tracks_rules():
    real = _track(np.arange(0, 60, 6))
    # one shared frame below IoU 0.5 rejects the pair
    bad = _track(np.arange(0, 60, 6))
    bad.boxes[4] += [30, 0, 30, 0]
    assert align_tracks([real], [bad]) == []
    # fewer than 5 shared detections
    assert align_tracks([real], [_track([0, 6, 12, 18])]) == []
    assert len(align_tracks([real], [_track([0, 6, 12, 18])], min_detections=4)) == 1
    # two faces: each fake track goes to its own real track, one to one
    r2 = _track(np.arange(0, 60, 6), x0=200, id=1)
    f1 = _track(np.arange(0, 60, 6), x0=201, id=0)
    f2 = _track(np.arange(0, 60, 6), x0=12, id=1)
    pairs = align_tracks([real, r2], [f1, f2])
    assert sorted((p.real.id, p.fake.id) for p in pairs) == [(0, 1), (1, 0)]


def test_interpolate_boxes():
    t = Track([0, 6, 12], [[0, 0, 10, 10], [6, 0, 16, 10], [6, 12, 16, 22]], [1, 1, 1])
    frames, boxes = interpolate_boxes(t)
    assert frames.tolist() == list(range(13))
    np.testing.assert_allclose(boxes[3], [3, 0, 13, 10])
    np.testing.assert_allclose(boxes[9], [6, 6, 16, 16])
    np.testing.assert_allclose(boxes[[0, 6, 12]], t.boxes)
    _, clamped = interpolate_boxes(t, [-5, 20])  # outside the span: the end boxes
    np.testing.assert_allclose(clamped, t.boxes[[0, 2]])


def test_scale_box():
    assert scale_box([40, 40, 60, 80], 1.5, 200, 200) == (35, 30, 65, 90)
    assert scale_box([0, 0, 20, 20], 1.5, 100, 100) == (0, 0, 25, 25)      # clamped at 0
    assert scale_box([90, 90, 100, 100], 1.5, 98, 99) == (88, 88, 98, 99)  # and at the far edge
