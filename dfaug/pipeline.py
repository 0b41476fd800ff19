"""The loader's worker-side stages, each a small function or object over a stream:

    epoch_shards -> split_records -> shuffled -> made (SampleMaker) -> batched

- :func:`epoch_shards`: the shard list in this epoch's order.
- :func:`split_records`: this (rank, worker) split's records, read lazily (metadata
  and where the frames lie; a pair's bytes are read when it is made).
- :func:`shuffled`: a shuffle buffer over the records.
- :class:`SampleMaker` / :func:`made`: one record -> one :class:`Sample` (choose the
  times, read only the frames they need, re-encode, pick, fit); a broken record
  becomes a counted :class:`Skip`; the first records of a resumed epoch pass as
  hollow samples (keys only, nothing decoded).
- :func:`batched`: samples -> lists of ``batch_size`` with the skips met on the way.

:class:`dfaug.loader.PairDataset` assembles them; each is usable on its own.
"""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .clip import Clip
from .compression import CompressionParams, CompressionSampler, recompress
from .sampling import nearest, nearest_indices
from .shards import BadSample, PairRecord, read_shard
from .times import allows_repeats, checked_times
from .backends import VideoDecodeError

log = logging.getLogger("dfaug.loader")

# what making a sample may raise for a broken or unsuitable record: it is skipped
SAMPLE_ERRORS = (ValueError, VideoDecodeError, KeyError, RuntimeError, OSError)


# ------------------------------------------------------------------ records

def epoch_shards(shards: Sequence[str], seed: int, epoch: int) -> list[str]:
    """The shard list in this epoch's order (the same on every rank and worker)."""
    order = np.random.default_rng([seed, epoch]).permutation(len(shards))
    return [shards[i] for i in order]


def split_records(shards: Sequence[str], split: int, n_splits: int,
                  warn: bool = False) -> Iterator["PairRecord | BadSample"]:
    """The records of one (rank, worker) split, read lazily. Shards go round-robin to
    the splits; with fewer shards than splits, every split reads every shard and keeps
    every n-th record. Either way each record reaches one split."""
    if len(shards) >= n_splits:
        for path in shards[split::n_splits]:
            yield from read_shard(path, lazy=True)
        return
    if warn:
        log.warning("%d shards for %d loader splits: every split reads every shard; "
                    "write more, smaller shards", len(shards), n_splits)
    n = 0
    for path in shards:
        for record in read_shard(path, lazy=True):
            if n % n_splits == split:
                yield record
            n += 1


