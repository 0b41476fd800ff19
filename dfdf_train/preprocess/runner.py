"""``preprocess()``: plan, split, process the groups not yet done, commit, report."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

from dfaug.formats import DEFAULT_FORMAT, FORMATS

from ..progress import Progress
from .commit import ShardSink, finished_groups, merge_reports
from .config import DetectorSpec, PreprocessConfig
from .groups import plan, resolve_shard, shard_groups
from .pool import results
from .work import Timer


@dataclass
class Summary:
    """What one run did. ``pairs``: samples written, pairs and single clips;
    ``single_clips``: the single clips among them."""

    groups: int = 0
    real_videos: int = 0
    videos: int = 0
    pairs: int = 0
    single_clips: int = 0
    skipped: int = 0
    kept_notes: int = 0
    already_done: int = 0
    shards: list = field(default_factory=list)
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


def preprocess(inputs: Sequence[str], out_dir: str, *,
               config: PreprocessConfig = PreprocessConfig(),
               detector: "DetectorSpec | object" = DetectorSpec(),
               shard_index: Optional[int] = None, num_shards: Optional[int] = None,
               workers: int = 0, limit: Optional[int] = None, shard_pairs: int = 256,
               fmt: str = DEFAULT_FORMAT, progress: bool = True,
               threads: Optional[int] = None, layout: Optional[str] = None,
               compression: str = "c23", splits: Optional[str] = None,
               split: Optional[str] = None) -> Summary:
    """Run the preprocessing; see the package docstring. Returns what this run did.

    ``inputs``, ``layout``, ``compression``, ``splits``, ``split``: which videos, as
    :func:`dfdf_train.sources.list_videos` takes them.
    ``detector``: a :class:`DetectorSpec`, or a ready detector object (in-process
    runs only). ``limit``: stop after this many groups (real videos) of this shard.
    ``shard_pairs``: start a new shard after this many pairs (at a group boundary).
    ``threads``: CPU cores the run may use (None: those this process may run on),
    shared evenly by the ``workers`` (decoding and detection threads of each).
    """
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    from dfaug.threads import available_cores, torch_threads
    budget = threads or available_cores()
    config = replace(config, threads=max(1, budget // max(1, workers)))
    with torch_threads(config.threads):  # in-process runs; workers set their own
        return _preprocess(inputs, out_dir, config, detector, shard_index, num_shards,
                           workers, limit, shard_pairs, fmt, progress,
                           dict(layout=layout, compression=compression, splits=splits,
                                split=split))


def _preprocess(inputs, out_dir, config, detector, shard_index, num_shards, workers, limit,
                shard_pairs, fmt, progress, listing) -> Summary:
    if shard_pairs < 1:
        raise ValueError(f"--shard-pairs must be >= 1, got {shard_pairs}")
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be >= 0, got {limit}")
    import dfaug
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if config.decoder != "auto" and config.decoder not in dfaug.available_backends():
        raise ValueError(f"--decoder must be 'auto' or one of {dfaug.available_backends()}, "
                         f"got {config.decoder!r}")
    index, count = resolve_shard(shard_index, num_shards)
    t0 = time.perf_counter()
    groups = shard_groups(plan(inputs, **listing, single_clips=config.single_clips), index, count)
    spec = detector if isinstance(detector, DetectorSpec) else None
    if spec is None and workers > 1:
        raise ValueError("--workers > 1 needs a DetectorSpec (workers build their own detector)")
    # built before any output exists: a bad detector setting fails here, once, plainly
    # (worker processes build their own; this one serves runs done in-process)
    ready = spec.build() if spec is not None else detector
    os.makedirs(out_dir, exist_ok=True)
    done = finished_groups(out_dir)
    todo = [g for g in groups if g.key not in done]
    summary = Summary(already_done=len(groups) - len(todo))
    if limit is not None:
        todo = todo[:limit]
    sink = ShardSink(out_dir, f"s{index}of{count}", fmt, shard_pairs)
    bar = Progress(sum(g.n_videos for g in todo), f"preprocess shard {index}/{count}", "videos",
                   enabled=progress)
    try:
        for group, result in zip(todo, results(todo, spec, config, workers, ready)):
            with Timer(summary.timings, "write"):
                sink.add(result)
            summary.groups += 1
            summary.real_videos += group.real is not None
            summary.videos += result.n_videos
            summary.pairs += len(result.samples)
            summary.single_clips += sum(len(s.clips) == 1 for s in result.samples)
            summary.skipped += sum(r["action"] == "skipped" for r in result.reports)
            summary.kept_notes += sum(r["action"] == "kept" for r in result.reports)
            for k, v in result.timings.items():
                summary.timings[k] = summary.timings.get(k, 0.0) + v
            bar.update(result.n_videos)
        with Timer(summary.timings, "write"):
            sink.commit()
    except BaseException:
        sink.abort()  # nothing half-written: the open shard's temporary file goes
        raise
    finally:
        bar.close()
    merge_reports(out_dir)
    summary.shards = sink.shards
    summary.seconds = time.perf_counter() - t0
    return summary
