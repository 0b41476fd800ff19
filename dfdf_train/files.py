"""Writing result files so that a crash never leaves a half-written one."""
from __future__ import annotations

import os


def write_text_atomic(path: "str | os.PathLike", text: str) -> None:
    """Write ``text`` to a temporary name beside ``path``, flush it to disk, then
    rename it over ``path``: readers see the old file or the whole new one."""
    tmp = f"{os.fspath(path)}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
