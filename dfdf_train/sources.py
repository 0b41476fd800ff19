"""Where labelled videos come from: one reader per data-set layout (docs/datasets.md).

A source only lists videos: each as a :class:`Video` (its file, label, the original
it is aligned with, split, and metadata such as the manipulation method).
Everything after that, decoding, face tracks, alignment, cutting and writing, is the
same for every data set and lives in :mod:`dfdf_train.preprocess`; ``evaluate`` and
``predict`` read labels and names through the same readers.

Layouts:

- ``dfdc``: folders holding ``metadata.json`` (``{"x.mp4": {"label": "REAL"|"FAKE",
  "original": "y.mp4", "split": ...}}``).
- ``ffpp``: a FaceForensics++ root, ``original_sequences/youtube/<c>/videos/NNN.mp4``
  and ``manipulated_sequences/<Method>/<c>/videos/TTT_SSS.mp4`` (target TTT with the
  face of SSS: aligned with original TTT), ``<c>`` one of raw, c23, c40. Optional
  official split files ``train.json`` / ``val.json`` / ``test.json`` (lists of
  ``["TTT", "SSS"]``) set each video's split.
- ``celebdf``: a Celeb-DF (v2) root, ``Celeb-real/idA_NNNN.mp4``,
  ``Celeb-synthesis/idA_idB_NNNN.mp4`` (aligned with ``Celeb-real/idA_NNNN.mp4``),
  ``YouTube-real/NNNNN.mp4`` (real, no fake) and ``List_of_testing_videos.txt``
  (``1 path`` real, ``0 path`` fake: the test split; every other video is train).
- ``csv``: a CSV file with the columns ``video,label,original,split`` (paths relative
  to the CSV's folder; label REAL/FAKE, real/fake or 0/1 with 1 = fake; original
  empty for a video with no aligned original); any other column is kept as metadata.

To add a source: a function from a path to a list of :class:`Video` (made with
:func:`video_at`), registered in :data:`LAYOUTS` (docs/datasets.md has an example).
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")
FFPP_SPLITS = ("train", "val", "test")
LABEL_WORDS = {"REAL": "REAL", "FAKE": "FAKE", "0": "REAL", "1": "FAKE"}


@dataclass(frozen=True)
class Video:
    """One labelled video of a source.

    ``name``: unique among all inputs of a run, ``<root's folder name>/<filename>``;
    the key of reports and of sample keys. ``filename``: the video's path relative
    to its root (for DFDC its file name): what a submission CSV names it by.
    ``path``: the file. ``label``: "REAL" or "FAKE". ``original``: the ``name`` of
    the real video this fake is aligned with (frame by frame), or None.
    ``split``: "train", "val", "test" or whatever the source says, or None.
    ``meta``: what else the source knows (``source``: the layout; ``method``: how a
    fake was made; ``group``: the source's sub-collection), written into every
    sample cut from the video.
    """

    name: str
    filename: str
    path: str
    label: str
    original: Optional[str] = None
    split: Optional[str] = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def _root_tag(root: str) -> str:
    return os.path.basename(os.path.abspath(root).rstrip(os.sep)) or "root"


def video_at(root: str, rel: str, label: str, original_rel: Optional[str] = None,
             split: Optional[str] = None, **meta) -> Video:
    """The :class:`Video` at ``rel`` below ``root`` (``original_rel``: its aligned
    original's path below the same root); ``meta`` items that are None are left out."""
    tag = _root_tag(root)
    rel = rel.replace("\\", "/")
    return Video(f"{tag}/{rel}", rel, os.path.join(os.path.abspath(root), rel), label,
                 None if original_rel is None else f"{tag}/{original_rel}", split,
                 {k: v for k, v in meta.items() if v is not None})


# ------------------------------------------------------------------------------- dfdc

def read_dfdc(folder: str) -> list[Video]:
    """A DFDC folder's videos from its metadata.json (files need not exist: a listed
    but missing video is reported when it is read)."""
    path = os.path.join(folder, "metadata.json")
    if not os.path.isdir(folder):
        raise ValueError(f"--input {folder}: not a folder")
    if not os.path.isfile(path):
        raise ValueError(f"--input {folder}: no metadata.json (not a DFDC folder)")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"--input {folder}: unreadable metadata.json ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"--input {folder}: metadata.json is not an object of videos")
    out = []
    for name, entry in sorted(meta.items()):
        label = entry.get("label") if isinstance(entry, dict) else None
        label = LABEL_WORDS.get(str(label).strip().upper()) if label is not None else None
        if label is None:
            raise ValueError(f"--input {folder}: metadata.json gives {name!r} the label "
                             f"{entry.get('label') if isinstance(entry, dict) else entry!r}; "
                             "expected REAL or FAKE")
        original = entry.get("original") if label == "FAKE" else None
        out.append(video_at(folder, name, label, original or None, entry.get("split"),
                          source="dfdc"))
    return out


# ------------------------------------------------------------------------------- ffpp

def read_ffpp(root: str, compression: str = "c23", splits: Optional[str] = None) -> list[Video]:
    """A FaceForensics++ root at one ``compression``; ``splits``: the folder of the
    official split files (default: the root's own, where it has them)."""
    if compression not in FFPP_COMPRESSIONS:
        raise ValueError(f"--compression must be one of {FFPP_COMPRESSIONS}, got {compression!r}")
    if not os.path.isdir(root):
        raise ValueError(f"--input {root}: not a folder")
    split_of = _ffpp_splits(splits if splits is not None else root, required=splits is not None)
    out = []
    real_dir = f"original_sequences/youtube/{compression}/videos"
    for f in _videos_in(os.path.join(root, real_dir)):
        stem = os.path.splitext(f)[0]
        out.append(video_at(root, f"{real_dir}/{f}", "REAL", None,
                          split_of.get(stem) if split_of else None, source="ffpp",
                          group="youtube", compression=compression))
    manipulated = os.path.join(root, "manipulated_sequences")
    methods = sorted(os.listdir(manipulated)) if os.path.isdir(manipulated) else []
    for method in methods:
        fake_dir = f"manipulated_sequences/{method}/{compression}/videos"
        for f in _videos_in(os.path.join(root, fake_dir)):
            stem = os.path.splitext(f)[0]
            m = re.fullmatch(r"(\d+)_(\d+)", stem)
            original = f"{real_dir}/{m.group(1)}{os.path.splitext(f)[1]}" if m else None
            split = None
            if m and split_of:
                split = split_of.get(f"{m.group(1)}_{m.group(2)}") or split_of.get(
                    f"{m.group(2)}_{m.group(1)}")
            out.append(video_at(root, f"{fake_dir}/{f}", "FAKE", original, split, source="ffpp",
                              method=method, compression=compression))
    if not out:
        raise ValueError(f"--input {root}: no FaceForensics++ videos at compression "
                         f"{compression} ({real_dir}/ or manipulated_sequences/*/"
                         f"{compression}/videos/)")
    return out


def _ffpp_splits(folder: str, required: bool) -> dict:
    """``"TTT"`` and ``"TTT_SSS"`` -> split, from ``train/val/test.json`` in ``folder``."""
    out: dict = {}
    found = [s for s in FFPP_SPLITS if os.path.isfile(os.path.join(folder, f"{s}.json"))]
    if required and not found:
        raise ValueError(f"--splits {folder}: none of {', '.join(s + '.json' for s in FFPP_SPLITS)}")
    for split in found:
        path = os.path.join(folder, f"{split}.json")
        try:
            with open(path, encoding="utf-8") as f:
                pairs = json.load(f)
            pairs = [(str(a), str(b)) for a, b in pairs]
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"--splits {path}: expected a JSON list of [\"TTT\", \"SSS\"] "
                             f"pairs ({e})") from None
        for a, b in pairs:
            for k in (a, b, f"{a}_{b}"):
                out[k] = split
    return out


# ---------------------------------------------------------------------------- celebdf

def read_celebdf(root: str) -> list[Video]:
    """A Celeb-DF (v2) root."""
    if not os.path.isdir(root):
        raise ValueError(f"--input {root}: not a folder")
    tests = _celebdf_tests(root)
    groups = {"Celeb-real": "REAL", "YouTube-real": "REAL", "Celeb-synthesis": "FAKE"}
    found = [f"{group}/{f}" for group in groups for f in _videos_in(os.path.join(root, group))]
    # a video the test list names but the folders lack is listed too: reading it
    # reports it missing, instead of the test set shrinking unseen
    out = []
    for rel in found + sorted(set(tests) - set(found)):
        group = rel.split("/", 1)[0]
        label = groups.get(group) or tests[rel]
        if rel in tests and tests[rel] != label:
            raise ValueError(f"--input {root}: List_of_testing_videos.txt calls {rel} "
                             f"{tests[rel]} but it is in {group}/")
        original = None
        if label == "FAKE":
            stem, ext = os.path.splitext(rel.rsplit("/", 1)[-1])
            m = re.fullmatch(r"(id\d+)_id\d+_(\d+)", stem)
            original = f"Celeb-real/{m.group(1)}_{m.group(2)}{ext}" if m else None
        out.append(video_at(root, rel, label, original, "test" if rel in tests else "train",
                          source="celebdf", group=group,
                          method="Celeb-synthesis" if label == "FAKE" else None))
    if not out:
        raise ValueError(f"--input {root}: no Celeb-DF videos (Celeb-real/, Celeb-synthesis/, "
                         "YouTube-real/)")
    return out


def _celebdf_tests(root: str) -> dict:
    path = os.path.join(root, "List_of_testing_videos.txt")
    out: dict = {}
    if not os.path.isfile(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, start=1):
            parts = text.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[0] not in ("0", "1"):
                raise ValueError(f"--input {path} line {line}: expected '1 path' (real) or "
                                 f"'0 path' (fake), got {text.strip()!r}")
            out[parts[1].replace("\\", "/")] = "REAL" if parts[0] == "1" else "FAKE"
    return out


# -------------------------------------------------------------------------------- csv

CSV_COLUMNS = ("video", "label", "original", "split")


def read_csv(path: str) -> list[Video]:
    """A CSV of ``video,label,original,split`` rows (paths relative to its folder)."""
    if not os.path.isfile(path):
        raise ValueError(f"--input {path}: not a file")
    root = os.path.dirname(os.path.abspath(path))
    out, seen = [], set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in ("video", "label") if c not in header]
        if missing:
            raise ValueError(f"--input {path}: the header must name the columns "
                             f"{', '.join(CSV_COLUMNS)} (and any others as metadata); "
                             f"missing {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            rel, word = row.get("video", ""), row.get("label", "")
            label = LABEL_WORDS.get(word.upper())
            if not rel or label is None:
                raise ValueError(f"--input {path} line {line}: needs a video and a label "
                                 f"(REAL/FAKE, real/fake or 0/1), got {rel!r}, {word!r}")
            if rel in seen:
                raise ValueError(f"--input {path} line {line}: {rel} is listed twice")
            seen.add(rel)
            extra = {k: v for k, v in row.items() if k not in CSV_COLUMNS and k and v}
            out.append(video_at(root, rel, label, row.get("original") or None,
                              row.get("split") or None, **{"source": "csv", **extra}))
    if not out:
        raise ValueError(f"--input {path}: no rows")
    return out


# ----------------------------------------------------------------------------- common

def _videos_in(folder: str) -> list[str]:
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(VIDEO_EXTENSIONS))


