"""The streaming loader: pair shards in, batches a model can train on out.

Worker processes (``PairDataset``): read a pair, decode only the frames it needs,
draw CompressionParams once per pair, ``recompress`` both clips, pick the recipe's
frames by time, bring both members to a fixed size with the same operation, and
batch them as uint8. The device stage (``PairAugment`` + aligned mixup) runs in the
main process on the GPU when there is one, otherwise inside the workers so that it
is spread over the cores (``PairLoader``).

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
import logging
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import storage
from .augment import PairAugment
from .clip import Clip
from .compression import CompressionParams, CompressionSampler, fps_filter, recompress
from .mixup import mix_pairs
from .sampling import nearest_indices, recipe_times
from .shards import BadSample, PairRecord, read_shard
from .video import VideoDecodeError

log = logging.getLogger("dfaug.loader")
MODES = ("frame", "sequence")


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


def fit_to(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (T, h, w, 3) uint8 so the frames cover ``size`` (H, W), keeping the aspect,
    then cut the centre: the same operation for every frame and both members."""
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


@dataclass
class Batch:
    """What a worker hands over: uint8 pairs, or model inputs when it ran the device stage."""

    pairs: Optional[torch.Tensor] = None      # (B, 2, T, 3, H, W) uint8
    x: Optional[torch.Tensor] = None
    y: Optional[torch.Tensor] = None
    keys: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (shard, key, reason) since the last batch
    split: int = 0          # the (rank, worker) split that made it
    hollow: bool = False    # a replayed batch of a resumed epoch: keys only, no data

    def pin_memory(self):  # called by DataLoader(pin_memory=True)
        if self.pairs is not None:
            self.pairs = self.pairs.pin_memory()
        return self


class PairDataset(torch.utils.data.IterableDataset):
    """Pairs from shards, recompressed and sampled, batched in the worker.

    ``mode``: ``"frame"`` (the recipe's 8 frames per pair) or ``"sequence"`` (7 frames
    1/15 s apart). ``size``: (H, W) the members are brought to (covering, centre cut).
    ``compression``: a CompressionSampler, or None for no re-encoding.
    ``augment``: a PairAugment (or preset name) to run in the worker (CPU training);
    None hands uint8 pairs to the main process. ``shuffle_buffer``: records mixed
    within a split; they hold no frames, so it costs a few kB a record and about
    0.3 ms each to index (benchmarks/sim_shuffle.py says why 1024).
    ``rank``/``world_size``: default to torch.distributed's when it is initialised.
    """

    def __init__(self, shards, *, mode: str = "frame", batch_size: int = 8,
                 size: tuple[int, int] = (288, 224),
                 compression: Optional[CompressionSampler] = CompressionSampler(),
                 augment: Union[PairAugment, str, None] = None, shuffle_buffer: int = 1024,
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
        self.shards = expand_shards(shards)
        self.mode, self.batch_size, self.size = mode, batch_size, tuple(size)
        self.compression = compression
        self.augment = PairAugment(augment) if isinstance(augment, str) else augment
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

    # ------------------------------------------------------------- splitting

    def _split(self) -> tuple[int, int]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def _records(self, split: int, n_splits: int) -> Iterator:
        """This split's records, read lazily: the shuffle buffer holds metadata and
        where the frames lie, and a pair's bytes are read when it is made."""
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.shards))
        shards = [self.shards[i] for i in order]
        if len(shards) >= n_splits:
            for path in shards[split::n_splits]:
                yield from read_shard(path, lazy=True)
        else:
            if split == 0 and self.epoch == 0:
                log.warning("%d shards for %d loader splits: every split reads every shard; "
                            "write more, smaller shards", len(shards), n_splits)
            n = 0
            for path in shards:
                for record in read_shard(path, lazy=True):
                    if n % n_splits == split:
                        yield record
                    n += 1

    # ------------------------------------------------------------- one pair

    def pair_rng(self, key: str) -> np.random.Generator:
        """The generator of one pair's compression draw: a function of (seed, epoch, key)
        only, so a pair gets the same settings whatever the ranks, workers and order."""
        return np.random.default_rng([self.seed, self.epoch, zlib.crc32(key.encode())])

    def pair_params(self, key: str) -> Optional[CompressionParams]:
        """The compression settings of pair ``key`` this epoch (None: not re-encoded)."""
        return None if self.compression is None else self.compression.sample(self.pair_rng(key))

    def make_pair(self, record: PairRecord) -> np.ndarray:
        """(2, T, 3, H, W) uint8 of one pair. Raises ValueError on a broken sample."""
        pts = record.pts
        times = recipe_times(pts[0], self.mode)
        used = nearest_indices(pts, times)  # raises when the clip is too short
        params = self.pair_params(record.key)
        if params is None:
            real, fake = record.clips(used)
        else:
            first, last = encode_span(pts, used, params)
            # each frame x264 is fed is decoded just before, and stays in cache; those
            # it is not fed (dropped by the frame rate, after the span) are not decoded
            members = [Clip(record.lazy_frames(m), pts) for m in ("real", "fake")]
            out_real, out_fake = recompress(members, params, span=(first, last))
            idx = nearest_indices(out_real.pts, times)
            real, fake = out_real.take(idx), out_fake.take(idx)
        if real.frames.shape != fake.frames.shape:
            raise ValueError("members differ in shape after decoding")
        pair = np.stack([fit_to(real.frames, self.size), fit_to(fake.frames, self.size)])
        return pair

    # ------------------------------------------------------------- stream

    def __iter__(self) -> Iterator[Batch]:
        split, n_splits = self._split()
        rng = np.random.default_rng([self.seed, self.epoch, split])
        replay = self.replay.get(split, 0)
        buffer: list = []
        batch: list = []
        skipped: list = []
        emitted = 0

        def emit() -> Batch:
            nonlocal batch, skipped, emitted
            if emitted < replay:
                out = Batch(keys=[k for k, _ in batch], hollow=True)
            elif batch:
                out = self._collate(batch, self.batch_generator(split, emitted))
            else:
                out = Batch()
            emitted += bool(batch)
            out.skipped, out.split, skipped, batch = skipped, split, [], []
            return out

        def take(record):
            if emitted < replay:  # replaying: skip what was found broken, decode nothing
                if not isinstance(record, BadSample) and record.key not in self.known_bad:
                    batch.append((record.key, None))
                return
            if isinstance(record, BadSample):
                skipped.append((record.shard, record.key, record.reason))
                log.warning("skipped %s:%s: %s", record.shard, record.key, record.reason)
                return
            try:
                batch.append((record.key, self.make_pair(record)))
            except (ValueError, VideoDecodeError, KeyError, RuntimeError, OSError) as e:
                skipped.append((record.shard, record.key, str(e)))
                log.warning("skipped pair %s: %s", record.key, e)

        for record in self._records(split, n_splits):
            if len(buffer) < self.shuffle_buffer:
                buffer.append(record)
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], record = record, buffer[i]
            take(record)
            if len(batch) == self.batch_size:
                yield emit()
        rng.shuffle(buffer)
        for record in buffer:
            take(record)
            if len(batch) == self.batch_size:
                yield emit()
        if self.drop_last and len(batch) < self.batch_size:
            batch = []
        if batch or skipped:  # the last, partial batch; or only the skip reports
            yield emit()

    def _collate(self, batch: list, gen: torch.Generator) -> Batch:
        keys = [k for k, _ in batch]
        pairs = torch.from_numpy(np.stack([p for _, p in batch]))   # (B, 2, T, 3, H, W)
        if self.augment is None:
            return Batch(pairs=pairs, keys=keys)
        x, y = device_stage(pairs, self.augment, gen, self.mode)
        return Batch(x=x, y=y, keys=keys)


