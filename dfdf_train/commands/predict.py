"""Score videos with any of the three trained models: one P(FAKE) per video.

    python -m dfdf_train predict --videos test_videos/ \\
        --models large_crop=runs/large_crop/last.pt re=runs/re/last.pt sequence=runs/sequence/last.pt \\
        --out submission.csv

Per video (docs/recipe.md "Inference"): frames at 15 fps (every round(fps / 15)-th frame);
faces on every 3rd of them; IoU tracks of at least 7 detections with boxes
interpolated to every 15-fps frame; 1.5x crops. The sequence model sees windows of 7
consecutive 15-fps frames starting every 14 frames, cropped with the box of the
window's middle frame; the frame models see every 2nd track frame, alternating
between large_crop and re (either alone takes them all). Every other window or frame
is mirrored. All sigmoid outputs of all models and tracks are pooled and combined by
the recipe's confidence-weighted rule (dfdf_train.inference.aggregate).

Crops are brought to the model's input the way its training loader brought them
(dfaug.fit_to to the run's loader size), then centre-cropped by the model's own
preset, so any --image-size a run was trained with works.

Writes --out (filename,label), SUBMISSION.details.jsonl (every output per model, for
`evaluate`) and SUBMISSION.report.jsonl (videos scored 0.5 because they could not be
read or showed no face, with the reason).
"""
from __future__ import annotations

import argparse
import os

from ..inference import PredictConfig
from ..recipes import RECIPES

HELP = "score videos (P(FAKE) per video) with trained models; writes submission.csv"

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = PredictConfig()
    p.add_argument("--videos", nargs="+", required=True, metavar="PATH",
                   help="video files, folders of videos (e.g. DFDC's test_videos/), a "
                   "FaceForensics++ or Celeb-DF root, or a CSV of video,label,... "
                   "(docs/datasets.md); one video file alone also prints its score and "
                   "each face track's")
    p.add_argument("--compression", default="c23", help="FaceForensics++ root: which "
                   "quality's videos (default c23)")
    p.add_argument("--models", nargs="+", required=True, metavar="[NAME=]CHECKPOINT",
                   help="`train` checkpoints (last.pt), each named by the recipe it holds or "
                        "as NAME=CHECKPOINT (NAME one of " + ", ".join(RECIPES) + ")")
    p.add_argument("--out", default="submission.csv", help="the submission CSV (default %(default)s)")
    p.add_argument("--detector", default="mtcnn", help="face detector (default %(default)s)")
    p.add_argument("--detector-weights", metavar="PATH", help="weights file of a plugged-in detector")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="crops per forward pass")
    p.add_argument("--fps", type=float, default=d.fps, help="rate frames are read at (default 15)")
    p.add_argument("--t-min", type=int, default=d.t_min, help="fewest detections per track (default 7)")
    p.add_argument("--threads", type=int, help="CPU threads for decoding and the models "
                   "(default: the cores this process may run on); scores are reproducible "
                   "for a fixed setting")


def run(args: argparse.Namespace) -> int:
    from ..faces import default_device
    from ..predict import list_videos, load_models, parse_models, predict
    cfg = PredictConfig(fps=args.fps, t_min=args.t_min, batch_size=args.batch_size,
                        threads=args.threads)
    if args.batch_size < 1 or args.fps <= 0 or args.t_min < 1:
        raise ValueError("--batch-size and --t-min must be >= 1, --fps > 0")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    device = default_device() if args.device == "auto" else args.device
    models = load_models(parse_models(args.models), device)
    videos = list_videos(args.videos, compression=args.compression)
    tracks: dict = {}
    scores = predict(videos, models, args.out, cfg=cfg, detector=args.detector,
                     detector_weights=args.detector_weights, device=device, tracks=tracks)
    if len(args.videos) == 1 and os.path.isfile(args.videos[0]) and len(scores) == 1:
        (name, score), = scores.items()
        print(describe_video(name, score, tracks[name]))
    return 0


def describe_video(name: str, score: float, tracks) -> str:
    """A video's score and each face track's, as ``predict`` prints it for one video;
    ``tracks`` is the video's track list, or the reason it scored 0.5."""
    if isinstance(tracks, str):
        return f"{name}: P(FAKE) = {score:.4f} ({tracks})"
    lines = [f"{name}: P(FAKE) = {score:.4f} from {len(tracks)} face track"
             f"{'' if len(tracks) == 1 else 's'}"]
    for t in tracks:
        outputs = ", ".join(f"{m} {n}" for m, n in t["outputs"].items())
        lines.append(f"  track {t['track']}: frames {t['frames'][0]}..{t['frames'][1]}, "
                     f"{t['detections']} detections, P(FAKE) {t['score']:.4f} "
                     f"(outputs: {outputs})")
    return "\n".join(lines)
