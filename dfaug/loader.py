"""The streaming loader: pair shards in, batches a model can train on out.

``PairDataset`` runs in the worker processes and is assembled from the stages of
:mod:`dfaug.pipeline`:

    epoch_shards -> split_records -> shuffled -> made (SampleMaker) -> batched -> collate
    [-> device stage, in the workers when it runs on the CPU]

Making a sample reads only the frames it needs, draws CompressionParams once per pair,
``recompress``es every member with them, picks the frames nearest to its times and
brings the members to a fixed size with the same operation. The device stage
(:mod:`dfaug.device_stage`; by default PairAugment + aligned mixup) runs in the main
process on the GPU when there is one, otherwise inside the workers so that it is
spread over the cores (``PairLoader``).

Seams: ``times=`` (which frames: :mod:`dfaug.times`), ``mixup=`` (False: the members
apart, labelled 0 and 1), ``device_stage=`` (any callable, or
:class:`dfaug.device_stage.PassThrough` for uint8 batches), ``with_info=`` (batches
carry each row's key, metadata and CompressionParams), and single clips beside pairs
in the shards (:meth:`dfaug.PairShardWriter.write_clip`).

Resuming: ``PairLoader.state_dict()`` after a batch and ``load_state_dict()`` in a
new process continue the epoch with exactly the batches that would have come next.
Every batch's random draws come from a generator seeded by (seed, epoch, split,
batch number), so the workers can replay the batches already trained on "hollow"
(shuffle only: no decoding, no re-encoding, no augmentation) and land on the same
records, the same DataLoader interleaving and the same draws.

Splitting: shards go round-robin to the (rank, worker) splits after a per-epoch
shuffle of the shard list; with fewer shards than splits, every split reads all
shards and keeps every n-th pair. Either way each pair is seen once per epoch, and
the same (seed, epoch, world size, workers) gives the same batches.
"""
from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch

from . import storage, times as frame_times
from .augment import PairAugment
from .compression import CompressionParams, CompressionSampler
from .device_stage import MODES, Augment, Rows, SampleBatch
from .pipeline import SampleMaker, batched, epoch_shards, made, shuffled, split_records
from .shards import PairRecord


def expand_shards(shards: Union[str, Sequence[str]]) -> list[str]:
    """A glob pattern or a list of paths/patterns -> sorted list of existing shard paths."""
    patterns = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    paths = []
    for p in patterns:
        found = sorted(glob.glob(os.fspath(p)))
        if not found:
            raise FileNotFoundError(f"no shard matches {os.fspath(p)!r}")
        paths.extend(found)
    return paths


@dataclass
class Batch:
    """What a worker hands over: the uint8 samples (``data``), or the device stage's
    output (``out``) when it ran in the worker."""

    data: Optional[SampleBatch] = None
    out: Any = None
    staged: bool = False    # the device stage ran in the worker: ``out`` is its output
    keys: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (shard, key, reason) since the last batch
    split: int = 0          # the (rank, worker) split that made it
    hollow: bool = False    # a replayed batch of a resumed epoch: keys only, no data

    def pin_memory(self):  # called by DataLoader(pin_memory=True)
        if self.data is not None:
            self.data = self.data.pin_memory()
        return self


def collate(samples: list) -> SampleBatch:
    """Made samples -> one SampleBatch: the pairs stacked, then the single clips."""
    lengths = {s.frames.shape[1] for s in samples}
    if len(lengths) > 1:
        raise ValueError(f"the samples of a batch have {sorted(lengths)} frames: a times= "
                         "choice must give every clip the same number of times")
    pairs = [s for s in samples if s.info.is_pair]
    singles = [s for s in samples if not s.info.is_pair]
    stack = (lambda group: torch.from_numpy(np.stack([s.frames for s in group])) if group else None)
    labels = torch.tensor([s.info.label for s in singles], dtype=torch.float32) if singles else None
    return SampleBatch(stack(pairs), stack(singles), labels, [s.info for s in pairs + singles])


