"""Scoring a submission against labels (the ``evaluate`` command,
:mod:`dfdf_train.commands.evaluate`, says what it reports): labels of any layout,
video- and frame-level AUC, log-loss, accuracy, per model, split, method and source."""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .files import beside_submission, details_path_for  # noqa: F401  (also this module's API)
from .inference import _as_probs, aggregate, log_loss, mean_aggregate
from .recipes import RECIPES

LABELS = {"FAKE": 1, "REAL": 0}


# ---------------------------------------------------------------- the details file format

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
    """A filename as written in a submission or details file, with '/' separators."""
    return name.strip().replace("\\", "/")


def _metadata_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"--metadata: no such file: {path}")
    return path


@dataclass(frozen=True)
class Label:
    """A labelled video: ``y`` 1 for FAKE, 0 for REAL, and what its source says of it."""

    y: int
    split: Optional[str] = None
    method: Optional[str] = None
    source: Optional[str] = None


def _read_dfdc_json(path: Path) -> Dict[str, Label]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"--metadata {path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--metadata {path}: expected an object of videos, "
                         f"got {type(data).__name__}")
    out = {}
    for video, entry in data.items():
        label = entry.get("label") if isinstance(entry, dict) else None
        if not isinstance(label, str) or label.strip().upper() not in LABELS:
            raise ValueError(f"--metadata {path}: video {video!r} has label {label!r}; "
                             f"expected one of {sorted(LABELS)}")
        split = entry.get("split")
        out[_video_name(video).rsplit("/", 1)[-1]] = Label(
            LABELS[label.strip().upper()], split if isinstance(split, str) else None,
            None, "dfdc")
    return out


def _merge(labels: Dict[str, Label], origin: Dict[str, str], found: Mapping[str, Label],
           where: str) -> None:
    for name, label in found.items():
        if name in labels and labels[name].y != label.y:
            raise ValueError(f"--metadata: video {name!r} is {label.y} in {where} but "
                             f"{labels[name].y} in {origin[name]}")
        labels[name], origin[name] = label, where


def read_metadata(paths: Sequence[os.PathLike]) -> Dict[str, int]:
    """Video name -> 1 (FAKE) / 0 (REAL) from DFDC metadata.json files or their folders."""
    labels: Dict[str, Label] = {}
    origin: Dict[str, str] = {}
    for path in map(_metadata_file, map(Path, paths)):
        _merge(labels, origin, _read_dfdc_json(path), str(path))
    return {name: label.y for name, label in labels.items()}


def read_labels(paths: Sequence[os.PathLike], layout: Optional[str] = None, *,
                compression: str = "c23", splits: Optional[str] = None) -> Dict[str, Label]:
    """Video name -> :class:`Label` from labels of any layout (see the module doc):
    DFDC JSON files and folders by file name, the others by their path below the root."""
    from .sources import detect_layout, list_videos
    labels: Dict[str, Label] = {}
    origin: Dict[str, str] = {}
    for path in map(Path, paths):
        kind = layout
        if kind is None:
            is_json = path.is_file() and path.suffix.lower() == ".json"
            kind = "dfdc" if is_json or (path / "metadata.json").is_file() else None
        if kind is None:
            if not path.exists():
                raise FileNotFoundError(f"--metadata: no such file or folder: {path}")
            kind = detect_layout(str(path))
        if kind == "dfdc":
            file = _metadata_file(path)
            _merge(labels, origin, _read_dfdc_json(file), str(file))
            continue
        videos = list_videos([str(path)], kind, compression=compression, splits=splits)
        _merge(labels, origin, {v.filename: Label(int(v.label == "FAKE"), v.split,
                                                  v.meta.get("method"), v.meta.get("source"))
                                for v in videos}, str(path))
    return labels


def match_names(named: Mapping[str, Any], labels: Mapping[str, Any], what: str) -> Dict[str, Any]:
    """``named`` (a submission's or details file's videos) keyed by the labelled video
    each is: its name, or the labelled name it ends with after a '/'."""
    out: Dict[str, Any] = {}
    by: Dict[str, str] = {}
    for name, value in named.items():
        parts = name.split("/")
        key = next((k for k in ("/".join(parts[i:]) for i in range(len(parts))) if k in labels),
                   None)
        if key is None:
            continue
        if key in out:
            raise ValueError(f"{what}: {by[key]!r} and {name!r} are both the video {key!r}")
        out[key], by[key] = value, name
    return out


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


