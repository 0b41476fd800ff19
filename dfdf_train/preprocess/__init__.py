"""Labelled videos -> face-clip shards: aligned real/fake pairs, and single clips
(docs/recipe.md "Preprocessing", docs/datasets.md).

The inputs are listed by a source (dfdf_train.sources: DFDC, FaceForensics++,
Celeb-DF or a CSV, detected from the folder or named with --layout); everything
after that knows no data set. Per real video and the fakes aligned with it: decode,
detect faces on every 6th frame, link them into IoU tracks, pair each fake track
with the real track of the same face (IoU > 0.5 on every shared detection frame,
>= 5 shared detections), and cut 50-frame clips starting on a random detection
frame. A clip has ONE static box: the middle detection's box from the real or the
fake track (50/50), scaled 1.5x about its centre and clamped to the frame; the real
and the fake clip use the same box and the same frame numbers. A video with no
aligned partner (a fake whose original is absent, a real no fake names) is cut
alone from its own tracks as a single clip, or skipped (--single-clips). Samples go
into tar shards readable by dfaug's loader.

Output (OUT):
  pairs-s{i}of{n}-{seq}.tar   shards (dfaug.PairShardWriter; renamed when complete)
  manifest.jsonl              one line per sample written: key, shard, real and/or fake, frames, box
  skipped.jsonl               one line per video or pair skipped (or kept with a note), reason
  done/                       commit records; a group is finished once its record exists

Re-running with the same OUT skips finished groups. Split the work with
--shard-index/--num-shards (or run under torchrun: RANK/WORLD_SIZE split it the
same way); the samples do not depend on the split: clip starts and box choices come
from a generator seeded with (--seed, input, video names).

The modules, one job each: ``plan`` (videos -> groups, and a run's part of them),
``work`` (one group -> its samples and reports), ``pool`` (groups over worker
processes), ``commit`` (shards and the resumable commit log), ``runner``
(:func:`preprocess`), ``cli`` (the command line).
"""
from .cli import HELP, add_arguments, run
from .commit import MANIFEST, SKIPPED, finished_groups, merge_reports, read_manifest
from .config import DetectorSpec, PreprocessConfig
from .plan import Group, plan, resolve_shard, shard_groups
from .runner import Summary, preprocess
from .work import GroupResult, Sample, Skip, probe_rotation, process_group

__all__ = ["HELP", "add_arguments", "run", "MANIFEST", "SKIPPED", "finished_groups",
           "merge_reports", "read_manifest", "DetectorSpec", "PreprocessConfig", "Group",
           "plan", "resolve_shard", "shard_groups", "Summary", "preprocess", "GroupResult",
           "Sample", "Skip", "probe_rotation", "process_group"]
