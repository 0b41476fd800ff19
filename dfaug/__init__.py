"""dfaug: streaming data loading and augmentation for video deepfake detection.

Public API (docs/api.md): :class:`Clip`, :func:`read_video` and its backend
registry; the recipe's video-compression augmentation (:class:`CompressionParams`,
:class:`CompressionSampler`, :func:`recompress`); the device stage
(:class:`PairAugment`, :func:`aligned_mixup`, :func:`sample_mixup_t`, :func:`mix_pairs`);
pair shards and the streaming loader (:class:`PairShardWriter`, :func:`read_shard`,
:func:`sequence_indices`, :class:`PairDataset`, :class:`PairLoader`).
"""
from .augment import AugmentConfig, PairAugment, PairParams
from .clip import Clip
from .compression import (TUNES, CompressionParams, CompressionSampler, fps_filter,
                          recompress)
from .loader import PairDataset, PairLoader, fit_to
from .mixup import aligned_mixup, mix_pairs, sample_mixup_t
from .sampling import recipe_indices, sequence_indices
from .shards import PairRecord, PairShardWriter, read_shard
from .video import (Backend, VideoDecodeError, available_backends, read_video,
                    register_backend)

__version__ = "0.1.0"

__all__ = [
    "AugmentConfig", "Backend", "Clip", "CompressionParams", "CompressionSampler",
    "PairAugment", "PairDataset", "PairLoader", "PairParams", "PairRecord", "PairShardWriter",
    "TUNES", "VideoDecodeError", "aligned_mixup",
    "available_backends", "fit_to", "fps_filter", "mix_pairs", "read_shard", "read_video",
    "recipe_indices", "recompress", "register_backend", "sample_mixup_t", "sequence_indices",
]