# ------------------------------------------------------------------------------- metrics

def auc(y_true: Any, scores: Any) -> Optional[float]:
    """Area under the ROC curve: the probability that a random positive (FAKE) scores
    above a random negative, ties counting half (the Mann-Whitney U statistic over
    both counts). None when ``y_true`` holds one class only."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size != s.size:
        raise ValueError(f"y_true and scores differ in length: {y.size} vs {s.size}")
    pos = int((y == 1).sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return None
    # average ranks (1-based) with ties sharing the mean of their ranks
    order = np.argsort(s, kind="mergesort")
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks = np.empty(y.size)
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def accuracy(y_true: Any, scores: Any) -> float:
    """Share of videos on the right side of 0.5 (a score of 0.5 counts as REAL)."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    return float(np.mean((np.asarray(scores, dtype=np.float64).ravel() > 0.5) == (y == 1)))


def metrics(y: np.ndarray, p: np.ndarray) -> dict:
    return {"log_loss": log_loss(y, p), "auc": auc(y, p), "accuracy": accuracy(y, p)}


def _model_names(details: Mapping[str, Mapping[str, list]]) -> List[str]:
    """The models of a details file: the recipe's first, in the registry's order."""
    found = {m for probs in details.values() for m in probs}
    return [m for m in RECIPES if m in found] + sorted(found - set(RECIPES))


def _fill_missing(names: List[str], have: Mapping, missing: Optional[float], what: str) -> int:
    absent = [n for n in names if n not in have]
    if absent and missing is None:
        raise ValueError(f"{len(absent)} labelled video(s) have no {what}, e.g. "
                         f"{', '.join(absent[:3])}; pass --missing 0.5 to score them 0.5, "
                         f"or only the labels of the videos you predicted")
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
             **metrics(y, scores(aggregate, models))},
            {"key": "all:mean", "name": "all models, plain mean",
             **metrics(y, scores(mean_aggregate, models))}]
    for m in models:
        with_output = sum(1 for n in names if details.get(n, {}).get(m))
        rows.append({"key": f"model:{m}", "name": f"{m} alone",
                     **metrics(y, scores(aggregate, [m])), "videos_with_output": with_output})
    return rows


def _frame_level(names: List[str], y: np.ndarray, details: Mapping) -> dict:
    """Frame-level AUC: every output of every model is one frame's score."""
    frame_y, frame_p = [], []
    for n, label in zip(names, y):
        outputs = [p for probs in details.get(n, {}).values() for p in probs]
        frame_p += outputs
        frame_y += [label] * len(outputs)
    return {"frames": len(frame_p), "auc": auc(frame_y, frame_p) if frame_p else None}


def _group_rows(names: List[str], y: np.ndarray, p: np.ndarray,
                labels: Mapping[str, Label]) -> List[dict]:
    """The submission's metrics per split, per manipulation method (its fakes against
    every real) and per source, where the labels say them."""
    rows = []
    for field_name in ("split", "method", "source"):
        values = sorted({getattr(labels[n], field_name) for n in names} - {None})
        if field_name != "method" and len(values) < 2 and all(
                getattr(labels[n], field_name) is not None for n in names):
            continue  # one value for every video: the same as the whole
        for value in values:
            if field_name == "method":
                keep = np.array([labels[n].method == value or labels[n].y == 0 for n in names])
            else:
                keep = np.array([getattr(labels[n], field_name) == value for n in names])
            yk, pk = y[keep], p[keep]
            rows.append({"key": f"{field_name}:{value}", "by": field_name, "value": value,
                         "videos": int(keep.sum()), "fake": int(yk.sum()),
                         "real": int(len(yk) - yk.sum()), **metrics(yk, pk)})
    return rows


