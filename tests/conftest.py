import numpy as np
import pytest

import dfaug
from dfaug.testing import media_path


@pytest.fixture(scope="session")
def carphone() -> dfaug.Clip:
    """The real talking-face video: 120 frames, 176x144, 29.97 fps."""
    return dfaug.read_video(media_path("carphone_pristine.mp4"))


@pytest.fixture(scope="session")
def carphone_distorted() -> dfaug.Clip:
    return dfaug.read_video(media_path("carphone_distorted.mp4"))


@pytest.fixture(scope="session")
def clip50(carphone) -> dfaug.Clip:
    """A recipe clip: 50 real frames at exactly 30 fps (the recipe's assumption)."""
    return dfaug.Clip(carphone.frames[:50], np.arange(50) / 30)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


class CountingRange:
    """A clip's bytes behind the file-range interface that storage reads a shard
    member through (``size``, ``read_ranges``), recording every range asked for."""

    def __init__(self, data: bytes):
        self.data, self.size, self.calls = data, len(data), []

    def read_ranges(self, ranges) -> list:
        self.calls.append([(int(a), int(b)) for a, b in ranges])
        return [self.data[a:b] for a, b in ranges]

    @property
    def bytes_read(self) -> int:
        return sum(b - a for call in self.calls for a, b in call)
