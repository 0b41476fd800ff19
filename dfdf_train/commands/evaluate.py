"""Score a submission against labels of any layout: video- and frame-level AUC,
log-loss (the DFDC metric), accuracy, overall and per split, manipulation method and
source (y = 1 for FAKE).

--pred is a submission CSV with a header and `filename,label` rows, label = P(FAKE).
--metadata names the labels: DFDC metadata.json files (any name), or folders holding
one; a FaceForensics++ or Celeb-DF root; or a CSV of video,label,original,split
(docs/datasets.md; --layout names the layout where the folder does not say).
A prediction matches a labelled video when its filename is the video's name in its
layout (for DFDC the file name; for the others the path below the root, as predict
writes it) or ends with '/' and that name. Predictions for videos without a label
are counted and ignored; labelled videos without a prediction are an error unless
--missing gives them a score (0.5 is the recipe's score for "no face").

Accuracy counts a video as FAKE when its score is above 0.5 (0.5 itself counts as
REAL). AUC is the probability that a random FAKE scores above a random REAL (ties
count half); it needs both classes, and a group with one class shows "n/a".
Per method: that method's fakes against every real video of the evaluation.

If the predict command's details file is found (--details; by default
SUBMISSION.details.jsonl beside SUBMISSION.csv), the table also shows each model
alone, all models with a plain mean instead of the recipe's confidence weights, the
recipe's rule recomputed, and the frame-level AUC (every output of every model is a
frame's score, with its video's label). Details file: one JSON object per line,
  {"filename": "abc.mp4", "probs": {"large_crop": [0.91, ...], "re": [...], "sequence": [...]}}
with every sigmoid output of that model for that video (all tracks pooled; [] or an
absent model for no output, which scores 0.5).

The constant 0.5 (log 2 = 0.6931, AUC 0.5) is printed as the baseline to beat.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..files import DETAILS_SUFFIX, details_path_for
from ..sources import FFPP_COMPRESSIONS, LAYOUTS

HELP = ("AUC, log-loss and accuracy of a submission against labels of any layout, "
        "per model, split, method and source")


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, metavar="CSV",
                        help="submission CSV with a 'filename,label' header, label = P(FAKE)")
    parser.add_argument("--metadata", required=True, nargs="+", metavar="PATH",
                        help="the labels: DFDC metadata.json files or folders that hold one, "
                             "a FaceForensics++ or Celeb-DF root, or a CSV of "
                             "video,label,original,split (docs/datasets.md)")
    parser.add_argument("--layout", choices=list(LAYOUTS),
                        help="the labels' layout (default: detected from each path)")
    parser.add_argument("--compression", default="c23", choices=FFPP_COMPRESSIONS,
                        help="FaceForensics++: which quality's videos are labelled (default c23)")
    parser.add_argument("--splits", metavar="DIR", help="FaceForensics++: the folder of the "
                        "official split files (default: the root's own, if any)")
    parser.add_argument("--details", metavar="JSONL",
                        help="predict's per-model outputs (default: PRED's name with "
                             f"'{DETAILS_SUFFIX}' instead of '.csv', if it exists)")
    parser.add_argument("--no-details", action="store_true",
                        help="ignore the details file even if it exists")
    parser.add_argument("--missing", type=float, metavar="P",
                        help="score labelled videos with no prediction P (e.g. 0.5) "
                             "instead of stopping with an error")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the numbers as JSON to PATH")


def _details_arg(args) -> Optional[Path]:
    if args.no_details:
        return None
    if args.details is not None:
        return Path(args.details)  # named: must exist (read_details says so if not)
    default = details_path_for(args.pred)
    return default if default.is_file() else None


def run(args) -> int:
    from ..evaluate import evaluate, format_table
    result = evaluate(args.pred, args.metadata, details=_details_arg(args),
                      missing=args.missing, layout=args.layout, compression=args.compression,
                      splits=args.splits)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
