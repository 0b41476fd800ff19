"""The device stage: a loader batch of uint8 samples in, model inputs out.

A device stage is any callable ``stage(batch, generator)``: ``batch`` is a
:class:`SampleBatch` (uint8 pairs and single clips, on the device the stage runs
on), ``generator`` a torch.Generator seeded for this batch (seed, epoch, split,
batch number), the only source of its randomness. It returns what the loader
yields: usually ``(x, y)``, or ``(x, y, rows)`` where ``rows`` is a :class:`Rows`
naming, for each row of x, the sample it came from and which member, as ``(sample
index, member)`` with member ``"mix"``, ``"real"``, ``"fake"`` (``with_info`` uses it
to align the samples' info with x's rows; any other third element is yielded as it is).

The loader runs it inside the worker processes when the device is the CPU (so it is
spread over the cores) and in the main process on a GPU. Two ship here:

- :class:`Augment` (the default): :class:`dfaug.PairAugment`, one draw per pair for
  both members and every frame, then aligned mixup (the recipe), or the members apart
  with hard labels (``mixup=False``), or the preset's centre view (``center=True``,
  for validation). Single clips are augmented like a pair member and keep their label.
- :class:`PassThrough`: no device stage; the loader yields the uint8 SampleBatch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import torch

from .augment import PairAugment
from .mixup import mix_pairs

MODES = ("frame", "sequence")


class Rows(list):
    """``(sample index, member)`` for each row of a device stage's x."""


@dataclass
class SampleBatch:
    """A batch as the workers hand it over. ``pairs`` uint8 (P, 2, T, 3, H, W) (real,
    fake), ``singles`` uint8 (S, 1, T, 3, H, W) with ``labels`` (S,) float (0.0 real,
    1.0 fake); either may be None. ``info``: one :class:`dfaug.pipeline.SampleInfo`
    per sample, the pairs first, then the single clips, in the tensors' order."""

    pairs: Optional[torch.Tensor] = None
    singles: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    info: list = field(default_factory=list)

    def to(self, device, non_blocking: bool = False) -> "SampleBatch":
        move = (lambda t: None if t is None else t.to(device, non_blocking=non_blocking))
        return SampleBatch(move(self.pairs), move(self.singles), move(self.labels), self.info)

    def pin_memory(self) -> "SampleBatch":
        pin = (lambda t: None if t is None else t.pin_memory())
        return SampleBatch(pin(self.pairs), pin(self.singles), pin(self.labels), self.info)

    def __len__(self) -> int:
        return len(self.info)


class Augment:
    """The default device stage (see the module's text).

    ``mode``: ``"frame"``: every frame is its own image (own augmentation draw, own
    mixup t): x (N, 3, h, w); ``"sequence"``: one draw and one t per clip: x (N, T, 3,
    h, w) and y (N, T). ``mixup``: mix each pair into one input with the soft target
    t ~ Beta(0.5, 0.5) (the recipe); False: each pair gives its real (y = 0) and its
    fake (y = 1) as rows of their own, augmented with the same draw. ``center``: the
    preset's deterministic centre view instead of random augmentation (validation).
    """

    def __init__(self, augment: Union[PairAugment, str] = "tight_erase", mode: str = "frame", *,
                 mixup: bool = True, center: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(mixup, bool) or not isinstance(center, bool):
            raise ValueError(f"mixup and center must be True or False, got {mixup!r}, {center!r}")
        self.augment = PairAugment(augment) if isinstance(augment, str) else augment
        if not isinstance(self.augment, PairAugment):
            raise ValueError(f"augment must be a PairAugment or a preset name, got {augment!r}")
        self.mode, self.mixup, self.center = mode, mixup, center

    def __repr__(self):
        return (f"Augment({self.augment!r}, mode={self.mode!r}, mixup={self.mixup}, "
                f"center={self.center})")

    def _views(self, clips: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """(B, M, T, ...) -> augmented (B', M, T', ...): frame mode makes every frame a
        sample of its own (B' = B*T, T' = 1)."""
        if self.mode == "frame":
            b, m, t = clips.shape[:3]
            clips = clips.transpose(1, 2).reshape(b * t, m, 1, *clips.shape[3:])
        return self.augment.center(clips) if self.center else self.augment(clips, gen)

    def _targets(self, labels: torch.Tensor, frames: int, t: int) -> torch.Tensor:
        """One hard label per clip -> one per row: repeated for each frame's image in
        frame mode, over the T per-frame logits in sequence mode."""
        if self.mode == "frame":
            return labels.repeat_interleave(frames)
        return labels[:, None].expand(len(labels), t).contiguous()

    def __call__(self, batch: SampleBatch, generator: torch.Generator):
        xs, ys, rows = [], [], Rows()
        if batch.pairs is not None:
            n, t = batch.pairs.shape[0], batch.pairs.shape[2]
            frames = t if self.mode == "frame" else 1   # rows per sample and member
            views = self._views(batch.pairs, generator)
            if self.mixup:
                x, y = mix_pairs(views, generator, mode=self.mode)
                rows += [(i // frames, "mix") for i in range(n * frames)]
            else:  # rows real, fake, real, fake, ... (per frame in frame mode)
                x = views.flatten(0, 1) if self.mode == "sequence" else views[:, :, 0].flatten(0, 1)
                y = self._targets(torch.tensor([0.0, 1.0], device=x.device).repeat(n * frames), 1, t)
                rows += [(i // (2 * frames), ("real", "fake")[i % 2]) for i in range(2 * n * frames)]
            xs.append(x)
            ys.append(y)
        if batch.singles is not None:
            s, t = batch.singles.shape[0], batch.singles.shape[2]
            frames = t if self.mode == "frame" else 1
            views = self._views(batch.singles, generator)
            x = views[:, 0] if self.mode == "sequence" else views[:, 0, 0]
            y = self._targets(batch.labels.to(x.device, torch.float32), frames, t)
            first = len(batch.info) - s
            rows += [(first + i // frames, batch.info[first + i // frames].member)
                     for i in range(s * frames)]
            xs.append(x)
            ys.append(y)
        if not xs:
            raise ValueError("an empty batch reached the device stage")
        x, y = (xs[0], ys[0]) if len(xs) == 1 else (torch.cat(xs), torch.cat(ys))
        return x, y, rows


class PassThrough:
    """No device stage: the loader yields each uint8 :class:`SampleBatch` as it is
    (on the loader's device), for a user's own augmentation."""

    def __call__(self, batch: SampleBatch, generator: torch.Generator) -> SampleBatch:
        return batch

    def __repr__(self):
        return "PassThrough()"
