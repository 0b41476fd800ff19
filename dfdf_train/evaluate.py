"""Score a submission against DFDC labels: the binary log-loss over videos (y = 1 FAKE).

--pred is a submission CSV with a header and `filename,label` rows, label = P(FAKE).
--metadata names DFDC metadata.json files, or folders holding one
(`{"abc.mp4": {"label": "FAKE", ...}, "xyz.mp4": {"label": "REAL", ...}}`).
Videos are matched by file name (the part after the last '/'). Predictions for videos
without a label are counted and ignored; labelled videos without a prediction are an
error unless --missing gives them a score (0.5 is the recipe's score for "no face").

If the predict command's details file is found (--details; by default
SUBMISSION.details.jsonl beside SUBMISSION.csv), the table also shows the log-loss of
each model alone, of all models with a plain mean instead of the recipe's confidence
weights, and of the recipe's rule recomputed, so that the recipe's choices can be
compared on your data. Details file: one JSON object per line,
  {"filename": "abc.mp4", "probs": {"large_crop": [0.91, ...], "re": [...], "sequence": [...]}}
with every sigmoid output of that model for that video (all tracks pooled; [] or an
absent model for no output, which scores 0.5).

The constant 0.5 (log 2 = 0.6931) is printed as the baseline to beat.
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .inference import _as_probs, aggregate, log_loss, mean_aggregate

HELP = "log-loss of a submission CSV against DFDC metadata.json labels, per model too"

LABELS = {"FAKE": 1, "REAL": 0}
DETAILS_SUFFIX = ".details.jsonl"
MODEL_ORDER = ("large_crop", "re", "sequence")  # dfdf_train.models.NAMES; others sorted after


# ---------------------------------------------------------------- the details file format

def beside_submission(pred: os.PathLike, suffix: str) -> Path:
    """A file that goes with a submission: ``sub.csv`` and ``suffix`` -> ``sub`` + suffix."""
    pred = Path(pred)
    stem = pred.name[:-4] if pred.name.lower().endswith(".csv") else pred.name
    return pred.with_name(stem + suffix)


def details_path_for(pred: os.PathLike) -> Path:
    """Where the details of a submission live: ``sub.csv`` -> ``sub.details.jsonl``."""
    return beside_submission(pred, DETAILS_SUFFIX)


def details_line(filename: str, probs: Mapping[str, Any]) -> str:
    """One line of the details file (with its newline), for the predict command to write:
    ``{"filename": ..., "probs": {model: [p, ...], ...}}``; each model's outputs may be a
    list, numpy array or torch tensor of probabilities (checked like ``aggregate``'s)."""
    record = {"filename": filename,
              "probs": {model: _as_probs(v, f"probs[{model!r}]").tolist()
                        for model, v in probs.items()}}
    return json.dumps(record) + "\n"


# ------------------------------------------------------------------------------- readers

def _video_name(name: str) -> str:
    return name.strip().replace("\\", "/").rsplit("/", 1)[-1]


def _metadata_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"--metadata: no such file: {path}")
    return path


def read_metadata(paths: Sequence[os.PathLike]) -> Dict[str, int]:
    """Video name -> 1 (FAKE) / 0 (REAL) from DFDC metadata.json files or their folders."""
    labels: Dict[str, int] = {}
    origin: Dict[str, Path] = {}
    for path in map(_metadata_file, map(Path, paths)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"--metadata {path}: not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ValueError(f"--metadata {path}: expected an object of videos, "
                             f"got {type(data).__name__}")
        for video, entry in data.items():
            label = entry.get("label") if isinstance(entry, dict) else None
            if not isinstance(label, str) or label.strip().upper() not in LABELS:
                raise ValueError(f"--metadata {path}: video {video!r} has label {label!r}; "
                                 f"expected one of {sorted(LABELS)}")
            name, y = _video_name(video), LABELS[label.strip().upper()]
            if name in labels and labels[name] != y:
                raise ValueError(f"--metadata: video {name!r} is {y} in {path} but "
                                 f"{labels[name]} in {origin[name]}")
            labels[name], origin[name] = y, path
    return labels


