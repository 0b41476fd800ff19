"""Pair shards: tar files of aligned real/fake clips, readable by webdataset's tools.

One sample per aligned pair, three members sharing the sample's key:
``KEY.real.<fmt>`` and ``KEY.fake.<fmt>`` (the clips' frames in a storage format of
:mod:`dfaug.storage`) and ``KEY.json`` (metadata: timestamps, frame size, storage
format, and whatever the writer was given: video names, frame numbers, crop box,
label, source size). A single clip (a fake whose original is unknown, a real with no
fake, a data set without pairs) is a sample with one frame member, named by its
label (``KEY.real.<fmt>`` or ``KEY.fake.<fmt>``), and ``"members": ["real"]`` or
``["fake"]`` in its metadata; a sample without ``members`` is a pair, so a missing
member of a pair is reported, never read as a single clip. Keys contain no dot, as
webdataset splits member names at the first dot.

Shards are written under a temporary name and renamed when complete, so a crashed
writer never leaves a half-written ``.tar`` behind. Beside each shard the writer puts
its index, ``<shard>.index.json`` (:func:`index_path`): the keys of its samples in
order. A reader of a shard cut short uses it to name every sample lost; without one
(a shard from elsewhere) it still says that the rest of the shard is lost.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from typing import Iterator, Optional, Union

import numpy as np

from . import storage
from .clip import Clip
from .formats import DEFAULT_FORMAT

INDEX_SUFFIX = ".index.json"


def index_path(shard: str) -> str:
    """The index file written beside ``shard``: ``{"samples": N, "keys": [...]}``."""
    return shard + INDEX_SUFFIX


def read_index(shard: str) -> Optional[list]:
    """The keys the writer put in ``shard``, in order; None without a readable index."""
    try:
        with open(index_path(shard)) as f:
            keys = json.load(f)["keys"]
        return keys if isinstance(keys, list) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class ShardMember:
    """Where one member's bytes lie in a shard file, to be read when they are needed
    (:func:`read_shard` with ``lazy=True``)."""

    path: str
    offset: int
    size: int
    mtime_ns: int  # the file's modification time when it was indexed

    def read(self) -> bytes:
        """The member's bytes; a ValueError if the file was modified since it was
        indexed (its bytes may no longer be this member's, or this pair's)."""
        return self.read_ranges([(0, self.size)])[0]

    def read_ranges(self, ranges) -> list[bytes]:
        """The bytes of each (start, stop) range of the member (offsets within it), in
        one opening of the file; the same checks as :meth:`read`. Storage reads a
        clip's header and then only the frames it decodes this way."""
        ranges = [(int(a), int(b)) for a, b in ranges]
        if any(not 0 <= a <= b <= self.size for a, b in ranges):
            raise ValueError(f"ranges must lie within the member's {self.size} bytes, "
                             f"got {ranges}")
        with open(self.path, "rb") as f:
            if os.fstat(f.fileno()).st_mtime_ns != self.mtime_ns:
                raise ValueError(f"{self.path} changed after it was indexed: its member at "
                                 f"byte {self.offset} may not be the one indexed")
            out = [_pread(f.fileno(), b - a, self.offset + a) for a, b in ranges]
        for (a, b), data in zip(ranges, out):
            if len(data) != b - a:
                raise ValueError(f"{self.path} changed after it was indexed: the member at "
                                 f"byte {self.offset} is cut short ({self.offset + a + len(data)} "
                                 f"of the {self.offset + b} bytes it needs)")
        return out


def _pread(fd: int, size: int, at: int) -> bytes:
    """``size`` bytes at ``at``, fewer only at the end of the file (a read may return
    less than asked, e.g. on network file systems)."""
    parts = []
    while size > 0:
        part = os.pread(fd, size, at)
        if not part:
            break
        parts.append(part)
        size, at = size - len(part), at + len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


MEMBERS = ("real", "fake")


