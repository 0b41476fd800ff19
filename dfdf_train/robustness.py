"""Scoring held-out videos re-encoded over a grid of codecs, qualities and scales
(the ``robustness`` command, :mod:`dfdf_train.commands.robustness`, says what it
writes; docs/compression.md)."""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Optional

from .files import write_text_atomic

log = logging.getLogger("dfdf_train.robustness")

DEFAULT_GRID = ("h264:23,32,40", "h264:23:0.5", "hevc:28,38", "vp9:33,50", "av1:35,55")
KEEP_RATE = 1000.0  # an fps at or above a video's own keeps every frame
CELLS = "cells.jsonl"


@dataclass(frozen=True)
class Cell:
    """One column of the grid: ``codec`` None is the untouched video."""

    codec: Optional[str] = None
    quality: Optional[int] = None
    scale: float = 1.0

    @property
    def key(self) -> str:
        return "original" if self.codec is None else f"{self.codec}:{self.quality}:{self.scale:g}"

    def params(self):
        from dfaug import CompressionParams
        return CompressionParams(KEEP_RATE, self.scale, self.quality, None, codec=self.codec)


def parse_grid(entries) -> list:
    """Cells of ``CODEC:QUALITIES[:SCALES]`` entries, each checked; the untouched video first."""
    cells = [Cell()]
    for entry in entries:
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise ValueError(f"--grid {entry!r}: expected CODEC:QUALITIES[:SCALES], "
                             "e.g. h264:23,40 or vp9:33:1,0.5")
        try:
            qualities = [int(q) for q in parts[1].split(",")]
            scales = [float(x) for x in parts[2].split(",")] if len(parts) == 3 else [1.0]
        except ValueError:
            raise ValueError(f"--grid {entry!r}: qualities must be integers and scales "
                             "numbers") from None
        for q in qualities:
            for x in scales:
                cell = Cell(parts[0], q, x)
                try:
                    cell.params()
                except ValueError as e:
                    raise ValueError(f"--grid {entry!r}: {e}") from None
                if cell not in cells:
                    cells.append(cell)
    return cells


def _done(path: str) -> dict:
    """(video, cell) -> its line, of a cells.jsonl written before (a cut last line is dropped)."""
    out = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for text in f:
                try:
                    row = json.loads(text)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption: scored again
                out[row["video"], row["cell"]] = row
    return out


def robustness(videos: list, models: dict, out: str, cells: list, *, labels: list,
               layout: Optional[str] = None, detector: str = "mtcnn",
               detector_weights: Optional[str] = None, device: str = "cpu",
               threads: Optional[int] = None, plot: bool = True) -> dict:
    """Score ``videos`` ((name, path) pairs) in every cell; write the table, the plot and
    the per-video lines to ``out``; return {"rows": per-cell metrics, "markdown": table}."""
    from dfaug.threads import available_cores, torch_threads
    threads = threads or available_cores()
    with torch_threads(threads):
        return _robustness(videos, models, out, cells, labels, layout, detector,
                           detector_weights, device, threads, plot)


def _robustness(videos, models, out, cells, labels, layout, detector, detector_weights,
                device, threads, plot) -> dict:
    import av
    from dfaug.transcode import transcode
    from .evaluate import match_names, read_labels
    from .faces import build_detector
    from .inference import NO_FACE_SCORE, aggregate
    from .predict import PredictConfig, video_probs
    from .progress import Progress

    truth = read_labels(labels, layout)
    known = match_names({name: name for name, _ in videos}, truth, "--videos")  # label -> video
    if not known:
        raise ValueError("--metadata: none of the --videos is labelled there")
    labelled = set(known.values())
    os.makedirs(out, exist_ok=True)
    lines_path = os.path.join(out, CELLS)
    done = _done(lines_path)
    todo = [(name, path, cell) for name, path in videos if name in labelled for cell in cells
            if (name, cell.key) not in done]
    cfg = PredictConfig(threads=threads)
    det = build_detector(detector, detector_weights, device=device)
    bar = Progress(len(todo), "robustness", "videos x cells")
    with open(lines_path, "a", encoding="utf-8") as lines:
        for name, path, cell in todo:
            reason = None
            try:
                if cell.codec is None:
                    data = path
                    with av.open(path) as c:
                        seconds = float(c.duration or 0) / 1e6
                    kbit_s = os.path.getsize(path) * 8 / 1000 / seconds if seconds else None
                else:
                    copy = transcode(path, cell.params(), threads=1)
                    data, kbit_s = copy.data, copy.kbit_s
                probs = video_probs(data, models, det, cfg, device, threads)
            except (ValueError, av.error.FFmpegError) as e:  # unreadable, or too small for the codec
                probs, reason, kbit_s = {}, f"unreadable: {e}", None
            except OSError as e:  # listed but not there
                probs, reason, kbit_s = {}, f"missing: {e}", None
            if not reason and not any(len(p) for p in probs.values()):
                reason = "no face track"
            score = aggregate([p for v in probs.values() for p in v])
            row = {"video": name, "cell": cell.key, "codec": cell.codec,
                   "quality": cell.quality, "scale": cell.scale, "score": round(score, 6),
                   "kbit_s": None if kbit_s is None else round(kbit_s, 1), "reason": reason}
            lines.write(json.dumps(row) + "\n")
            lines.flush()
            done[name, cell.key] = row
            if reason:
                log.warning("%s in %s scored %.1f: %s", name, cell.key, NO_FACE_SCORE, reason)
            bar.update(1)
    bar.close()
    rows = _table(cells, known, truth, done)
    markdown = _markdown(rows)
    write_text_atomic(os.path.join(out, "robustness.md"), markdown + "\n")
    write_text_atomic(os.path.join(out, "robustness.csv"), _csv(rows))
    if plot:
        plot_rows(rows, os.path.join(out, "robustness.png"))
    return {"rows": rows, "markdown": markdown}


