"""Key ingredient 1 of the recipe: mixup of aligned real/fake pairs.

``aligned_mixup(real, fake, t) = (1 - t) * real + t * fake`` with the soft target t.
Because the members of a pair share the face box, the frame numbers and every
augmentation, the mix changes only the face: the model cannot learn from the
background.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch


def aligned_mixup(real: torch.Tensor, fake: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(1 - t) * real + t * fake, t (N,) broadcast over the trailing dimensions of (N, ...)."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} "
                         f"and {tuple(fake.shape)}")
    t = torch.as_tensor(t, dtype=real.dtype, device=real.device)
    if t.dim() != 1 or t.shape[0] != real.shape[0]:
        raise ValueError(f"t must have one value per sample: shape ({real.shape[0]},), "
                         f"got {tuple(t.shape)}")
    t = t.view(-1, *([1] * (real.dim() - 1)))
    return real + t * (fake - real)


def sample_mixup_t(n: int, generator: Optional[torch.Generator] = None,
                   alpha: float = 0.5) -> torch.Tensor:
    """n draws of t ~ Beta(alpha, alpha) (float32, CPU) from an explicit generator.

    For the recipe's alpha = 0.5 Beta(1/2, 1/2) is the arcsine law: t = sin^2(pi u / 2)
    with u uniform, drawn with torch's own generator; other alphas go through a numpy
    generator seeded from it.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not (isinstance(alpha, (int, float)) and alpha > 0):
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    if alpha == 0.5:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.sin(u * (math.pi / 2)).pow(2).float()
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, n).astype(np.float32))


def mix_pairs(batch: torch.Tensor, generator: Optional[torch.Generator] = None,
              mode: str = "frame", alpha: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix an augmented batch (B, 2, T, C, H, W) into model inputs and soft targets.

    ``mode="frame"``: every frame is its own image with its own t:
    x (B*T, C, H, W), y (B*T,). ``mode="sequence"``: one t per sequence, repeated
    for its T per-frame logits: x (B, T, C, H, W), y (B, T).
    """
    if batch.dim() != 6 or batch.shape[1] != 2:
        raise ValueError(f"batch must be (B, 2, T, C, H, W), got {tuple(batch.shape)}")
    b, _, t_len = batch.shape[:3]
    if mode == "frame":
        real = batch[:, 0].reshape(b * t_len, *batch.shape[3:])
        fake = batch[:, 1].reshape(b * t_len, *batch.shape[3:])
        t = sample_mixup_t(b * t_len, generator, alpha).to(batch.device)
        return aligned_mixup(real, fake, t), t
    if mode == "sequence":
        t = sample_mixup_t(b, generator, alpha).to(batch.device)
        return aligned_mixup(batch[:, 0], batch[:, 1], t), t[:, None].expand(b, t_len).contiguous()
    raise ValueError(f"mode must be 'frame' or 'sequence', got {mode!r}")
