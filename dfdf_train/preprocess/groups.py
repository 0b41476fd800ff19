"""Videos -> groups, the unit of work and of resuming, and a run's part of them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

from ..sources import Video, list_videos


@dataclass(frozen=True)
class Group:
    """One real video and the fakes aligned with it, or one video cut alone.

    ``real``: the real video, or None for a fake cut alone. ``fakes``: the fakes
    aligned with ``real`` (sorted), or the one fake cut alone. ``problem``: why
    nothing of the group can be used, found from the listing alone (every video of it
    is then reported as skipped). ``note``: why its one video is cut alone as a
    single clip (reported as kept).
    """

    real: Optional[Video]
    fakes: tuple = ()
    problem: Optional[str] = None
    note: Optional[str] = None

    @property
    def key(self) -> str:
        return (self.real or self.fakes[0]).name

    @property
    def videos(self) -> list:
        return ([self.real] if self.real is not None else []) + list(self.fakes)

    @property
    def n_videos(self) -> int:
        return len(self.videos)

    @property
    def alone(self) -> Optional[Video]:
        """The video cut alone as a single clip, if this group is one."""
        return self.videos[0] if self.note is not None and self.problem is None else None


def _keeps_singles(video: Video, single_clips: str) -> bool:
    if single_clips == "auto":
        return video.meta.get("source") != "dfdc"
    return single_clips == "keep"


def group_videos(videos: Sequence[Video], single_clips: str = "auto") -> list[Group]:
    """Groups of ``videos``, sorted by key (the order every shard of a run agrees on)."""
    reals = {v.name: v for v in videos if v.label == "REAL"}
    fakes_of: dict[str, list] = {n: [] for n in reals}
    groups: list[Group] = []
    for v in videos:
        if v.label != "FAKE":
            continue
        if v.original in fakes_of:
            fakes_of[v.original].append(v)
            continue
        why = ("no original listed" if v.original is None else
               f"original {v.original.split('/', 1)[-1]} missing: not a REAL video of the input")
        if _keeps_singles(v, single_clips):
            groups.append(Group(None, (v,), note=f"{why}: cut alone as a single clip"))
        else:
            groups.append(Group(None, (v,), problem=why))
    for name, real in reals.items():
        fakes = tuple(sorted(fakes_of[name], key=lambda f: f.name))
        if fakes:
            groups.append(Group(real, fakes))
        elif _keeps_singles(real, single_clips):
            groups.append(Group(real, note="no FAKE names it as its original: cut alone as "
                                           "a single clip"))
        else:
            groups.append(Group(real, problem="no FAKE names it as its original"))
    return sorted(groups, key=lambda g: g.key)


def plan(inputs: Sequence[str], layout: Optional[str] = None, *, compression: str = "c23",
         splits: Optional[str] = None, split: Optional[str] = None,
         single_clips: str = "auto") -> list[Group]:
    """Every group of every input (see :func:`dfdf_train.sources.list_videos`)."""
    return group_videos(list_videos(inputs, layout, compression=compression, splits=splits,
                                    split=split), single_clips)


def resolve_shard(index: Optional[int], count: Optional[int], env=None) -> tuple[int, int]:
    """(shard index, shard count): the flags, else torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    env = os.environ if env is None else env
    if (index is None) != (count is None):
        raise ValueError("--shard-index and --num-shards go together")
    if index is None:
        index, count = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
    if count < 1:
        raise ValueError(f"--num-shards must be >= 1, got {count}")
    if not 0 <= index < count:
        raise ValueError(f"--shard-index must be in [0, {count - 1}], got {index}")
    return index, count


def shard_groups(groups: Sequence[Group], index: int, count: int) -> list[Group]:
    """Every count-th group of the sorted list: balanced, and the same on every rank."""
    return list(groups[index::count])
