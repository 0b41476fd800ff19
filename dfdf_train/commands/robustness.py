"""How a detector holds up when its test videos are compressed again: each video is
re-encoded over a grid of codecs, quality values and scales (the untouched video
included), scored as `predict` scores it, and the metrics are tabulated per cell.

    python -m dfdf_train robustness --videos test_videos/ --models re=runs/re/last.pt \\
        --out robustness/ [--grid h264:23,40 vp9:33,45:1,0.5]

A grid entry is CODEC:QUALITIES[:SCALES] (comma-separated; quality on the codec's own
scale, see docs/compression.md; scale default 1); the default grid holds FaceForensics++'s
c23 and c40 (H.264 CRF 23 and 40) and the other codecs at a usual and a low quality.
Re-encoding keeps the frame rate and streams (dfaug.transcode: one frame in hand, the
copy in memory only while it is scored). Labels come from --metadata (any layout
evaluate reads; default: the --videos paths themselves).

Writes to --out: cells.jsonl (one line per video and cell, as it is scored: re-running
the same command resumes), robustness.csv and robustness.md (per cell: videos,
log-loss, AUC, accuracy, mean bitrate) and robustness.png (AUC and log-loss against
bitrate, one line per codec and scale, the untouched video as a dashed line).
"""
from __future__ import annotations

import argparse

from ..robustness import DEFAULT_GRID

HELP = "re-encode held-out videos over a grid of codecs and qualities; metrics per cell"

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                   help="held-out videos, as predict takes them (files, folders, a layout's "
                        "root, a CSV)")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME=CHECKPOINT",
                   help="as predict takes them")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--grid", nargs="+", metavar="CODEC:QUALITIES[:SCALES]",
                   help=f"cells besides the untouched video (default: {' '.join(DEFAULT_GRID)})")
    p.add_argument("--metadata", nargs="+", metavar="PATH",
                   help="labels in any layout evaluate reads (default: the --videos paths)")
    p.add_argument("--layout", help="the labels' layout (default: detected)")
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--detector-weights", metavar="PATH")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores this process "
                   "may run on); scores are reproducible for a fixed setting")
    p.add_argument("--no-plot", action="store_true", help="no robustness.png")


def run(args: argparse.Namespace) -> int:
    from ..faces import default_device
    from ..predict import list_videos, load_models, parse_models
    from ..robustness import parse_grid, robustness
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    cells = parse_grid(args.grid or DEFAULT_GRID)
    device = default_device() if args.device == "auto" else args.device
    result = robustness(list_videos(args.videos), load_models(parse_models(args.models), device),
                        args.out, cells, labels=args.metadata or args.videos,
                        layout=args.layout, detector=args.detector,
                        detector_weights=args.detector_weights, device=device,
                        threads=args.threads, plot=not args.no_plot)
    print(result["markdown"])
    return 0
