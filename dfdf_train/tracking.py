"""Face tracks: a greedy IoU tracker, real/fake track alignment, box interpolation.

Detections come on a subset of the frames (every 6th in preprocess, every 3rd
15-fps frame in predict), so a :class:`Track` keeps the frame number of each of
its boxes. The tracker is the greedy IoU tracker the recipe used (Bochinski et
al. 2017): a track takes, on each detection frame, the remaining detection that
overlaps its last box most, if that IoU reaches ``sigma_iou``; a track that finds
none ends, and is kept when it is at least ``t_min`` detections long and its best
score reaches ``sigma_h``. Detections scoring below ``sigma_l`` are ignored.

The loops run over detection frames and the handful of faces in each; a profile
of preprocess (docs/preprocess.md) puts tracking under 0.1% of the time, against
the detector's 60-90%, so this is plain numpy, not numba.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class TrackerParams:
    """The recipe's thresholds. ``t_min``: fewest detections a kept track has
    (preprocess relies on the alignment's ``min_detections`` instead; predict uses 7)."""

    sigma_l: float = 0.3
    sigma_h: float = 0.9
    sigma_iou: float = 0.3
    t_min: int = 1

    def __post_init__(self):
        if not 0 <= self.sigma_l <= 1 or not 0 <= self.sigma_h <= 1 or not 0 <= self.sigma_iou <= 1:
            raise ValueError(f"sigma_l, sigma_h and sigma_iou must be in [0, 1], got {self}")
        if self.t_min < 1:
            raise ValueError(f"t_min must be >= 1, got {self.t_min}")


@dataclass
class Track:
    """One face over time: ``frames`` (n,) increasing frame numbers, ``boxes`` (n, 4)
    [x1, y1, x2, y2] in frame pixels, ``scores`` (n,)."""

    frames: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    id: int = 0

    def __post_init__(self):
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if not (len(self.frames) == len(self.boxes) == len(self.scores)):
            raise ValueError("Track: frames, boxes and scores must have the same length")
        if len(self.frames) > 1 and not np.all(np.diff(self.frames) > 0):
            raise ValueError("Track: frame numbers must increase")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        """Last detection frame (inclusive)."""
        return int(self.frames[-1])

    def box_at(self, frame: int) -> np.ndarray:
        """The box detected on ``frame`` (which must be one of the track's frames)."""
        i = np.searchsorted(self.frames, frame)
        if i >= len(self.frames) or self.frames[i] != frame:
            raise KeyError(f"frame {frame} is not a detection frame of track {self.id}")
        return self.boxes[i]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes [x1, y1, x2, y2]; broadcasts over leading axes
    (``iou(a[:, None], b[None])`` is the (n, m) matrix). Empty boxes give 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def track_iou(detections: Sequence[np.ndarray], frame_numbers: Optional[Sequence[int]] = None,
              params: TrackerParams = TrackerParams()) -> list[Track]:
    """Greedy IoU tracking over detection frames.

    ``detections``: per detection frame an array (k, 5) [x1, y1, x2, y2, score].
    ``frame_numbers``: the frame number of each (default 0, 1, 2, ...): tracks keep
    them. Tracks come out ordered by (start, first box), ids 0, 1, ...
    """
    if frame_numbers is None:
        frame_numbers = range(len(detections))
    frame_numbers = [int(f) for f in frame_numbers]
    if len(frame_numbers) != len(detections):
        raise ValueError(f"{len(detections)} detection sets for {len(frame_numbers)} frame numbers")
    active: list[list] = []  # [frames, boxes, scores]
    finished: list[list] = []

    def done(t):
        if len(t[0]) >= params.t_min and max(t[2]) >= params.sigma_h:
            finished.append(t)

    for frame, dets in zip(frame_numbers, detections):
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
        dets = dets[dets[:, 4] >= params.sigma_l]
        free = np.ones(len(dets), dtype=bool)
        still = []
        for t in active:
            if free.any():
                overlaps = np.where(free, iou(t[1][-1], dets[:, :4]), -1.0)
                j = int(np.argmax(overlaps))
                if overlaps[j] >= params.sigma_iou:
                    t[0].append(frame)
                    t[1].append(dets[j, :4])
                    t[2].append(dets[j, 4])
                    free[j] = False
                    still.append(t)
                    continue
            done(t)
        active = still + [[[frame], [d[:4]], [d[4]]] for d in dets[free]]
    for t in active:
        done(t)
    finished.sort(key=lambda t: (t[0][0], tuple(t[1][0])))
    return [Track(f, b, s, id=i) for i, (f, b, s) in enumerate(finished)]


@dataclass
class AlignedPair:
    """A real and a fake track cut to the detection frames both have."""

    real: Track
    fake: Track
    ious: np.ndarray = field(repr=False)

    @property
    def frames(self) -> np.ndarray:
        return self.real.frames

    @property
    def mean_iou(self) -> float:
        return float(self.ious.mean())


def _cut(track: Track, frames: np.ndarray) -> Track:
    keep = np.isin(track.frames, frames)
    return Track(track.frames[keep], track.boxes[keep], track.scores[keep], id=track.id)


def align_tracks(real_tracks: Sequence[Track], fake_tracks: Sequence[Track], *,
                 min_iou: float = 0.5, min_detections: int = 5) -> list[AlignedPair]:
    """Pairs of a real video's and its fake's tracks of the same face.

    A pair qualifies when the boxes' IoU is > ``min_iou`` on EVERY detection frame
    both tracks have, and they share at least ``min_detections`` such frames (so both
    tracks have that many). Each track is used at most once, best mean IoU first.
    Pairs are cut to the shared frames and come out ordered by (start, real id).
    """
    candidates = []
    for r in real_tracks:
        for f in fake_tracks:
            shared = np.intersect1d(r.frames, f.frames)
            if len(shared) < min_detections:
                continue
            rc, fc = _cut(r, shared), _cut(f, shared)
            ious = iou(rc.boxes, fc.boxes)
            if np.all(ious > min_iou):
                candidates.append(AlignedPair(rc, fc, ious))
    candidates.sort(key=lambda p: (-p.mean_iou, p.real.id, p.fake.id))
    used_r, used_f, pairs = set(), set(), []
    for p in candidates:
        if p.real.id in used_r or p.fake.id in used_f:
            continue
        used_r.add(p.real.id)
        used_f.add(p.fake.id)
        pairs.append(p)
    pairs.sort(key=lambda p: (p.real.start, p.real.id))
    return pairs


def interpolate_boxes(track: Track, frames: Optional[Sequence[int]] = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes on every frame from the track's first to its last detection (or on
    ``frames``, clamped to that span), linearly interpolated between detections.
    Returns (frame numbers (m,), boxes (m, 4))."""
    if frames is None:
        frames = np.arange(track.start, track.end + 1)
    frames = np.asarray(frames, dtype=np.int64)
    boxes = np.stack([np.interp(frames, track.frames, track.boxes[:, k]) for k in range(4)], axis=1)
    return frames, boxes


def scale_box(box: Sequence[float], scale: float, width: int, height: int
              ) -> tuple[int, int, int, int]:
    """``box`` scaled by ``scale`` in width and height about its centre, clamped to the
    frame, as integer pixel bounds [x1, y1, x2, y2) (at least one pixel each way)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    hw, hh = (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    l = min(max(int(round(cx - hw)), 0), width - 1)
    t = min(max(int(round(cy - hh)), 0), height - 1)
    r = max(min(int(round(cx + hw)), width), l + 1)
    b = max(min(int(round(cy + hh)), height), t + 1)
    return l, t, r, b
