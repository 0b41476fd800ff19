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
from __future__ import annotations

import json
import os

from dfaug.formats import DEFAULT_FORMAT, FORMATS

from ..preprocess.config import SINGLE_CLIPS, PreprocessConfig
from ..sources import FFPP_COMPRESSIONS, LAYOUTS

HELP = ("labelled videos (DFDC, FaceForensics++, Celeb-DF, CSV) -> aligned real/fake "
        "face-clip shards (resumable, shardable)")


def add_arguments(parser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="PATH",
                        help="DFDC folders (dfdc_train_part_N/ with metadata.json), a "
                        "FaceForensics++ or Celeb-DF root, or a CSV of video,label,original,split "
                        "(docs/datasets.md)")
    parser.add_argument("--layout", choices=list(LAYOUTS), help="the inputs' layout (default: "
                        "detected from each input; an error lists the layouts where it cannot be)")
    parser.add_argument("--compression", default="c23", choices=FFPP_COMPRESSIONS,
                        help="FaceForensics++: which quality's videos (default c23)")
    parser.add_argument("--splits", metavar="DIR", help="FaceForensics++: the folder of the "
                        "official train.json/val.json/test.json (default: the root's own, if any)")
    parser.add_argument("--split", help="only the videos of this split (e.g. train), as the "
                        "source gives it")
    parser.add_argument("--single-clips", default="auto", choices=SINGLE_CLIPS,
                        help="a video with no aligned partner (a fake whose original is absent, "
                        "a real no fake names): keep = cut it alone as a single clip, skip = "
                        "report and skip it, auto (default) = skip for DFDC (the recipe trained "
                        "on pairs only), keep otherwise")
    parser.add_argument("--out", required=True, metavar="OUTDIR",
                        help="output folder: pair shards, manifest.jsonl, skipped.jsonl, done/")
    parser.add_argument("--detector", default="mtcnn", help="face detector: mtcnn (default, "
                        "weights from facenet-pytorch) or torchscript (--detector-weights)")
    parser.add_argument("--detector-weights", metavar="PATH", help="TorchScript detector file")
    parser.add_argument("--threshold", type=float, help="face score threshold "
                        "(default: 0.7 for mtcnn, 0.3 for torchscript)")
    parser.add_argument("--longer-side", type=int, default=512,
                        help="detect on frames rescaled to this longer side (default 512)")
    parser.add_argument("--every", type=int, default=6, help="detect faces on every n-th frame (6)")
    parser.add_argument("--clip-length", type=int, default=50, help="frames per clip (50)")
    parser.add_argument("--clips-per-pair", type=int, default=1,
                        help="clips per aligned real/fake track pair (1)")
    parser.add_argument("--shard-index", type=int, help="this run's part of the real videos "
                        "(default: torchrun's RANK, else 0)")
    parser.add_argument("--num-shards", type=int, help="number of parts (default: torchrun's "
                        "WORLD_SIZE, else 1)")
    parser.add_argument("--shard-pairs", type=int, default=256,
                        help="pairs per output shard, rounded up to whole real videos (256)")
    parser.add_argument("--workers", type=int, default=0,
                        help="decoding/detection processes (0: in this process)")
    parser.add_argument("--seed", type=int, default=0, help="seed of clip starts and box choices")
    parser.add_argument("--device", help="detector device (default: cuda when available)")
    parser.add_argument("--decoder", default="auto", help="dfaug.read_video backend: auto (CPU), "
                        "or dali / pyav-cuda for NVDEC with frames left on the GPU")
    parser.add_argument("--format", default=DEFAULT_FORMAT, choices=FORMATS,
                        help=f"frame storage format in the shards (default {DEFAULT_FORMAT}; "
                        "docs/storage.md compares them)")
    parser.add_argument("--limit", type=int, help="stop after this many real videos (to try it out)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument("--threads", type=int, help="CPU cores this run may use (default: "
                        "those this process may run on), shared evenly by --workers")


def run(args) -> int:
    config = PreprocessConfig(every=args.every, clip_length=args.clip_length,
                              clips_per_pair=args.clips_per_pair, decoder=args.decoder,
                              seed=args.seed, single_clips=args.single_clips)
    from ..faces import DETECTORS
    if args.detector not in DETECTORS:
        raise ValueError(f"--detector must be one of {sorted(DETECTORS)}, got {args.detector!r}")
    if args.longer_side is not None and args.longer_side < 16:
        raise ValueError(f"--longer-side must be >= 16, got {args.longer_side}")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ValueError(f"--threshold must be in [0, 1], got {args.threshold}")
    device = args.device
    if device is None and "LOCAL_RANK" in os.environ:
        import torch  # one GPU per torchrun process
        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    from ..preprocess.config import DetectorSpec
    spec = DetectorSpec(args.detector, args.detector_weights, device, args.threshold,
                        args.longer_side)
    from ..preprocess.runner import preprocess
    summary = preprocess(args.input, args.out, config=config, detector=spec,
                         shard_index=args.shard_index, num_shards=args.num_shards,
                         workers=args.workers, limit=args.limit, shard_pairs=args.shard_pairs,
                         fmt=args.format, progress=not args.no_progress, threads=args.threads,
                         layout=args.layout, compression=args.compression, splits=args.splits,
                         split=args.split)
    print(json.dumps({"pairs": summary.pairs, "single_clips": summary.single_clips,
                      "real_videos": summary.real_videos,
                      "groups": summary.groups,
                      "videos": summary.videos, "skipped": summary.skipped,
                      "kept_with_note": summary.kept_notes,
                      "already_done": summary.already_done, "shards": summary.shards,
                      "seconds": round(summary.seconds, 2),
                      "stage_seconds": {k: round(v, 2) for k, v in summary.timings.items()}}))
    return 0