def encode_span(pts: np.ndarray, used: np.ndarray, params: CompressionParams) -> tuple[int, int]:
    """(first, last) input frames to re-encode so that the output frames a sample picks
    (those nearest to the times the ``used`` input frames were picked for) are among
    those :func:`recompress` returns.

    The used frames' own span, and one more frame each side when ``params`` reduce
    the frame rate: dropped frames can move the nearest output frame just outside
    (e.g. 25 fps clips at 18 fps); without a reduction the outputs are the inputs.
    """
    first, last = int(used[0]), int(used[-1])
    if len(fps_filter(pts, params.fps)[0]) < len(pts):
        first, last = max(0, first - 1), min(len(pts) - 1, last + 1)
    return first, last


def device_stage(pairs: torch.Tensor, augment: PairAugment, gen: torch.Generator,
                 mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """PairAugment + aligned mixup. Frame mode: every frame is its own pair (own draw,
    own t): x (B*T, 3, h, w). Sequence mode: one draw and one t per sequence: x (B, T, ...)."""
    if mode == "frame":
        b, m, t = pairs.shape[:3]
        pairs = pairs.transpose(1, 2).reshape(b * t, m, 1, *pairs.shape[3:])
    return mix_pairs(augment(pairs, gen), gen, mode=mode)


PREFETCH_FACTOR = 4  # PairLoader's default; benchmarks/sim_prefetch.py says why


class PairLoader:
    """Iterate (x, y) batches over pair shards, for one epoch at a time.

    ``device``: where the device stage runs ("cuda" when available, else "cpu"). On
    the CPU the workers run it; on CUDA they hand pinned uint8 pairs over and the
    main process augments on the GPU. ``prefetch_factor``: batches each worker may
    have ready or in hand ahead of the one being yielded (torch's default is 2).
    Batches are yielded in a fixed worker order (that keeps them reproducible), so a
    worker whose batch holds many re-encoded pairs holds the others up once they run
    out of slack: with 16 workers, 4 instead of 2 gave 9% more batches per second in
    ``benchmarks/sim_prefetch.py``. Other arguments go to :class:`PairDataset`.
    ``skipped`` lists (shard, key, reason) of the pairs skipped so far.
    """

    def __init__(self, shards, *, augment: Union[PairAugment, str] = "re", mode: str = "frame",
                 batch_size: int = 8, num_workers: int = 0, device: Optional[str] = None,
                 seed: int = 0, prefetch_factor: int = PREFETCH_FACTOR, **dataset_args):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.augment = PairAugment(augment) if isinstance(augment, str) else augment
        on_cpu = self.device.type == "cpu"
        self.dataset = PairDataset(shards, mode=mode, batch_size=batch_size, seed=seed,
                                   augment=self.augment if on_cpu else None, **dataset_args)
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

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self._loader:
            if batch.hollow:
                continue
            self.skipped.extend(batch.skipped)
            self._epoch_skipped.extend(batch.skipped)
            self.counts["skipped"] += len(batch.skipped)
            if batch.x is None and batch.pairs is None:
                continue
            self.counts["pairs"] += len(batch.keys)
            number = self._done[batch.split]
            self._done[batch.split] += 1  # before the yield: a checkpoint taken after
            if batch.x is not None:       # training on this batch must count it
                yield batch.x, batch.y
            else:
                pairs = batch.pairs.to(self.device, non_blocking=True)
                gen = self.dataset.batch_generator(batch.split, number)
                yield device_stage(pairs, self.augment, gen, self.mode)
        self.dataset.replay, self.dataset.known_bad = {}, set()  # the epoch is complete


def _identity(batch):
    return batch
