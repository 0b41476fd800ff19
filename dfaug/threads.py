"""How many CPU threads a process and its workers use.

torch (OpenMP), FFmpeg and x264 each start a thread pool sized to the machine by
default. A training process whose loader workers are busy on every core, while its
own OpenMP pool also asks for every core, runs several times slower than one that
fits: OpenMP threads spin at their barriers while the workers hold the cores. So
the commands choose their threads explicitly from :func:`available_cores`:

- a loader worker runs one thread (torch's DataLoader sets it; dfaug's encoders and
  decoders are opened with one thread each);
- the main process gets the cores the workers leave (:func:`split_cores`).

Results are reproducible for a fixed thread setting: the same seed and the same
``torch`` thread count give the same losses; another count sums in another order.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Optional

log = logging.getLogger("dfaug.threads")


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU
    quota (a container limited to 2 CPUs on a 64-core host counts 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, int(quota + 0.5)))
    return max(1, cores)


def _cgroup_quota() -> Optional[float]:
    """CPUs allowed by the cgroup (v2 cpu.max, else v1 cfs quota), None when unlimited
    or when the process is in no cgroup with a CPU limit."""
    v2 = _read("/sys/fs/cgroup/cpu.max")  # "max 100000" or "200000 100000"
    if v2 is not None:
        quota, _, period = v2.partition(" ")
    else:  # cgroup v1: a quota of -1 means no limit
        quota = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        period = _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        q, p = int(quota), int(period)
    except (TypeError, ValueError):  # "max", or no such files
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def check_threads(name: str, value: Optional[int]) -> None:
    """ValueError unless ``value`` is None or a positive integer."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer (or None: every available core), "
                         f"got {value!r}")


def split_cores(threads: Optional[int], workers: Optional[int], *,
                default_workers: Optional[int] = None) -> tuple[int, int]:
    """(main-process threads, loader workers) within ``threads`` cores.

    ``threads``: cores the whole job may use (None: :func:`available_cores`).
    ``workers``: loader worker processes (None: ``default_workers``, or else half the
    cores, at least one). Each worker runs one thread; the main process gets the rest,
    at least one. Asking for more workers than the cores leave is allowed (they then
    share them) and logged.
    """
    check_threads("threads", threads)
    total = threads or available_cores()
    if workers is None:
        workers = default_workers if default_workers is not None else max(1, total // 2)
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    main = max(1, total - workers)
    if main + workers > total:
        log.warning("%d loader workers and %d main-process thread ask for more than the %d "
                    "cores available: they will share them", workers, main, total)
    return main, workers


def set_torch_threads(n: int) -> None:
    """torch's intra-op thread count in this process (OpenMP / MKL / oneDNN)."""
    import torch
    check_threads("threads", n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextlib.contextmanager
def torch_threads(n: Optional[int]):
    """``n`` torch threads inside the block (None: as they are, for a block that sets its
    own), the caller's own count again after it: for functions (train, predict,
    preprocess) that a user may also call from a program."""
    import torch
    saved = torch.get_num_threads()
    if n is not None:
        set_torch_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
