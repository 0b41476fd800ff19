"""The names of the clip storage formats (:mod:`dfaug.storage` implements them), in a
module that imports nothing, so that command-line parsers can offer them at once."""

FORMATS = ("png", "h264-lossless", "ffv1", "raw", "yuv420p", "zstd")
LOSSLESS = ("png", "h264-lossless", "ffv1", "raw", "zstd")
DEFAULT_FORMAT = "zstd"  # docs/storage.md: cheapest lossless decode per sample, and small
