"""dfaug: streaming data loading and augmentation for video deepfake detection.

Public API (see docs/api.md): :class:`Clip`, :func:`read_video` and its backend
registry, :class:`CompressionParams`, :class:`CompressionSampler`, :func:`recompress`.
"""
from .clip import Clip
from .compression import (TUNES, CompressionParams, CompressionSampler, fps_filter,
                          recompress)
from .video import (Backend, VideoDecodeError, available_backends, read_video,
                    register_backend)

__version__ = "0.1.0"

__all__ = [
    "Backend", "Clip", "CompressionParams", "CompressionSampler", "TUNES",
    "VideoDecodeError", "available_backends", "fps_filter", "read_video", "recompress",
    "register_backend",
]
