"""From many per-frame / per-window probabilities to one score per video, and the metric.

docs/recipe.md "Inference": every sigmoid output of every model on every face track of a
video is pooled into one vector ``p`` (P(FAKE) each) and combined by :func:`aggregate`.
The competition metric is the binary log-loss over videos (:func:`log_loss`, y = 1 for
FAKE), which punishes a confident mistake without bound; that is why the recipe both
pulls the scores towards the extremes (the power transform) and never lets a video's
score leave [0.01, 0.99] (the clip).

Only numpy is imported here, so the CLI's ``--help`` stays fast; torch tensors are
accepted through their ``detach().cpu().numpy()``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

NO_FACE_SCORE = 0.5
"""The score of a video with no output at all (no face, unreadable): the recipe's 0.5,
the prediction that costs log(2) whatever the label."""


def _as_probs(probs: Any, name: str = "probs") -> np.ndarray:
    """``probs`` as a flat float64 array of probabilities, or a ValueError saying what is
    wrong with it. Any shape is flattened: the recipe pools all outputs anyway, and a
    model's (N, 1) sigmoid output should not need a reshape first."""
    if hasattr(probs, "detach"):  # torch.Tensor, on any device, with or without grad
        probs = probs.detach().cpu().numpy()
    try:
        a = np.asarray(probs, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a sequence of numbers: {e}") from None
    bad = np.isnan(a)
    if bad.any():
        raise ValueError(f"{name} contains NaN ({int(bad.sum())} of {a.size} values), "
                         f"first at index {int(np.argmax(bad))}")
    bad = (a < 0) | (a > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be probabilities in [0, 1]; value {a[i]!r} at index "
                         f"{i} is not ({int(bad.sum())} of {a.size} out of range)")
    return a


def _check_clip(clip: Tuple[float, float]) -> Tuple[float, float]:
    lo, hi = (float(c) for c in clip)
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"clip must be (lo, hi) with 0 <= lo < hi <= 1, got {clip!r}")
    return lo, hi


def aggregate(probs: Any, *, power: float = 0.65, clip: Tuple[float, float] = (0.01, 0.99),
              eps: float = 1e-4) -> float:
    """One video's P(FAKE) from all its pooled sigmoid outputs (docs/recipe.md "Inference").

    With ``d = p - 0.5`` for each output:

    - ``p' = clip(0.5 + sign(d) * |d| ** power, *clip)``: with power < 1 the transform
      pushes every output away from 0.5 (0.75 -> 0.906, 0.6 -> 0.725); 0.5 stays 0.5.
      The clip then bounds the loss of a confident mistake at -log(0.01) = 4.6.
    - ``w = |d| + eps``, from the *untransformed* d: confident outputs (faces the models
      are sure about) outvote the many uncertain ones (profile views, blur, a wrong
      face). ``eps`` keeps the weights positive, so an all-0.5 vector gives 0.5 and not
      0/0.
    - score = ``sum(p' * w) / sum(w)``, which lies in ``clip`` because every p' does.

    The rule is symmetric: ``aggregate(1 - p) == 1 - aggregate(p)`` for a symmetric clip.
    ``probs`` is a list, numpy array or torch tensor (any shape, flattened); an empty one
    gives 0.5, the recipe's score for a video with no face. NaN or values outside [0, 1]
    raise ValueError: they mean a bug upstream (logits passed for probabilities), which
    a silent clip would hide.
    """
    p = _as_probs(probs)
    lo, hi = _check_clip(clip)
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps the weights of 0.5 outputs positive), "
                         f"got {eps!r}")
    if p.size == 0:
        return NO_FACE_SCORE
    d = p - 0.5
    transformed = np.clip(0.5 + np.sign(d) * np.abs(d) ** power, lo, hi)
    weights = np.abs(d) + eps
    return float(np.sum(transformed * weights) / np.sum(weights))


def mean_aggregate(probs: Any, *, clip: Tuple[float, float] = (0.01, 0.99)) -> float:
    """The plain mean of the pooled outputs, clipped like :func:`aggregate`.

    The baseline the recipe's transform and confidence weights are measured against
    (``evaluate`` prints both); the clip is kept so that the comparison isolates those
    two choices rather than the clip. Same input rules as :func:`aggregate`.
    """
    p = _as_probs(probs)
    lo, hi = _check_clip(clip)
    if p.size == 0:
        return NO_FACE_SCORE
    return float(np.clip(p.mean(), lo, hi))


def log_loss(y_true: Any, p: Any, eps: float = 1e-15) -> float:
    """Binary log-loss, the DFDC metric: ``-mean(y log p + (1 - y) log(1 - p))``.

    ``y_true`` holds 1 for FAKE and 0 for REAL, one per video; ``p`` is each video's
    P(FAKE). Like Kaggle's scorer, ``p`` is clipped to ``[eps, 1 - eps]`` so that a
    single 0 or 1 on the wrong side costs -log(1e-15) = 34.5 instead of infinity. A
    constant 0.5 scores log(2) = 0.6931, the number to beat.
    """
    y = np.asarray(y_true, dtype=np.float64).ravel()
    q = _as_probs(p, "p")
    if y.size != q.size:
        raise ValueError(f"y_true and p differ in length: {y.size} vs {q.size}")
    if y.size == 0:
        raise ValueError("log_loss of no videos is undefined")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0 (REAL) and 1 (FAKE), got "
                         f"{sorted(set(y[~np.isin(y, (0.0, 1.0))].tolist()))[:5]}")
    if not 0 <= eps < 0.5:
        raise ValueError(f"eps must be in [0, 0.5), got {eps!r}")
    q = np.clip(q, eps, 1 - eps)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


@dataclass(frozen=True)
class PredictConfig:
    """The recipe's inference settings (``predict``, ``robustness``)."""

    fps: float = 15.0            # frames are read at this rate
    detect_every: int = 3        # faces on every 3rd of those frames
    t_min: int = 7               # fewest detections of a kept track
    box_scale: float = 1.5
    window: int = 7              # sequence model: frames per window
    window_step: int = 14        # ... a window starting every 14 frames
    frame_step: int = 2          # frame models: every 2nd track frame
    batch_size: int = 32         # crops per forward pass
    threads: Optional[int] = None  # CPU threads of decoding and of torch (None: every core)
