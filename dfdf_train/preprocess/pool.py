"""Groups over worker processes, each with its own detector; results in order."""
from __future__ import annotations

from typing import Iterator

from .config import DetectorSpec, PreprocessConfig
from .work import GroupResult, process_group

_WORKER: dict = {}


def _worker_init(spec: DetectorSpec, cfg: PreprocessConfig) -> None:
    from dfaug.threads import set_torch_threads
    set_torch_threads(cfg.threads)
    _WORKER["detector"] = spec.build()
    _WORKER["cfg"] = cfg


def _worker_run(group) -> GroupResult:
    return process_group(group, _WORKER["detector"], _WORKER["cfg"])


def results(groups: list, spec: DetectorSpec, cfg: PreprocessConfig, workers: int,
            detector) -> Iterator[GroupResult]:
    """Results in the order of ``groups`` (so shards are reproducible), computed here
    with ``detector`` or by ``workers`` processes that build theirs from ``spec``."""
    if workers <= 1 or len(groups) <= 1:
        for g in groups:
            yield process_group(g, detector, cfg)
        return
    import multiprocessing as mp
    # spawn: torch and CUDA do not survive fork
    with mp.get_context("spawn").Pool(workers, _worker_init, (spec, cfg)) as pool:
        yield from pool.imap(_worker_run, groups)
