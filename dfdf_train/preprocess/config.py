"""What a preprocessing run is set up with: the recipe's geometry and the detector."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..tracking import TrackerParams

SINGLE_CLIPS = ("auto", "keep", "skip")


@dataclass(frozen=True)
class PreprocessConfig:
    """The recipe's geometry and the run's choices.

    ``every``: detect faces on every n-th frame. ``clip_length``: frames per clip.
    ``clips_per_pair``: clips drawn (without repeats) per aligned track pair, or per
    track of a video cut alone.
    ``box_scale``: the static box is the detection scaled by this about its centre.
    ``min_detections`` / ``align_iou``: the alignment rule of real and fake tracks.
    ``decoder``: :func:`dfaug.read_video` backend. ``seed``: with input and video
    names, seeds every random choice. ``threads``: decoder threads of one video;
    :func:`preprocess` sets it from its ``threads`` budget.
    ``single_clips``: what becomes of a video with no aligned partner (a fake whose
    original is absent, a real that no fake names): ``keep`` cuts it alone as a
    single clip, ``skip`` reports and skips it, ``auto`` skips for DFDC (the recipe
    trained on pairs only) and keeps for every other source.
    """

    every: int = 6
    clip_length: int = 50
    clips_per_pair: int = 1
    box_scale: float = 1.5
    min_detections: int = 5
    align_iou: float = 0.5
    tracker: TrackerParams = TrackerParams()
    decoder: str = "auto"
    seed: int = 0
    threads: int = 0  # CPU threads of one video's decoding (0: FFmpeg's choice); set by preprocess()
    single_clips: str = "auto"

    def __post_init__(self):
        for name, low in (("every", 1), ("clip_length", 2), ("clips_per_pair", 1),
                          ("min_detections", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, "
                                 f"got {getattr(self, name)}")
        if self.box_scale <= 0:
            raise ValueError(f"--box-scale must be > 0, got {self.box_scale}")
        if self.single_clips not in SINGLE_CLIPS:
            raise ValueError(f"--single-clips must be one of {', '.join(SINGLE_CLIPS)}, "
                             f"got {self.single_clips!r}")


@dataclass(frozen=True)
class DetectorSpec:
    """How to build the detector (picklable, so worker processes build their own)."""

    name: str = "mtcnn"
    weights: Optional[str] = None
    device: Optional[str] = None
    threshold: Optional[float] = None
    longer_side: Optional[int] = 512
    batch_size: int = 32

    def build(self):
        from ..faces import build_detector
        return build_detector(self.name, self.weights, self.device, threshold=self.threshold,
                              longer_side=self.longer_side, batch_size=self.batch_size)
