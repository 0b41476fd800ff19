"""The run's output: shards of whole groups, and the commit log that makes it resumable.

A group counts as done once its commit record (``done/*.json``) exists, written
after its shard was renamed into place; ``manifest.jsonl`` and ``skipped.jsonl`` are
rebuilt from the records.
"""
from __future__ import annotations

import json
import logging
import os
import re

from ..files import write_text_atomic
from .work import GroupResult

log = logging.getLogger("dfdf_train.preprocess")

MANIFEST = "manifest.jsonl"
SKIPPED = "skipped.jsonl"
DONE_DIR = "done"


def _records(out_dir: str) -> list[dict]:
    d = os.path.join(out_dir, DONE_DIR)
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f))
    return out


def finished_groups(out_dir: str) -> set:
    """Keys (folder/real video) of the groups committed in ``out_dir``."""
    return {k for r in _records(out_dir) for k in r["groups"]}


def read_manifest(out_dir: str) -> list[dict]:
    """Every sample committed in ``out_dir`` (from the commit records, so also while
    other shards of the run are still going)."""
    return [p for r in _records(out_dir) for p in r["pairs"]]


def merge_reports(out_dir: str) -> tuple[int, int]:
    """Rebuild manifest.jsonl and skipped.jsonl from the commit records.

    Shards of a split run finish in any order and each rebuilds the files: a writer
    checks after writing that no record arrived meanwhile, so the last one to
    finish leaves the complete files. Returns (pairs, reports).
    """
    while True:
        records = _records(out_dir)
        pairs = [json.dumps(p, sort_keys=True) for r in records for p in r["pairs"]]
        reports = [json.dumps(s, sort_keys=True) for r in records for s in r["reports"]]
        write_text_atomic(os.path.join(out_dir, MANIFEST), "".join(x + "\n" for x in pairs))
        write_text_atomic(os.path.join(out_dir, SKIPPED), "".join(x + "\n" for x in reports))
        if len(_records(out_dir)) == len(records):
            return len(pairs), len(reports)


class ShardSink:
    """Samples of whole groups into one shard per commit; then the commit record.

    A group's samples never straddle two shards, and a group counts as done only
    once the record naming it exists, written after its shard was renamed into
    place: a crash at any point leaves only complete shards and re-runs exactly the
    groups without a record.
    """

    def __init__(self, out_dir: str, tag: str, fmt: str, shard_pairs: int, max_groups: int = 64):
        self.out_dir, self.tag, self.fmt = out_dir, tag, fmt
        self.shard_pairs, self.max_groups = shard_pairs, max_groups
        os.makedirs(os.path.join(out_dir, DONE_DIR), exist_ok=True)
        self.seq = self._next_seq()
        self._clean_stale()
        self.writer = None
        self.groups: list = []
        self.pairs: list = []
        self.reports: list = []
        self.shards: list = []

    def _prefix(self) -> str:
        return f"pairs-{self.tag}-"

    def _next_seq(self) -> int:
        seqs = [int(m.group(1)) for n in os.listdir(os.path.join(self.out_dir, DONE_DIR))
                if (m := re.fullmatch(re.escape(self._prefix()) + r"(\d+)\.json", n))]
        return max(seqs) + 1 if seqs else 0

    def _clean_stale(self) -> None:
        # leftovers of a crash: temporary files, and shards renamed but never committed
        for d in (self.out_dir, os.path.join(self.out_dir, DONE_DIR)):
            for n in os.listdir(d):
                m = re.match(re.escape(self._prefix()) + r"(\d+)\.", n)
                if m and (int(m.group(1)) >= self.seq or n.endswith(".tmp")):
                    os.remove(os.path.join(d, n))
                    log.info("removed %s, left by an interrupted run", n)

    def add(self, result: GroupResult) -> None:
        import dfaug
        for sample in result.samples:
            if self.writer is None:
                self.writer = dfaug.PairShardWriter(
                    os.path.join(self.out_dir, self._prefix() + "%06d.tar"),
                    max_bytes=1 << 62, fmt=self.fmt, start_index=self.seq)
            meta, clips = sample.meta, sample.clips
            if len(clips) == 2:
                self.writer.write(sample.key, clips["real"], clips["fake"], meta)
            else:
                (member, clip), = clips.items()
                self.writer.write_clip(sample.key, clip, member, meta)
            self.pairs.append({"key": sample.key, "shard": self._prefix() + f"{self.seq:06d}.tar",
                               **{m: f"{meta['folder']}/{meta[m]}" for m in clips},
                               "label": meta["label"],
                               **({} if len(clips) == 2 else {"single": True}),
                               "frames": [meta["frame_numbers"][0], meta["frame_numbers"][-1]],
                               "crop_box": meta["crop_box"]})
        self.groups.append(result.key)
        self.reports += result.reports
        if len(self.pairs) >= self.shard_pairs or len(self.groups) >= self.max_groups:
            self.commit()

    def commit(self) -> None:
        if not self.groups:
            return
        shard = None
        if self.writer is not None:
            shard = os.path.basename(self.writer.close()[-1])
            self.shards.append(shard)
        record = {"shard": shard, "groups": self.groups, "pairs": self.pairs,
                  "reports": self.reports}
        done = os.path.join(self.out_dir, DONE_DIR, self._prefix() + f"{self.seq:06d}.json")
        write_text_atomic(done, json.dumps(record))
        self.seq += 1
        self.writer, self.groups, self.pairs, self.reports = None, [], [], []

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