def shuffled(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """A shuffle buffer of ``size``: each item leaves at a random place once the
    buffer is full; the rest, shuffled, at the end."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        i = int(rng.integers(len(buffer)))
        buffer[i], item = item, buffer[i]
        yield item
    rng.shuffle(buffer)
    yield from buffer


# ------------------------------------------------------------------ samples

@dataclass(frozen=True)
class SampleInfo:
    """What a sample is: its key, its stored metadata, the re-encoding settings it got
    (None: not re-encoded) and its ``label`` (None for a pair; 0.0 real, 1.0 fake
    for a single clip)."""

    key: str
    meta: dict
    params: Optional[CompressionParams]
    label: Optional[float] = None

    @property
    def is_pair(self) -> bool:
        return self.label is None

    @property
    def member(self) -> str:
        """``"pair"``, or a single clip's ``"real"`` / ``"fake"``."""
        return "pair" if self.label is None else ("real", "fake")[int(self.label)]


@dataclass
class Sample:
    """One made sample: ``frames`` uint8 (M, T, 3, H, W), M = 2 for a pair (real, fake)
    and 1 for a single clip; None for a hollow sample of a replayed batch."""

    info: SampleInfo
    frames: Optional[np.ndarray] = None

    @property
    def key(self) -> str:
        return self.info.key


@dataclass(frozen=True)
class Skip:
    """A record that gave no sample: where, and why."""

    shard: str
    key: Optional[str]
    reason: str


def fit_to(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (T, h, w, 3) uint8 so the frames cover ``size`` (H, W), keeping the aspect,
    then cut the centre: the same operation for every frame and both members.
    Returns (T, 3, H, W)."""
    t, h, w, _ = frames.shape
    out_h, out_w = size
    scale = max(out_h / h, out_w / w)
    rh, rw = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    if (rh, rw) != (h, w):
        x = F.interpolate(x.contiguous(memory_format=torch.channels_last), size=(rh, rw),
                          mode="bilinear", align_corners=False, antialias=False)
    top, left = (rh - out_h) // 2, (rw - out_w) // 2
    return x[:, :, top:top + out_h, left:left + out_w].contiguous().numpy()


class SampleMaker:
    """Makes one record's sample: its times, its compression draw, only the frames it
    needs decoded, re-encoded with the draw (every member the same), the frames
    nearest to the times picked, and every member fitted to ``size`` alike.

    Its draws are functions of (seed, epoch, key) only (:meth:`rng`), so a record
    gets the same sample whatever the ranks, workers and order.
    """

    def __init__(self, times, size: tuple[int, int], compression: Optional[CompressionSampler],
                 seed: int = 0, epoch: int = 0):
        self.times, self.size, self.compression = times, tuple(size), compression
        self.seed, self.epoch = seed, epoch

    def rng(self, key: str, stream: int = 0) -> np.random.Generator:
        """A generator of record ``key`` this epoch: stream 0 draws the re-encoding
        settings, stream 1 the times (a window's start)."""
        entropy = [self.seed, self.epoch, zlib.crc32(key.encode())]
        return np.random.default_rng(entropy if stream == 0 else entropy + [stream])

    def params(self, key: str) -> Optional[CompressionParams]:
        """The re-encoding settings of record ``key`` this epoch (None: not re-encoded)."""
        return None if self.compression is None else self.compression.sample(self.rng(key))

    def __call__(self, record: PairRecord) -> Sample:
        """Raises one of SAMPLE_ERRORS for a record that cannot give the sample."""
        if not record.members:
            raise ValueError(f"{record.key} has no frame member")
        pts = record.pts
        times = checked_times(self.times, pts, self.rng(record.key, 1))
        repeat = allows_repeats(self.times)
        used = nearest_indices(pts, times, repeat=repeat)  # raises when the clip is too short
        params = self.params(record.key)
        if params is None:
            used = np.unique(used)
            clips = [Clip(record.frames(m, used), pts[used]) for m in record.members]
        else:
            # each frame x264 is fed is decoded just before, and stays in cache; those
            # it is not fed (dropped by the frame rate, after the span) are not decoded
            lazy = [Clip(record.lazy_frames(m), pts) for m in record.members]
            clips = recompress(lazy, params, times=times)  # the frames nearest the times, once
            if not repeat and len(clips[0]) < len(times):
                raise ValueError(f"times {np.round(times, 4).tolist()} s map to repeated frames "
                                 f"after re-encoding at {params.fps} fps: the frame rate is too "
                                 "low for this spacing")
        if any(c.frames.shape != clips[0].frames.shape for c in clips):
            raise ValueError("members differ in shape after decoding")
        pick = nearest(clips[0].pts, times)  # one frame per time, repeats where allowed
        frames = np.stack([fit_to(c.frames[pick], self.size) for c in clips])
        return Sample(SampleInfo(record.key, record.meta, params, record.label), frames)


def made(records: Iterator, make, hollow: int = 0, known_bad: frozenset = frozenset()
         ) -> Iterator["Sample | Skip"]:
    """Records -> samples. A BadSample or a record ``make`` fails on becomes a logged
    :class:`Skip`. The first ``hollow`` good records (a resumed epoch's batches already
    trained on) pass as hollow samples, nothing decoded; the broken ones among them,
    counted before, and those in ``known_bad`` are left out."""
    for record in records:
        if hollow > 0:
            if not isinstance(record, BadSample) and record.key not in known_bad:
                hollow -= 1
                yield Sample(SampleInfo(record.key, {}, None))
            continue
        if isinstance(record, BadSample):
            log.warning("skipped %s:%s: %s", record.shard, record.key, record.reason)
            yield Skip(record.shard, record.key, record.reason)
            continue
        try:
            yield make(record)
        except SAMPLE_ERRORS as e:
            log.warning("skipped %s %s: %s", "pair" if record.label is None else "clip",
                        record.key, e)
            yield Skip(record.shard, record.key, str(e))


def batched(samples: Iterator, batch_size: int, drop_last: bool = False
            ) -> Iterator[tuple[list, list]]:
    """Samples -> (``batch_size`` samples, the skips since the last batch). The last
    batch may be short (dropped with ``drop_last``); skips met after it come alone,
    with no samples."""
    batch: list = []
    skips: list = []
    for item in samples:
        if isinstance(item, Skip):
            skips.append(item)
            continue
        batch.append(item)
        if len(batch) == batch_size:
            yield batch, skips
            batch, skips = [], []
    if drop_last and len(batch) < batch_size:
        batch = []
    if batch or skips:
        yield batch, skips
