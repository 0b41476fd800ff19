"""dfaug: streaming data loading and augmentation for video deepfake detection.

Public API (docs/api.md): :class:`Clip`, :func:`read_video` and its backend
registry; the recipe's video-compression augmentation (:class:`CompressionParams`,
:class:`CompressionSampler`, :func:`recompress`); the device stage
(:class:`PairAugment`, :func:`aligned_mixup`, :func:`sample_mixup_t`, :func:`mix_pairs`).
"""
from .augment import AugmentConfig, PairAugment, PairParams
from .clip import Clip
from .compression import (TUNES, CompressionParams, CompressionSampler, fps_filter,
                          recompress)
from .mixup import aligned_mixup, mix_pairs, sample_mixup_t
from .video import (Backend, VideoDecodeError, available_backends, read_video,
                    register_backend)

__version__ = "0.1.0"

__all__ = [
    "AugmentConfig", "Backend", "Clip", "CompressionParams", "CompressionSampler",
    "PairAugment", "PairParams", "TUNES", "VideoDecodeError", "aligned_mixup",
    "available_backends", "fps_filter", "mix_pairs", "read_video", "recompress",
    "register_backend", "sample_mixup_t",
]