LAYOUTS: dict[str, Callable[..., list[Video]]] = {
    "dfdc": read_dfdc, "ffpp": read_ffpp, "celebdf": read_celebdf, "csv": read_csv,
}


def detect_layout(path: str) -> str:
    """The layout of ``path``, where its files say it unambiguously."""
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return "csv"
    if not os.path.isdir(path):
        raise ValueError(f"--input {path}: neither a folder nor a CSV file")
    names = set(os.listdir(path))
    found = [layout for layout, marks in (
        ("dfdc", {"metadata.json"}),
        ("ffpp", {"original_sequences", "manipulated_sequences"}),
        ("celebdf", {"Celeb-real", "Celeb-synthesis", "YouTube-real"})) if names & marks]
    if len(found) != 1:
        what = "several layouts: " + ", ".join(found) if found else "no known layout"
        raise ValueError(f"--input {path}: {what}; name it with --layout, one of "
                         f"{', '.join(LAYOUTS)} (docs/datasets.md)")
    return found[0]


def list_videos(inputs: Sequence[str], layout: Optional[str] = None, *,
                compression: str = "c23", splits: Optional[str] = None,
                split: Optional[str] = None) -> list[Video]:
    """Every labelled video of ``inputs`` (each detected unless ``layout`` is given),
    sorted by name; only those of ``split`` when given."""
    if not inputs:
        raise ValueError("--input: give at least one folder or CSV")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    videos: dict[str, Video] = {}
    roots: dict[str, str] = {}
    for path in inputs:
        kind = layout or detect_layout(path)
        tag = _root_tag(path if kind != "csv" else os.path.dirname(os.path.abspath(path)))
        where = os.path.abspath(path)
        if tag in roots and roots[tag] != where:
            raise ValueError(f"--input: two inputs are named {tag!r} ({roots[tag]}, {where}); "
                             "video names would collide")
        roots[tag] = where
        if kind == "ffpp":
            found = read_ffpp(path, compression, splits)
        else:
            found = LAYOUTS[kind](path)
        for v in found:
            videos.setdefault(v.name, v)
    out = sorted(videos.values(), key=lambda v: v.name)
    if split is not None:
        out = [v for v in out if v.split == split]
        if not out:
            raise ValueError(f"--split {split}: no video of the inputs is in that split")
    return out
