"""Which timestamps a sample uses: the loader's ``times=`` seam.

A frame choice is any callable ``times(pts, rng) -> seconds``: from a clip's
timestamps (float64, seconds, increasing) and the sample's own generator to the
absolute times whose nearest frames the sample takes, in the order it takes them.
The loader calls it once per pair, so both members get the same frames, and draws
``rng`` from (seed, epoch, key) alone, so a random choice is the same whatever the
ranks, workers and order. Working in seconds rather than frame numbers is what lets
one choice serve 15, 25 and 30 fps clips, variable frame rates, and clips whose frame
rate the re-encoding has reduced.

Two times may land on the same frame when the clip's frame rate is below the asked
spacing. A choice says whether that is allowed with its ``repeat`` attribute: True
repeats the nearest frame, as a frame-rate conversion does; False (also what a plain
function without the attribute gets) skips such a sample with a counted reason.

Presets: :func:`recipe_frames` and :func:`recipe_sequence` (the recipe's, which never
repeat), :func:`uniform` and :func:`window`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sampling import SEQUENCE_STEP, nearest_indices

# The recipe names frames of a 50-frame clip at 30 fps: frames 9, 13, ..., 37 for the
# frame models and the 7 frames 19, 21, ..., 31 (1/15 s apart) for the sequence model.
RECIPE_FPS = 30.0
FRAME_MODE_FRAMES = tuple(range(9, 38, 4))     # 8 frames of a 50-frame clip
SEQUENCE_MODE_FRAMES = tuple(range(19, 32, 2))  # 7 frames, 1/15 s apart


def frame_mode_times() -> np.ndarray:
    """Offsets in seconds, from the clip's first frame, of the frame models' frames."""
    return np.asarray(FRAME_MODE_FRAMES, dtype=np.float64) / RECIPE_FPS


def sequence_mode_start() -> float:
    """Offset in seconds, from the clip's first frame, of the sequence's first frame."""
    return SEQUENCE_MODE_FRAMES[0] / RECIPE_FPS


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RecipeFrames:
    """The frame models' 8 frames: clip frames 9, 13, ..., 37 at 30 fps, as times from
    the clip's first frame."""

    repeat: bool = False

    def __call__(self, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return pts[0] + frame_mode_times()


@dataclass(frozen=True)
class RecipeSequence:
    """The sequence model's 7 frames 1/15 s apart, from clip frame 19 at 30 fps."""

    repeat: bool = False

    def __call__(self, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return pts[0] + sequence_mode_start() + np.arange(len(SEQUENCE_MODE_FRAMES)) * SEQUENCE_STEP


@dataclass(frozen=True)
class Uniform:
    """``n`` times spread evenly from the clip's first frame to its last."""

    n: int
    repeat: bool = True

    def __post_init__(self):
        _positive_int("n", self.n)

    def __call__(self, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.linspace(pts[0], pts[-1], self.n)


@dataclass(frozen=True)
class Window:
    """``n`` times ``step`` seconds apart, from a start drawn uniformly among those
    that keep the window inside the clip. A window longer than the clip is a
    ValueError, which the loader counts as a skipped sample."""

    n: int
    step: float
    repeat: bool = True

    def __post_init__(self):
        _positive_int("n", self.n)
        if not (isinstance(self.step, (int, float)) and math.isfinite(self.step) and self.step > 0):
            raise ValueError(f"step must be a positive number of seconds, got {self.step!r}")

    def __call__(self, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        length = (self.n - 1) * self.step
        slack = float(pts[-1] - pts[0]) - length
        # half a frame of tolerance at the end, as nearest-frame picking allows
        frame = float(np.median(np.diff(pts))) if len(pts) > 1 else 0.0
        if slack < -frame / 2 - 1e-9:
            raise ValueError(f"a window of {self.n} frames {self.step:.4g} s apart ({length:.3f} s) "
                             f"is longer than the clip ({pts[-1] - pts[0]:.3f} s)")
        start = pts[0] + rng.uniform(0.0, max(slack, 0.0))
        return start + np.arange(self.n) * self.step


def recipe_frames() -> RecipeFrames:
    """The frame models' choice (the default of ``mode="frame"``)."""
    return RecipeFrames()


def recipe_sequence() -> RecipeSequence:
    """The sequence model's choice (the default of ``mode="sequence"``)."""
    return RecipeSequence()


def uniform(n: int, *, repeat: bool = True) -> Uniform:
    """``n`` frames spread over the whole clip, first and last included."""
    return Uniform(n, repeat)


def window(n: int, step: float, *, repeat: bool = True) -> Window:
    """``n`` frames ``step`` seconds apart at a random start (shared by the pair)."""
    return Window(n, step, repeat)


def for_mode(mode: str):
    """The recipe's choice for a loader ``mode``."""
    if mode == "frame":
        return RecipeFrames()
    if mode == "sequence":
        return RecipeSequence()
    raise ValueError(f"mode must be 'frame' or 'sequence', got {mode!r}")


def recipe_indices(pts, mode: str) -> np.ndarray:
    """The recipe's frames of a clip for ``mode`` ``"frame"`` or ``"sequence"``, by time."""
    pts = np.asarray(pts, dtype=np.float64)
    return nearest_indices(pts, for_mode(mode)(pts, None))


def checked_times(times, pts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Call a frame choice and check what it returns: a non-empty 1-D array of finite
    seconds (a ValueError naming the choice otherwise)."""
    out = np.asarray(times(pts, rng), dtype=np.float64)
    if out.ndim != 1 or out.size == 0 or not np.all(np.isfinite(out)):
        raise ValueError(f"times={times!r} must return a non-empty 1-D array of finite seconds, "
                         f"got shape {out.shape}")
    return out


def allows_repeats(times) -> bool:
    return bool(getattr(times, "repeat", False))