def _check_flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _check_times(times, mode: str):
    if times is None:
        return frame_times.for_mode(mode)
    if not callable(times):
        raise ValueError("times must be a callable (pts, rng) -> seconds, e.g. "
                         f"dfaug.times.uniform(16) or dfaug.times.window(16, 1/30), got {times!r}")
    return times


def _check_stage(device_stage):
    if device_stage is not None and not callable(device_stage):
        raise ValueError("device_stage must be a callable (batch, generator) -> outputs, e.g. "
                         f"dfaug.device_stage.Augment or PassThrough, got {device_stage!r}")
    return device_stage


class PairDataset(torch.utils.data.IterableDataset):
    """Pairs (and single clips) from shards, recompressed and sampled, batched in the worker.

    ``mode``: ``"frame"`` (every sampled frame an image of its own; the recipe's 8
    frames per pair by default) or ``"sequence"`` (clips of frames; the recipe's 7
    frames 1/15 s apart by default). ``times``: which frames, a callable
    ``(pts, rng) -> seconds`` (:mod:`dfaug.times`: ``uniform(n)``, ``window(n, step)``,
    the recipe's); None: the recipe's for ``mode``. ``size``: (H, W) the members are
    brought to (covering, centre cut). ``compression``: a CompressionSampler, or None
    for no re-encoding.
    ``device_stage``: a device stage to run in the worker (CPU training), or
    ``augment`` (a PairAugment or preset name) and ``mixup`` to build the default one
    (:class:`dfaug.device_stage.Augment`); neither hands uint8 SampleBatches to the
    main process. ``shuffle_buffer``: records mixed within a split; they hold no
    frames, so it costs a few kB a record and about 0.3 ms each to index
    (benchmarks/sim_shuffle.py says why 1024).
    ``rank``/``world_size``: default to torch.distributed's when it is initialised.
    """

    def __init__(self, shards, *, mode: str = "frame", batch_size: int = 8,
                 size: tuple[int, int] = (288, 224),
                 compression: Optional[CompressionSampler] = CompressionSampler(),
                 augment: Union[PairAugment, str, None] = None, mixup: bool = True,
                 times=None, device_stage=None, shuffle_buffer: int = 1024,
                 seed: int = 0, rank: Optional[int] = None, world_size: Optional[int] = None,
                 drop_last: bool = False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and min(size) > 0):
            raise ValueError(f"size must be (height, width), got {size!r}")
        if shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {shuffle_buffer!r}")
        if compression is not None and not isinstance(compression, CompressionSampler):
            raise ValueError(f"compression must be a CompressionSampler or None, got {compression!r}")
        _check_flag("mixup", mixup)
        if device_stage is not None and augment is not None:
            raise ValueError("pass augment (the default device stage's) or device_stage, not both")
        self.shards = expand_shards(shards)
        self.mode, self.batch_size, self.size = mode, batch_size, tuple(size)
        self.compression = compression
        self.times = _check_times(times, mode)
        self.stage = _check_stage(device_stage) if augment is None else \
            Augment(augment, mode, mixup=mixup)
        self.shuffle_buffer, self.seed, self.drop_last = shuffle_buffer, seed, drop_last
        if rank is None or world_size is None:
            dist = torch.distributed
            ready = dist.is_available() and dist.is_initialized()
            rank = dist.get_rank() if ready else 0
            world_size = dist.get_world_size() if ready else 1
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got {rank} of {world_size}")
        self.rank, self.world_size = rank, world_size
        storage.warm_up()  # here, before the DataLoader forks its workers
        self.epoch = 0
        self.replay: dict = {}         # split -> batches of this epoch to replay hollow
        self.known_bad: set = set()    # keys found broken before the resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batch_generator(self, split: int, number: int) -> torch.Generator:
        """The generator of one batch's augmentation and mixup draws."""
        seed = np.random.SeedSequence([self.seed, self.epoch, split, number]).generate_state(2)
        return torch.Generator().manual_seed(int(seed[0]) << 31 ^ int(seed[1]))

    def maker(self) -> SampleMaker:
        """This epoch's sample maker (its draws are keyed by seed, epoch and key)."""
        return SampleMaker(self.times, self.size, self.compression, self.seed, self.epoch)

    def pair_params(self, key: str) -> Optional[CompressionParams]:
        """The compression settings of sample ``key`` this epoch (None: not re-encoded)."""
        return self.maker().params(key)

    def make_sample(self, record: PairRecord):
        """One record's :class:`dfaug.pipeline.Sample`. Raises ValueError (and the
        other errors of :data:`dfaug.pipeline.SAMPLE_ERRORS`) on a broken sample."""
        return self.maker()(record)

    def _split(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def __iter__(self) -> Iterator[Batch]:
        split, n_splits = self._split()
        records = split_records(epoch_shards(self.shards, self.seed, self.epoch), split, n_splits,
                                warn=split == 0 and self.epoch == 0)
        records = shuffled(records, self.shuffle_buffer,
                           np.random.default_rng([self.seed, self.epoch, split]))
        replay = self.replay.get(split, 0)
        samples = made(records, self.make_sample, hollow=replay * self.batch_size,
                       known_bad=frozenset(self.known_bad))
        number = 0
        for group, skips in batched(samples, self.batch_size, self.drop_last):
            keys = [s.key for s in group]
            if group and group[0].frames is None:
                out = Batch(keys=keys, hollow=True)
            elif group:
                out = self._collate(group, self.batch_generator(split, number))
            else:
                out = Batch()
            number += bool(group)
            out.skipped = [(s.shard, s.key, s.reason) for s in skips]
            out.split = split
            yield out

    def _collate(self, group: list, gen: torch.Generator) -> Batch:
        data = collate(group)
        keys = [info.key for info in data.info]
        if self.stage is None:
            return Batch(data=data, keys=keys)
        return Batch(out=self.stage(data, gen), staged=True, keys=keys,
                     data=SampleBatch(info=data.info))


PREFETCH_FACTOR = 4  # PairLoader's default; benchmarks/sim_prefetch.py says why


class PairLoader:
    """Iterate batches over pair shards, for one epoch at a time: ``(x, y)``, or
    ``(x, y, info)`` with ``with_info``.

    ``device``: where the device stage runs ("cuda" when available, else "cpu"). On
    the CPU the workers run it; on CUDA they hand pinned uint8 samples over and the
    main process runs it on the GPU. ``device_stage``: the stage (any callable
    ``(SampleBatch, generator) -> outputs``, :mod:`dfaug.device_stage`); by default
    :class:`dfaug.device_stage.Augment` of ``augment`` with ``mixup``.
    ``with_info``: yield ``(x, y, info)``, ``info[i]`` the :class:`RowInfo` of row i
    of x (its sample's key, stored metadata and CompressionParams, and which member);
    with a custom stage that returns no rows, one RowInfo per sample (member
    ``"pair"``, or a single clip's ``"real"`` / ``"fake"``).
    ``prefetch_factor``: batches each worker may have ready or in hand ahead of the
    one being yielded (torch's default is 2). Batches are yielded in a fixed worker
    order (that keeps them reproducible), so a worker whose batch holds many
    re-encoded pairs holds the others up once they run out of slack: with 16
    workers, 4 instead of 2 gave 9% more batches per second in
    ``benchmarks/sim_prefetch.py``. Other arguments go to :class:`PairDataset`.
    ``skipped`` lists (shard, key, reason) of the samples skipped so far; ``counts``
    the pairs, single clips and skips.
    """

    def __init__(self, shards, *, augment: Union[PairAugment, str] = "tight_erase", mode: str = "frame",
                 batch_size: int = 8, num_workers: int = 0, device: Optional[str] = None,
                 seed: int = 0, prefetch_factor: int = PREFETCH_FACTOR, mixup: bool = True,
                 device_stage=None, with_info: bool = False, **dataset_args):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        _check_flag("mixup", mixup)
        self.with_info = _check_flag("with_info", with_info)
        if device_stage is not None and (augment != "tight_erase" or not mixup):
            raise ValueError("pass augment and mixup (the default device stage's) or "
                             "device_stage, not both")
        self.stage = Augment(augment, mode, mixup=mixup) if device_stage is None \
            else _check_stage(device_stage)
        on_cpu = self.device.type == "cpu"
        self.dataset = PairDataset(shards, mode=mode, batch_size=batch_size, seed=seed,
                                   device_stage=self.stage if on_cpu else None, **dataset_args)
        self.num_workers, self.mode, self.seed = num_workers, mode, seed
        self.skipped: list = []
        self.counts: Counter = Counter()
        self._done: Counter = Counter()   # split -> batches yielded in this epoch
        self._epoch_skipped: list = []
        self._loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=None, num_workers=num_workers,
            pin_memory=not on_cpu, collate_fn=_identity,
            prefetch_factor=prefetch_factor if num_workers else None,
            persistent_workers=False)

    @property
    def augment(self) -> Optional[PairAugment]:
        """The default stage's PairAugment (None with a custom device stage)."""
        return self.stage.augment if isinstance(self.stage, Augment) else None

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.dataset.epoch:
            self.dataset.replay, self.dataset.known_bad = {}, set()
            self._done, self._epoch_skipped = Counter(), []
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict:
        """Where the current epoch stands: enough for :meth:`load_state_dict` to continue
        it in another process with the batches that would have come next."""
        return {"epoch": self.dataset.epoch, "batches": dict(self._done),
                "epoch_skipped": list(self._epoch_skipped), "skipped": list(self.skipped),
                "counts": dict(self.counts), "world": (self.dataset.world_size, self.num_workers)}

    def load_state_dict(self, state: dict) -> None:
        world = (self.dataset.world_size, self.num_workers)
        if tuple(state["world"]) != world:
            raise ValueError(f"the saved loader ran with (world size, workers) {tuple(state['world'])}; "
                             f"this one has {world}: resume with the same setting")
        self.set_epoch(state["epoch"])
        self._done = Counter({int(k): v for k, v in state["batches"].items()})
        self._epoch_skipped = [tuple(s) for s in state["epoch_skipped"]]
        self.skipped = [tuple(s) for s in state["skipped"]]
        self.counts = Counter(state["counts"])
        self.dataset.replay = dict(self._done)
        self.dataset.known_bad = {key for _, key, _ in self._epoch_skipped}

    def __iter__(self) -> Iterator:
        for batch in self._loader:
            if batch.hollow:
                continue
            self.skipped.extend(batch.skipped)
            self._epoch_skipped.extend(batch.skipped)
            self.counts["skipped"] += len(batch.skipped)
            if not batch.staged and batch.data is None:
                continue
            infos = batch.data.info
            singles = sum(not i.is_pair for i in infos)
            self.counts["pairs"] += len(infos) - singles
            if singles:
                self.counts["singles"] += singles
            number = self._done[batch.split]
            self._done[batch.split] += 1  # before the yield: a checkpoint taken after
            out = batch.out               # training on this batch must count it
            if not batch.staged:
                gen = self.dataset.batch_generator(batch.split, number)
                out = self.stage(batch.data.to(self.device, non_blocking=True), gen)
            yield self._finish(out, infos)
        self.dataset.replay, self.dataset.known_bad = {}, set()  # the epoch is complete

    def _finish(self, out, infos: list):
        """The stage's output as the loader yields it: (x, y) or (x, y, info)."""
        rows = None
        if isinstance(out, tuple) and len(out) == 3 and isinstance(out[2], Rows):
            out, rows = out[:2], out[2]
        if not self.with_info:
            return out
        if rows is None:
            info = [RowInfo(i.key, i.member, i.params, i.meta) for i in infos]
        else:
            info = [RowInfo(infos[k].key, member, infos[k].params, infos[k].meta)
                    for k, member in rows]
        return (*out, info) if isinstance(out, tuple) else (out, info)


@dataclass(frozen=True)
class RowInfo:
    """What one row of a batch is: the sample's ``key``, which ``member`` (``"mix"``
    for a mixed pair, ``"real"`` or ``"fake"`` for a pair member apart or a single
    clip), the ``params`` it was re-encoded with (None: not re-encoded) and its stored
    ``meta`` (e.g. the manipulation method, the source video)."""

    key: str
    member: str
    params: Optional[CompressionParams]
    meta: dict


def _identity(batch):
    return batch