def _parse_prob(text: str, where: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise ValueError(f"{where}: label {text!r} is not a number") from None
    if not 0 <= p <= 1:  # also catches NaN
        raise ValueError(f"{where}: label {text!r} is not a probability in [0, 1]")
    return p


def read_predictions(path: os.PathLike) -> Dict[str, float]:
    """Video name -> P(FAKE) from a submission CSV with a ``filename,label`` header."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--pred: no such file: {path}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        if "filename" not in header or "label" not in header:
            raise ValueError(f"--pred {path}: the first line must be a header with "
                             f"'filename' and 'label' columns, got {header!r}")
        i_name, i_label = header.index("filename"), header.index("label")
        preds: Dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue  # blank line
            where = f"--pred {path} line {line}"
            if len(row) != len(header):
                raise ValueError(f"{where}: {len(row)} fields, the header has {len(header)}")
            name = _video_name(row[i_name])
            if not name:
                raise ValueError(f"{where}: empty filename")
            if name in preds:
                raise ValueError(f"{where}: {name!r} is predicted twice")
            preds[name] = _parse_prob(row[i_label].strip(), where)
    return preds


def read_details(path: os.PathLike) -> Dict[str, Dict[str, List[float]]]:
    """Video name -> {model: [probabilities]} from a details file (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--details: no such file: {path}")
    details: Dict[str, Dict[str, List[float]]] = {}
    with path.open(encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            where = f"--details {path} line {line}"
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON: {e}") from None
            if (not isinstance(record, dict) or not isinstance(record.get("filename"), str)
                    or not isinstance(record.get("probs"), dict)):
                raise ValueError(f'{where}: expected {{"filename": str, "probs": '
                                 f'{{model: [p, ...]}}}}')
            name = _video_name(record["filename"])
            if name in details:
                raise ValueError(f"{where}: {name!r} appears twice")
            for model, probs in record["probs"].items():
                if not isinstance(probs, list):
                    raise ValueError(f"{where}: probs of {model!r} must be a list")
                try:
                    _as_probs(probs)  # numbers, no NaN, in [0, 1]
                except ValueError as e:
                    raise ValueError(f"{where}: model {model!r}: {e}") from None
            details[name] = record["probs"]
    return details


# ------------------------------------------------------------------------------ evaluate

def _model_names(details: Mapping[str, Mapping[str, list]]) -> List[str]:
    found = {m for probs in details.values() for m in probs}
    return [m for m in MODEL_ORDER if m in found] + sorted(found - set(MODEL_ORDER))


def _fill_missing(names: List[str], have: Mapping, missing: Optional[float], what: str) -> int:
    absent = [n for n in names if n not in have]
    if absent and missing is None:
        raise ValueError(f"{len(absent)} labelled video(s) have no {what}, e.g. "
                         f"{', '.join(absent[:3])}; pass --missing 0.5 to score them 0.5, "
                         f"or only the metadata of the videos you predicted")
    return len(absent)


def _detail_rows(names: List[str], y: np.ndarray, details: Mapping, missing: Optional[float]
                 ) -> List[dict]:
    """The rows computed from the details file: recipe rule, plain mean, each model."""
    def scores(rule, models):
        out = []
        for n in names:
            if n not in details:
                out.append(missing)  # not None: _fill_missing checked
                continue
            pooled = [p for m in models for p in details[n].get(m, [])]
            out.append(rule(pooled))
        return np.array(out, dtype=np.float64)

    models = _model_names(details)
    rows = [{"key": "all:weighted", "name": "all models, recipe weights (recomputed)",
             "log_loss": log_loss(y, scores(aggregate, models))},
            {"key": "all:mean", "name": "all models, plain mean",
             "log_loss": log_loss(y, scores(mean_aggregate, models))}]
    for m in models:
        with_output = sum(1 for n in names if details.get(n, {}).get(m))
        rows.append({"key": f"model:{m}", "name": f"{m} alone",
                     "log_loss": log_loss(y, scores(aggregate, [m])),
                     "videos_with_output": with_output})
    return rows


def evaluate(pred: os.PathLike, metadata: Sequence[os.PathLike], *,
             details: Optional[os.PathLike] = None, missing: Optional[float] = None) -> dict:
    """Everything the command prints, as a dict (also what ``--json`` writes).

    ``details=None`` means no per-model rows. ``missing`` is the score given to labelled
    videos with no prediction (None: they are an error).
    """
    if missing is not None and not 0 <= missing <= 1:
        raise ValueError(f"--missing must be a probability in [0, 1], got {missing!r}")
    labels = read_metadata(metadata)
    preds = read_predictions(pred)
    names = sorted(labels)
    if not names:
        raise ValueError("--metadata: no labelled videos")
    n_missing = _fill_missing(names, preds, missing, "prediction")
    extra = sorted(set(preds) - set(labels))
    y = np.array([labels[n] for n in names], dtype=np.float64)
    p = np.array([preds.get(n, missing) for n in names], dtype=np.float64)
    rows = [{"key": "submission", "name": f"submission ({Path(pred).name})",
             "log_loss": log_loss(y, p)}]
    result = {
        "pred": str(pred), "metadata": [str(m) for m in metadata],
        "details": None if details is None else str(details),
        "videos": len(names), "fake": int(y.sum()), "real": int(len(y) - y.sum()),
        "missing_predictions": n_missing, "missing_filled_with": missing,
        "extra_predictions": len(extra), "missing_details": None, "rows": rows,
    }
    if details is not None:
        detail = read_details(details)
        result["missing_details"] = _fill_missing(names, detail, missing, "details line")
        rows += _detail_rows(names, y, detail, missing)
    rows.append({"key": "constant", "name": "constant 0.5", "log_loss": math.log(2)})
    return result


def format_table(result: dict) -> str:
    lines = [f"{result['videos']} labelled videos ({result['fake']} FAKE, "
             f"{result['real']} REAL); y = 1 for FAKE"]
    if result["missing_predictions"]:
        lines.append(f"{result['missing_predictions']} without a prediction, scored "
                     f"{result['missing_filled_with']}")
    if result["extra_predictions"]:
        lines.append(f"{result['extra_predictions']} predictions for videos without a "
                     f"label (ignored)")
    if result["details"] is None:
        lines.append("no details file: per-model rows need the predict command's "
                     "SUBMISSION.details.jsonl (--details)")
    elif result["missing_details"]:
        lines.append(f"{result['missing_details']} videos without a details line, scored "
                     f"{result['missing_filled_with']}")
    width = max(len(r["name"]) for r in result["rows"])
    lines += ["", f"{'':{width}}  log-loss", f"{'-' * width}  --------"]
    for r in result["rows"]:
        extra = ""
        if "videos_with_output" in r:
            extra = f"  ({r['videos_with_output']} of {result['videos']} videos with output)"
        lines.append(f"{r['name']:{width}}  {r['log_loss']:8.4f}{extra}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, metavar="CSV",
                        help="submission CSV with a 'filename,label' header, label = P(FAKE)")
    parser.add_argument("--metadata", required=True, nargs="+", metavar="PATH",
                        help="DFDC metadata.json files, or folders that hold one")
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
    result = evaluate(args.pred, args.metadata, details=_details_arg(args),
                      missing=args.missing)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