def evaluate(pred: os.PathLike, metadata: Sequence[os.PathLike], *,
             details: Optional[os.PathLike] = None, missing: Optional[float] = None,
             layout: Optional[str] = None, compression: str = "c23",
             splits: Optional[str] = None) -> dict:
    """Everything the command prints, as a dict (also what ``--json`` writes).

    ``metadata``: the label inputs, read by :func:`read_labels` with ``layout``,
    ``compression`` and ``splits``. ``details=None`` means no per-model rows and no
    frame-level AUC. ``missing`` is the score given to labelled videos with no
    prediction (None: they are an error). An AUC is None where a group has one class.
    """
    if missing is not None and not 0 <= missing <= 1:
        raise ValueError(f"--missing must be a probability in [0, 1], got {missing!r}")
    labels = read_labels(metadata, layout, compression=compression, splits=splits)
    raw = read_predictions(pred)
    preds = match_names(raw, labels, f"--pred {pred}")
    names = sorted(labels)
    if not names:
        raise ValueError("--metadata: no labelled videos")
    n_missing = _fill_missing(names, preds, missing, "prediction")
    y = np.array([labels[n].y for n in names], dtype=np.float64)
    p = np.array([preds.get(n, missing) for n in names], dtype=np.float64)
    rows = [{"key": "submission", "name": f"submission ({Path(pred).name})", **metrics(y, p)}]
    result = {
        "pred": str(pred), "metadata": [str(m) for m in metadata],
        "details": None if details is None else str(details),
        "videos": len(names), "fake": int(y.sum()), "real": int(len(y) - y.sum()),
        "missing_predictions": n_missing, "missing_filled_with": missing,
        "extra_predictions": len(raw) - len(preds), "missing_details": None, "rows": rows,
        "frame_level": None, "by": _group_rows(names, y, p, labels),
    }
    if details is not None:
        detail = match_names(read_details(details), labels, f"--details {details}")
        result["missing_details"] = _fill_missing(names, detail, missing, "details line")
        rows += _detail_rows(names, y, detail, missing)
        result["frame_level"] = _frame_level(names, y, detail)
    rows.append({"key": "constant", "name": "constant 0.5",
                 **metrics(y, np.full(len(y), 0.5))})
    return result


def _cell(value: Optional[float], width: int = 8) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.4f}"


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
        lines.append("no details file: per-model rows and the frame-level AUC need the "
                     "predict command's SUBMISSION.details.jsonl (--details)")
    elif result["missing_details"]:
        lines.append(f"{result['missing_details']} videos without a details line, scored "
                     f"{result['missing_filled_with']}")
    if result["fake"] == 0 or result["real"] == 0:
        lines.append("AUC needs FAKE and REAL videos: n/a with one class only")
    width = max(len(r["name"]) for r in result["rows"])
    head = f"{'log-loss':>8}  {'AUC':>8}  {'accuracy':>8}"
    lines += ["", f"{'':{width}}  {head}", f"{'-' * width}  {'-' * len(head)}"]
    for r in result["rows"]:
        extra = ""
        if "videos_with_output" in r:
            extra = f"  ({r['videos_with_output']} of {result['videos']} videos with output)"
        lines.append(f"{r['name']:{width}}  {_cell(r['log_loss'])}  {_cell(r['auc'])}  "
                     f"{_cell(r['accuracy'])}{extra}")
    frame = result.get("frame_level")
    if frame:
        lines.append(f"\nframe-level AUC, every model output a frame ({frame['frames']} frames): "
                     f"{_cell(frame['auc'], 0).strip()}")
    if result["by"]:
        names = [f"{r['by']} {r['value']}" for r in result["by"]]
        w = max(len(n) for n in names)
        lines += ["", "the submission by split, method (its fakes against every real) and "
                      "source:", f"{'':{w}}  {'videos':>6}  {'fake':>5}  {head}",
                  f"{'-' * w}  {'-' * 6}  {'-' * 5}  {'-' * len(head)}"]
        for n, r in zip(names, result["by"]):
            lines.append(f"{n:{w}}  {r['videos']:6d}  {r['fake']:5d}  {_cell(r['log_loss'])}  "
                         f"{_cell(r['auc'])}  {_cell(r['accuracy'])}")
    return "\n".join(lines)