@dataclass
class PairRecord:
    """A pair (or a single clip) as stored: metadata decoded, frames still encoded
    (decode what you need).

    ``real`` / ``fake``: the members' stored bytes, or where they lie in the shard
    (:class:`ShardMember`) when the record was read lazily; decoding reads them then.
    A single clip has one of them, the other is None.
    """

    key: str
    meta: dict
    real: Union[bytes, ShardMember, None]
    fake: Union[bytes, ShardMember, None]
    shard: str = ""

    @property
    def pts(self) -> np.ndarray:
        return np.asarray(self.meta["pts"], dtype=np.float64)

    @property
    def members(self) -> tuple[str, ...]:
        """("real", "fake") for a pair; ("real",) or ("fake",) for a single clip."""
        return tuple(m for m in MEMBERS if self._data_or_none(m) is not None)

    @property
    def label(self) -> Optional[float]:
        """None for a pair; 0.0 for a single real clip, 1.0 for a single fake one."""
        members = self.members
        return None if len(members) == 2 else float(members == ("fake",))

    def frames(self, member: str, indices=None, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Decode frames of ``member`` (``"real"`` or ``"fake"``), only ``indices`` if given;
        ``out``: a whole-clip buffer to fill at the frames' own indices (see
        :func:`dfaug.storage.decode_frames`)."""
        frames = storage.decode_frames(self._data(member), self.meta["format"], indices, out=out)
        return self._checked(member, frames)

    def lazy_frames(self, member: str) -> storage.StoredFrames:
        """``member``'s frames, decoded only when indexed (:class:`dfaug.storage.StoredFrames`),
        e.g. ``Clip(record.lazy_frames("real"), record.pts)`` for :func:`dfaug.recompress`."""
        return self._checked(member, storage.StoredFrames(self._data(member), self.meta["format"]))

    def _data_or_none(self, member: str) -> Union[bytes, ShardMember, None]:
        if member not in MEMBERS:
            raise ValueError(f"member must be 'real' or 'fake', got {member!r}")
        return self.real if member == "real" else self.fake

    def _data(self, member: str) -> Union[bytes, ShardMember]:
        """The member's bytes, or where they lie: storage then reads only the frames
        it decodes."""
        data = self._data_or_none(member)
        if data is None:
            raise ValueError(f"{self.key} is a single {self.members[0]} clip: it has no "
                             f"{member} member")
        return data

    def _checked(self, member: str, frames):
        """``frames``, if their size is the metadata's; a clear ValueError otherwise."""
        h, w = self.meta["height"], self.meta["width"]
        if tuple(frames.shape[1:]) != (h, w, 3):
            raise ValueError(f"{self.key}.{member}: frames {tuple(frames.shape[1:])} do not match "
                             f"the metadata's {h}x{w}")
        return frames

    def clips(self, indices=None) -> tuple[Clip, Clip]:
        """(real, fake) Clips of the frames at ``indices`` (all if None)."""
        pts = self.pts if indices is None else self.pts[np.asarray(indices)]
        return Clip(self.frames("real", indices), pts), Clip(self.frames("fake", indices), pts)


