"""Writing result files so that a crash never leaves a half-written one."""
from __future__ import annotations

import os
from pathlib import Path


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


# A submission CSV and the files that go with it (predict writes them, evaluate reads them)
DETAILS_SUFFIX = ".details.jsonl"


def beside_submission(pred: os.PathLike, suffix: str) -> Path:
    """A file that goes with a submission: ``sub.csv`` and ``suffix`` -> ``sub`` + suffix."""
    pred = Path(pred)
    stem = pred.name[:-4] if pred.name.lower().endswith(".csv") else pred.name
    return pred.with_name(stem + suffix)


def details_path_for(pred: os.PathLike) -> Path:
    """Where the details of a submission live: ``sub.csv`` -> ``sub.details.jsonl``."""
    return beside_submission(pred, DETAILS_SUFFIX)
