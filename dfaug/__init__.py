"""dfaug: streaming data loading and augmentation for video deepfake detection.

Public API (docs/api.md): :class:`Clip`, :func:`read_video` and its backend
registry; the recipe's video-compression augmentation (:class:`CompressionParams`,
:class:`CompressionSampler`, :func:`recompress`); the device stage
(:class:`PairAugment`, :func:`aligned_mixup`, :func:`sample_mixup_t`, :func:`mix_pairs`);
pair shards and the streaming loader (:class:`PairShardWriter`, :func:`read_shard`,
:class:`PairRecord`, :class:`BadSample`, :class:`ShardMember`, :class:`StoredFrames`,
:class:`LazyFrames`, :func:`sequence_indices`, :class:`PairDataset`,
:class:`PairLoader`, :class:`RowInfo`, :class:`SampleInfo`, :class:`SampleBatch`) and its
seams (:mod:`dfaug.times`, :mod:`dfaug.device_stage`, :mod:`dfaug.pipeline`); thread
settings (:mod:`dfaug.threads`).

Names are imported on first use, so ``import dfaug`` (and a command's ``--help``)
does not load torch, FFmpeg or numba until something needs them.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the submodule that defines it
_EXPORTS = {
    "AugmentConfig": "augment", "PairAugment": "augment", "PairParams": "augment",
    "Clip": "clip",
    "TUNES": "compression", "CompressionParams": "compression",
    "CompressionSampler": "compression", "fps_filter": "compression",
    "CodecChoice": "compression", "CODECS": "compression", "transcode": "transcode",
    "recompress": "compression",
    "PairDataset": "loader", "PairLoader": "loader", "RowInfo": "loader",
    "fit_to": "pipeline", "SampleInfo": "pipeline", "SampleBatch": "device_stage",
    "aligned_mixup": "mixup", "mix_pairs": "mixup", "sample_mixup_t": "mixup",
    "recipe_indices": "times", "sequence_indices": "sampling",
    "BadSample": "shards", "PairRecord": "shards", "PairShardWriter": "shards",
    "ShardMember": "shards", "read_shard": "shards",
    "LazyFrames": "video", "StoredFrames": "storage",
    "Backend": "backends", "VideoDecodeError": "backends", "available_backends": "backends",
    "read_video": "video", "register_backend": "backends",
    "available_cores": "threads",
}
_SUBMODULES = {"augment", "autoaugment", "clip", "compression", "loader", "mixup", "nvdec",
               "sampling", "shards", "simd", "storage", "testing", "threads", "video",
               "formats", "times", "pipeline", "device_stage"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'dfaug' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