class PairShardWriter:
    """Write aligned pairs (:meth:`write`) and single clips (:meth:`write_clip`) into
    tar shards, rolling over at a size or sample limit.

    ``pattern``: shard path with one integer field, e.g. ``"out/pairs-%06d.tar"``.
    ``max_bytes`` / ``max_pairs``: start a new shard before exceeding either
    (``max_pairs`` counts samples: pairs and single clips).
    ``fmt``: storage format of the frames (:data:`dfaug.storage.FORMATS`).
    Use as a context manager; ``shards`` lists the completed shard paths.
    """

    def __init__(self, pattern: str, *, max_bytes: int = 1 << 30, max_pairs: Optional[int] = None,
                 fmt: str = DEFAULT_FORMAT, start_index: int = 0):
        try:
            pattern % 0
        except TypeError:
            raise ValueError(f"pattern must contain one integer field like %06d, got {pattern!r}") from None
        if fmt not in storage.FORMATS:
            raise ValueError(f"fmt must be one of {storage.FORMATS}, got {fmt!r}")
        if max_bytes <= 0 or (max_pairs is not None and max_pairs <= 0):
            raise ValueError("max_bytes and max_pairs must be positive")
        self.pattern, self.max_bytes, self.max_pairs, self.fmt = pattern, max_bytes, max_pairs, fmt
        self.index = start_index
        self.shards: list[str] = []
        self._tar = None
        self._path = None
        self._size = 0
        self._pairs = 0
        self._keys: set[str] = set()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, key: str, real: Clip, fake: Clip, meta: Optional[dict] = None) -> None:
        """Add one aligned pair. ``meta`` must be JSON-serialisable."""
        self._check_key(key)
        if real.frames.shape != fake.frames.shape:
            raise ValueError(f"{key}: real {real.frames.shape} and fake {fake.frames.shape} "
                             "differ: not an aligned pair")
        if not np.array_equal(real.pts, fake.pts):
            raise ValueError(f"{key}: real and fake timestamps differ: not an aligned pair")
        self._add(key, {"real": real, "fake": fake}, meta, {})

    def write_clip(self, key: str, clip: Clip, label: str, meta: Optional[dict] = None) -> None:
        """Add one single clip, ``label`` ``"real"`` or ``"fake"``: a fake whose
        original is unknown, a real with no fake, a clip of a data set without pairs."""
        self._check_key(key)
        if label not in MEMBERS:
            raise ValueError(f"label must be one of {MEMBERS}, got {label!r}")
        self._add(key, {label: clip}, meta, {"members": [label]})

    def _check_key(self, key) -> None:
        if not isinstance(key, str) or not key or "." in key or "/" in key:
            raise ValueError(f"key must be a non-empty string without '.' or '/', got {key!r}")
        if key in self._keys:
            raise ValueError(f"key {key!r} was already written")

    def _add(self, key: str, clips: dict, meta: Optional[dict], reserved: dict) -> None:
        first = next(iter(clips.values()))
        record = dict(meta or {})
        for name in ("pts", "format", "height", "width", "frames", "members"):
            record.pop(name, None)
        record.update(pts=first.pts.tolist(), format=self.fmt, height=first.height,
                      width=first.width, frames=len(first), **reserved)
        members = [(f"{key}.json", json.dumps(record).encode())]
        members += [(f"{key}.{m}.{self.fmt}", storage.encode_frames(clip.frames, self.fmt))
                    for m, clip in clips.items()]
        size = sum(512 + len(data) + 511 for _, data in members)
        if self._tar is not None and (self._size + size > self.max_bytes or
                                      (self.max_pairs and self._pairs >= self.max_pairs)):
            self._finish()
        if self._tar is None:
            self._open()
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0  # reproducible shards
            self._tar.addfile(info, io.BytesIO(data))
        self._size += size
        self._pairs += 1
        self._keys.add(key)
        self._shard_keys.append(key)

    def close(self) -> list[str]:
        """Finish the open shard; returns every completed shard path."""
        if self._tar is not None:
            self._finish()
        return self.shards

    def abort(self) -> None:
        """Drop the open shard (its temporary file) after an error."""
        if self._tar is not None:
            self._tar.close()
            os.remove(self._path + ".tmp")
            self._tar = None

    def _open(self):
        self._path = self.pattern % self.index
        os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
        self._tar = tarfile.open(self._path + ".tmp", "w", format=tarfile.USTAR_FORMAT)
        self._size = 0
        self._pairs = 0
        self._shard_keys = []

    def _finish(self):
        self._tar.close()
        # the index first: a complete shard always has its own beside it
        index = index_path(self._path)
        with open(index + ".tmp", "w") as f:
            json.dump({"samples": len(self._shard_keys), "keys": self._shard_keys}, f)
        os.replace(index + ".tmp", index)
        os.replace(self._path + ".tmp", self._path)
        self.shards.append(self._path)
        self._tar = None
        self.index += 1


@dataclass
class BadSample:
    """A sample that could not be read: where, and why. Readers yield it instead of
    raising so that one broken sample does not end the shard."""

    shard: str
    key: Optional[str]
    reason: str


