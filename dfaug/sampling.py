"""The frames of a clip nearest to given timestamps.

Choosing frames by time rather than by number is what makes one choice work for clips
of any frame rate, variable ones included, and for clips whose frame rate the
compression augmentation has reduced. Which times a sample uses is :mod:`dfaug.times`.
"""
from __future__ import annotations

import numpy as np

SEQUENCE_STEP = 1 / 15  # the recipe's sequence spacing, sequence_indices' default
TIE = 1e-6  # seconds: times this close to halfway between two frames count as ties


def nearest(pts: np.ndarray, times) -> np.ndarray:
    """Index of the nearest frame for each time; a tie goes to the later frame.

    The tie rule matters: on a 1/15 s grid shifted by 1/30 s (the recipe's sequence
    frames 19, 21, ... after a reduction to 15 fps) every time is halfway between two
    frames, and breaking ties by floating-point noise would pick one frame twice.
    """
    pts = np.asarray(pts, dtype=np.float64)
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if pts.size == 1:
        return np.zeros(times.shape, dtype=np.int64)
    right = np.clip(np.searchsorted(pts, times), 1, pts.size - 1)
    left = right - 1
    left_wins = np.abs(pts[left] - times) < np.abs(pts[right] - times) - TIE
    return np.where(left_wins, left, right).astype(np.int64)


def nearest_indices(pts, times, *, repeat: bool = False) -> np.ndarray:
    """For each time, the index of the frame whose timestamp is nearest to it.

    Raises ValueError when a time lies more than half a frame interval outside the
    clip, or, unless ``repeat``, when two times land on the same frame (the clip's
    frame rate is too low for them): a sample never silently repeats or invents frames.
    """
    pts = np.asarray(pts, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if pts.ndim != 1 or pts.size == 0:
        raise ValueError("pts must be a non-empty 1-D array of timestamps")
    if pts.size > 1 and not np.all(np.diff(pts) > 0):
        raise ValueError("pts must be strictly increasing")
    step = float(np.median(np.diff(pts))) if pts.size > 1 else 0.0
    half = step / 2 + 1e-9
    lo, hi = pts[0] - half, pts[-1] + half
    outside = (times < lo) | (times > hi)
    if np.any(outside):
        raise ValueError(
            f"times {np.round(times[outside], 4).tolist()} s fall outside the clip "
            f"[{pts[0]:.4f}, {pts[-1]:.4f}] s (+- half a frame)")
    idx = nearest(pts, times)
    if not repeat and np.unique(idx).size != idx.size:
        raise ValueError(f"times {np.round(times, 4).tolist()} s map to repeated frames "
                         f"{idx.tolist()}: the clip's frame rate is too low for this spacing")
    return idx


def sequence_indices(pts, start: float, length: int = 7, step: float = SEQUENCE_STEP) -> np.ndarray:
    """Indices of the frames nearest to ``start + k * step`` for k < ``length``.

    ``start`` is an absolute time in the clip's timestamps (seconds). With 15, 25 or
    30 fps or a variable frame rate, each chosen frame is within half a frame
    interval of its grid time. A window that does not fit raises ValueError.
    """
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if not step > 0:
        raise ValueError(f"step must be positive, got {step!r}")
    return nearest_indices(pts, start + np.arange(length) * step)
