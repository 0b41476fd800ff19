"""The command line: one sub-command per module.

Each command is a small module of :mod:`dfdf_train.commands` that defines ``HELP``
(one line), ``add_arguments(parser)`` and ``run(args) -> int`` from light imports (the
settings and the registries); ``run`` imports the work itself. So ``--help`` answers at
once, and the modules that do the work import torch, timm or av where they like.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

COMMANDS = {  # name -> module, in the order of the recipe
    name: f"dfdf_train.commands.{name}"
    for name in ("preprocess", "train", "predict", "evaluate", "robustness", "demo")
}

EPILOG = """\
The recipe end to end (docs/recipe.md has its settings, disks, times and GPUs):
  python -m dfdf_train preprocess --input dfdc/dfdc_train_part_* --out shards/
  python -m dfdf_train train --recipe large_crop --data 'shards/*.tar' --out runs/large_crop
  python -m dfdf_train predict --videos test_videos/ --models large_crop=runs/large_crop/last.pt ...
  python -m dfdf_train evaluate --pred submission.csv --metadata test_videos/metadata.json
FaceForensics++, Celeb-DF or a CSV of your own instead of DFDC (docs/datasets.md):
  python -m dfdf_train preprocess --input FaceForensics/ --compression c23 --split train --out shards/
  python -m dfdf_train evaluate --pred ff.csv --metadata FaceForensics/     # AUC per method
Try it all on a small set built from real video, on a CPU, in minutes:
  python -m dfdf_train demo
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dfdf_train",
        description="The 3rd-place DFDC recipe on dfaug: preprocess labelled videos (DFDC, "
                    "FaceForensics++, Celeb-DF, CSV) into aligned pair shards, train the three "
                    "EfficientNet-B7 models, predict and evaluate.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue  # a command not built yet
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        stream=sys.stderr)
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError) as e:  # bad arguments or input: say it plainly
        if args.verbose:
            raise
        parser.exit(2, f"{parser.prog} {args.command}: error: {e}\n")