def read_shard(path: str, *, lazy: bool = False) -> Iterator["PairRecord | BadSample"]:
    """Stream the pairs of one shard in order.

    A sample missing a member or with unreadable metadata comes out as a
    :class:`BadSample`; so does a truncated or corrupt tar, after the samples before
    the damage, and a tar cut between two samples (it lacks the end-of-archive
    block). After such damage every sample the shard's index lists and the file no
    longer holds comes out as a BadSample of its own, so that each is counted; a
    shard without an index gives one BadSample saying that the rest is lost.
    Frames are decoded later, by :meth:`PairRecord.frames`.

    ``lazy``: read only the metadata now; a record's frame members stay in the file
    (:class:`ShardMember`) until they are decoded. A record then costs a few kB instead
    of the pair's bytes, which is what lets a loader's shuffle buffer hold many.
    """
    # Random-access mode ("r:"), not stream mode ("r|"): a member is read from the file
    # straight into its bytes, where stream mode copies every member three to four
    # times through its buffer (6 ms against 1.5 ms a 8.4 MB pair on dev-cpu).
    try:
        tar = tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as e:
        yield BadSample(path, None, f"not a readable tar shard ({e})")
        return
    with tar:
        group: dict = {}
        current = None
        seen: list = []  # keys yielded, whole or broken
        stat = os.fstat(tar.fileobj.fileno())
        try:
            for info in tar:
                if not info.isfile():
                    continue
                key, _, suffix = info.name.partition(".")
                if current is not None and key != current:
                    seen.append(current)
                    yield _record(path, current, group)
                    group = {}
                current = key
                if not lazy or suffix == "json":
                    group[suffix] = tar.extractfile(info).read()
                elif info.offset_data + info.size > stat.st_size:  # what read() would find
                    raise tarfile.ReadError(f"{info.name} runs past the end of the file")
                else:
                    group[suffix] = ShardMember(path, info.offset_data, info.size,
                                                stat.st_mtime_ns)
        except (tarfile.TarError, OSError, EOFError) as e:
            if current is not None:
                seen.append(current)
            yield from _lost(path, seen, f"truncated or corrupt tar ({e})", cut=current)
            return
        if current is not None:
            seen.append(current)
            yield _record(path, current, group)
        # tarfile ends quietly where the file ends; a complete tar ends with a zero
        # block, so without one the samples after a cut would be lost unreported
        tar.fileobj.seek(tar.offset)
        end = tar.fileobj.read(tarfile.BLOCKSIZE)
        if len(end) < tarfile.BLOCKSIZE or end.count(0) != tarfile.BLOCKSIZE:
            yield from _lost(path, seen, f"truncated tar: no end-of-archive block after "
                             f"sample {current!r}")


def _lost(path: str, seen: list, why: str, cut: Optional[str] = None) -> Iterator[BadSample]:
    """BadSamples for the damage: the sample ``cut`` (if any), then one for each sample
    of the shard's index not among those ``seen``; without an index, one saying that
    the rest of the shard is lost."""
    keys = read_index(path)
    if keys is None:
        yield BadSample(path, cut, f"{why}; the samples after it are lost (how many is "
                        f"unknown: no index {os.path.basename(index_path(path))} beside it)")
        return
    if cut is not None:
        yield BadSample(path, cut, why)
    done = set(seen)
    lost = [k for k in keys if k not in done]
    for k in lost:
        yield BadSample(path, k, f"lost: {why} before it ({len(lost) + (cut is not None)} of "
                        f"the index's {len(keys)} samples are missing or cut)")


def _record(path: str, key: str, group: dict) -> "PairRecord | BadSample":
    try:
        meta = json.loads(group["json"])
        fmt = meta["format"]
        members = meta.get("members", list(MEMBERS))
        if not (isinstance(members, list) and members and set(members) <= set(MEMBERS)
                and len(set(members)) == len(members)):
            raise ValueError(f"members must be ['real'], ['fake'] or both, got {members!r}")
        extra = sorted(f"{m}.{fmt}" for m in MEMBERS if m not in members and f"{m}.{fmt}" in group)
        if extra:
            raise ValueError(f"member {extra[0]} is not among the metadata's members {members}")
        data = {m: group[f"{m}.{fmt}"] for m in members}
        return PairRecord(key, meta, data.get("real"), data.get("fake"), path)
    except (KeyError, ValueError, TypeError) as e:
        return BadSample(path, key, f"incomplete sample or unreadable metadata "
                                    f"({type(e).__name__}: {e})")
