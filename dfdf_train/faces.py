"""Face detectors behind one interface, for preprocess and predict.

A detector takes a batch of RGB uint8 frames (N, H, W, 3), numpy or torch (on any
device: NVDEC backends leave frames on the GPU), and returns one float array
(k, 5) ``[x1, y1, x2, y2, score]`` per frame in the ORIGINAL frame's pixels.

Frames are rescaled inside the detector so that their longer side is
``longer_side`` (the recipe ran DSFD on ~512-pixel frames): the boxes do not depend
on the source resolution and a 1080p frame costs what a 512-pixel one costs.
Smaller frames are left as they are unless ``upscale`` is set: MTCNN's image
pyramid already covers faces down to ``min_face_size`` pixels, and upscaling a
176x144 frame to 512 pixels costs ~10x more (measured on carphone: 0.25 s against
0.025 s per frame) while finding the same face.

Detectors (:func:`build_detector`):

- ``"mtcnn"`` (default): facenet-pytorch's MTCNN, whose weights ship inside the
  ``facenet-pytorch==2.5.3`` wheel, so nothing is downloaded. Score threshold 0.7,
  MTCNN's own last-stage threshold, i.e. every box it reports: as in the recipe
  (DSFD threshold 0.3 = the tracker's sigma_l 0.3), the detector keeps weak boxes
  and the tracker decides (a kept track needs one box >= sigma_h 0.9). A higher
  threshold breaks tracks on frames where a manipulated face scores 0.8-0.9
  (seen on the synthetic fakes), and a broken track loses its aligned pair.
- ``"torchscript"``: any detector exported by the user as TorchScript (or as a
  ``torch.export`` ``.pt2`` program), loaded from a local file (see :class:`TorchScriptDetector` for its calling convention);
  default threshold 0.3, the recipe's value for DSFD.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import os
from dataclasses import dataclass, replace
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

EMPTY = np.zeros((0, 5), dtype=np.float32)


@runtime_checkable
class Detector(Protocol):
    """What preprocess and predict need from a face detector."""

    def detect(self, frames) -> list[np.ndarray]:
        """Per frame of the batch (N, H, W, 3) uint8 RGB: (k, 5) [x1, y1, x2, y2, score]."""
        ...


@dataclass(frozen=True)
class DetectorConfig:
    """Settings common to every detector.

    ``threshold``: keep boxes scoring at least this (None: the detector's default).
    ``longer_side``: rescale frames so the longer side has this many pixels (None:
    never rescale). ``upscale``: also enlarge frames smaller than that.
    ``batch_size``: frames per forward pass. ``device``: None = cuda when available.
    """

    threshold: Optional[float] = None
    longer_side: Optional[int] = 512
    upscale: bool = False
    batch_size: int = 32
    device: Optional[str] = None

    def __post_init__(self):
        if self.longer_side is not None and self.longer_side < 16:
            raise ValueError(f"longer_side must be >= 16 or None, got {self.longer_side}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def rescale_factor(height: int, width: int, longer_side: Optional[int], upscale: bool) -> float:
    """The factor that brings the longer side to ``longer_side`` (1 if no change is wanted)."""
    if longer_side is None:
        return 1.0
    s = longer_side / max(height, width)
    return s if (s < 1.0 or upscale) else 1.0


class BatchDetector(ABC):
    """Shared machinery: move to the device, rescale, run in batches, map boxes back.

    Subclasses implement :meth:`_detect_batch` on a float tensor (n, h, w, 3) of
    rescaled frames (values 0..255) and return boxes in the rescaled pixels.
    """

    default_threshold = 0.5

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        self.config = config
        self.device = config.device or default_device()
        self.threshold = (config.threshold if config.threshold is not None
                          else self.default_threshold)

    def detect(self, frames) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.asarray(frames))
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"frames must have shape (N, H, W, 3), got {tuple(x.shape)}")
        if len(x) == 0:
            return []
        h, w = int(x.shape[1]), int(x.shape[2])
        s = rescale_factor(h, w, self.config.longer_side, self.config.upscale)
        size = (max(1, round(h * s)), max(1, round(w * s)))
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for i in range(0, len(x), self.config.batch_size):
                batch = x[i:i + self.config.batch_size].to(self.device).float()
                if s != 1.0:
                    # antialias: a plain bilinear 1080p->512 shrink aliases and loses faces
                    batch = F.interpolate(batch.permute(0, 3, 1, 2), size=size, mode="bilinear",
                                          antialias=s < 1, align_corners=False)
                    batch = batch.permute(0, 2, 3, 1).contiguous()
                # the box's corners scale with the pixel grid: x_orig = x_small * (w / w_small)
                sx, sy = w / size[1], h / size[0]
                for boxes in self._detect_batch(batch):
                    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
                    boxes = boxes[boxes[:, 4] >= self.threshold].copy()
                    boxes[:, [0, 2]] *= sx
                    boxes[:, [1, 3]] *= sy
                    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
                    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
                    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                    out.append(boxes[keep])
        return out

    @abstractmethod
    def _detect_batch(self, batch) -> Sequence[np.ndarray]:
        """Boxes (k, 5) per frame of ``batch``, in the rescaled frames' pixels."""


class MTCNNDetector(BatchDetector):
    """facenet-pytorch's MTCNN (P-, R-, O-Net), batched; weights from the installed wheel.

    ``min_face_size``: smallest face in (rescaled) pixels the pyramid looks for.
    """

    default_threshold = 0.7

    def __init__(self, config: DetectorConfig = DetectorConfig(), *, min_face_size: int = 20):
        super().__init__(config)
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:  # pragma: no cover - an install problem, said plainly
            raise ImportError("the mtcnn detector needs facenet-pytorch==2.5.3 "
                              "(pip install 'facenet-pytorch==2.5.3' or the [detector] "
                              "extra)") from e
        # keep_all: every face, not only the largest; weights load from the package data
        self.model = MTCNN(keep_all=True, min_face_size=min_face_size, device=self.device)
        self.model.eval()

    def _detect_batch(self, batch):
        boxes, probs = self.model.detect(batch)
        out = []
        for b, p in zip(boxes, probs):
            if b is None or len(b) == 0:
                out.append(EMPTY)
            else:
                out.append(np.concatenate([np.asarray(b, np.float32).reshape(-1, 4),
                                           np.asarray(p, np.float32).reshape(-1, 1)], axis=1))
        return out


class TorchScriptDetector(BatchDetector):
    """A user's detector saved to a local file: TorchScript (``torch.jit.script`` or
    ``trace``, then ``torch.jit.save``), or a ``torch.export`` program saved as
    ``.pt2`` (recent torch deprecates TorchScript in favour of it).

    Calling convention of the module: input a float32 tensor (N, 3, H, W), RGB,
    values 0..255 (the module does its own normalisation); output either a tensor
    (N, K, 5) ``[x1, y1, x2, y2, score]`` (pad unused rows with score <= 0) or a list
    of N tensors (k_i, 5), boxes in the input's pixels. Frames reach it rescaled
    to ``longer_side``; boxes are mapped back to the original frame here.
    """

    default_threshold = 0.3  # the recipe's value for DSFD

    def __init__(self, path: str, config: DetectorConfig = DetectorConfig()):
        super().__init__(config)
        import torch
        if not path or not os.path.isfile(path):
            raise FileNotFoundError(f"detector weights file not found: {path!r} "
                                    "(--detector-weights must name a TorchScript file)")
        try:
            if path.endswith(".pt2"):  # torch.export's format, TorchScript's successor
                self.model = torch.export.load(path).module().to(self.device)
            else:
                self.model = torch.jit.load(path, map_location=self.device)
                self.model.eval()
        except Exception as e:  # each loader fails its own way (RuntimeError, BadZipFile...)
            raise ValueError(f"{path}: not a TorchScript module nor a torch.export program "
                             f"({e.__class__.__name__}); save the detector with "
                             "torch.jit.save(torch.jit.script(model)) or, as .pt2, "
                             "torch.export.save") from e
        self.path = path

    def _detect_batch(self, batch):
        import torch
        out = self.model(batch.permute(0, 3, 1, 2).contiguous())
        if isinstance(out, torch.Tensor):
            if out.ndim != 3 or out.shape[-1] != 5:
                raise ValueError(f"{self.path}: the module must return (N, K, 5) boxes, "
                                 f"got {tuple(out.shape)}")
            out = list(out)
        if len(out) != len(batch):
            raise ValueError(f"{self.path}: {len(out)} box sets for {len(batch)} frames")
        return [o.detach().float().cpu().numpy().reshape(-1, 5) for o in out]


def _mtcnn(weights: Optional[str], config: DetectorConfig) -> Detector:
    if weights:
        raise ValueError("detector 'mtcnn' takes its weights from the facenet-pytorch package; "
                         "--detector-weights is for --detector torchscript")
    return MTCNNDetector(config)


def _torchscript(weights: Optional[str], config: DetectorConfig) -> Detector:
    if not weights:
        raise ValueError("detector 'torchscript' needs --detector-weights PATH "
                         "(a TorchScript file)")
    return TorchScriptDetector(weights, config)


DETECTORS: dict[str, Callable[[Optional[str], DetectorConfig], Detector]] = {
    "mtcnn": _mtcnn,
    "torchscript": _torchscript,
}


def build_detector(name: str = "mtcnn", weights: Optional[str] = None,
                   device: Optional[str] = None, **config) -> Detector:
    """A detector by registry name; ``config``: fields of :class:`DetectorConfig`."""
    if name not in DETECTORS:
        raise ValueError(f"detector must be one of {sorted(DETECTORS)}, got {name!r}")
    cfg = DetectorConfig(**config)
    if device is not None:
        cfg = replace(cfg, device=device)
    return DETECTORS[name](weights, cfg)
