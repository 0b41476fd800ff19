"""The unit every dfaug stage passes around: a clip of RGB frames with timestamps."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Clip:
    """RGB frames and their presentation times.

    ``frames``: uint8 array (T, H, W, 3), RGB. NVDEC backends may hold a torch
    tensor of the same layout on the GPU instead.
    ``pts``: float64 array (T,), seconds, strictly increasing.
    """

    frames: np.ndarray
    pts: np.ndarray

    def __post_init__(self):
        frames, pts = self.frames, self.pts
        if not isinstance(pts, np.ndarray) or pts.dtype != np.float64:
            pts = np.asarray(pts, dtype=np.float64)
            object.__setattr__(self, "pts", pts)
        shape = tuple(frames.shape)
        if len(shape) != 4 or shape[3] != 3:
            raise ValueError(f"Clip.frames must have shape (T, H, W, 3), got {shape}")
        if str(frames.dtype) not in ("uint8", "torch.uint8"):
            raise ValueError(f"Clip.frames must be uint8, got {frames.dtype}")
        if shape[1] == 0 or shape[2] == 0:
            raise ValueError(f"Clip.frames has a zero-sized frame: {shape}")
        if pts.shape != (shape[0],):
            raise ValueError(
                f"Clip.pts must have one timestamp per frame: {pts.shape} for {shape[0]} frames")
        if pts.size > 1 and not np.all(np.diff(pts) > 0):
            raise ValueError("Clip.pts must be strictly increasing")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    def frame_duration(self, default: float = 1 / 30) -> float:
        """Typical spacing of the frames in seconds (median step); ``default`` for one frame."""
        if len(self) < 2:
            return default
        return float(np.median(np.diff(self.pts)))

    def take(self, indices) -> "Clip":
        """The clip of the frames at ``indices`` (in order)."""
        indices = np.asarray(indices, dtype=np.int64)
        return Clip(self.frames[indices], self.pts[indices])