def _table(cells, known: dict, truth: dict, done: dict) -> list:
    """Per cell: the labelled videos' metrics and mean bitrate. ``known``: label name ->
    video name; ``done``: (video name, cell key) -> its line."""
    import numpy as np
    from .evaluate import metrics
    rows = []
    names = sorted(known)
    y = np.array([truth[k].y for k in names], dtype=np.float64)
    for cell in cells:
        lines = [done[known[k], cell.key] for k in names]
        p = np.array([line["score"] for line in lines], dtype=np.float64)
        rates = [line["kbit_s"] for line in lines if line["kbit_s"] is not None]
        rows.append({"cell": cell.key, "codec": cell.codec or "original",
                     "quality": cell.quality, "scale": cell.scale, "videos": len(names),
                     "fake": int(y.sum()), **metrics(y, p),
                     "kbit_s": round(float(np.mean(rates)), 1) if rates else None,
                     "scored_0.5": sum(1 for line in lines if line["reason"])})
    return rows


COLUMNS = ("cell", "codec", "quality", "scale", "videos", "fake", "log_loss", "auc", "accuracy",
           "kbit_s", "scored_0.5")


def _fmt(column: str, v) -> str:
    if v is None:
        return "n/a"
    if column in ("log_loss", "auc", "accuracy"):
        return f"{v:.4f}"
    if column == "kbit_s":
        return f"{v:.1f}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _csv(rows: list) -> str:
    return ",".join(COLUMNS) + "\n" + "".join(
        ",".join("" if r[c] is None else str(r[c]) for c in COLUMNS) + "\n" for r in rows)


def _markdown(rows: list) -> str:
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    return head + "".join("| " + " | ".join(_fmt(c, r[c]) for c in COLUMNS) + " |\n"
                          for r in rows).rstrip("\n")


def plot_rows(rows: list, path: str) -> None:
    """AUC and log-loss against bitrate, one line per codec and scale; the untouched
    video's figures as dashed lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker  # noqa: F401  (matplotlib.ticker below)
    except ImportError:
        raise ValueError("robustness.png needs matplotlib: pip install matplotlib, or "
                         "pass --no-plot") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    original = next(r for r in rows if r["codec"] == "original")
    lines: dict = {}
    for r in rows:
        if r["codec"] != "original" and r["kbit_s"]:
            lines.setdefault((r["codec"], r["scale"]), []).append(r)
    from dfaug import CODECS
    order = sorted(lines, key=lambda k: (list(CODECS).index(k[0]), -k[1]))
    for ax, metric, label, chance in ((axes[0], "auc", "AUC (higher is better)", 0.5),
                                      (axes[1], "log_loss", "log-loss (lower is better)",
                                       math.log(2))):
        for codec, scale in order:
            rs = lines[codec, scale]
            rs = sorted(rs, key=lambda r: r["kbit_s"])
            xs = [r["kbit_s"] for r in rs if r[metric] is not None]
            ys = [r[metric] for r in rs if r[metric] is not None]
            ax.plot(xs, ys, marker="o", label=f"{codec}" + ("" if scale == 1 else f" x{scale:g}"))
            for r in rs:
                if r[metric] is not None:
                    ax.annotate(str(r["quality"]), (r["kbit_s"], r[metric]), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        if original[metric] is not None:
            ax.axhline(original[metric], color="black", linestyle="--", linewidth=1,
                       label="untouched")
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label="constant 0.5")
        ax.set_xscale("log")
        rates = [r["kbit_s"] for rs in lines.values() for r in rs]
        if rates:
            ax.set_xticks([v for v in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
                                       20000) if min(rates) / 2 <= v <= max(rates) * 2])
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("bitrate of the re-encoded videos, kbit/s (labels: quality value)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    n = original["videos"]
    fig.suptitle(f"Detector on re-encoded copies of {n} held-out videos")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
