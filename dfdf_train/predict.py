"""Scoring videos with trained models (the ``predict`` command,
:mod:`dfdf_train.commands.predict`, describes the recipe's inference): face tracks,
crops, every model's outputs, the recipe's video score; the submission, details and
report files."""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Optional

from .files import write_text_atomic
from .inference import PredictConfig
from .recipes import RECIPES

log = logging.getLogger("dfdf_train.predict")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def parse_models(items: list) -> dict:
    """Recipe name -> checkpoint of ``--models`` items: ``NAME=CHECKPOINT``, or a
    checkpoint alone, whose own recipe entry names it."""
    from .recipes import RECIPES
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep and os.path.isfile(item):
            name, path = checkpoint_recipe(item).name, item
        elif not sep or name not in RECIPES or not path:
            raise ValueError(f"--models takes NAME=CHECKPOINT with NAME in {sorted(RECIPES)}, "
                             f"or a checkpoint file; got {item!r}")
        if name in out:
            raise ValueError(f"--models names {name} twice")
        out[name] = path
    return out


def _read_checkpoint(path: str, what: str) -> dict:
    import torch
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: checkpoint {path!r} not found")
    # mmap: the optimiser's state, as large as the model, is never read
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except (RuntimeError, OSError, EOFError, ValueError) as e:  # not a torch file at all
        raise ValueError(f"{what}: {path} is not a checkpoint of `dfdf_train train` "
                         f"(torch.load: {str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ValueError(f"{what}: {path} is not a checkpoint of `dfdf_train train`")
    return state


def checkpoint_recipe(path: str, state: Optional[dict] = None):
    """The recipe entry a checkpoint was trained with: saved in it, or, for a checkpoint
    of an older dfdf_train that saved only its settings, this registry's entry of its name."""
    from .recipes import RECIPES, Recipe
    state = state if state is not None else _read_checkpoint(path, "--models")
    if "recipe" in state:
        return Recipe.from_dict(state["recipe"])
    name = state["config"].get("recipe")
    if name not in RECIPES:
        raise ValueError(f"--models: {path} holds no recipe entry (an older checkpoint) and "
                         f"its recipe {name!r} is not one of {sorted(RECIPES)}: use the "
                         "dfdf_train version that trained it, or train it again")
    return RECIPES[name]


def list_videos(paths: list, *, compression: str = "c23") -> list:
    """(filename, path) of every video of ``paths``: video files (by file name), folders
    of videos (by file name; a DFDC folder is one), FaceForensics++ and Celeb-DF roots
    and CSVs (by the path below their root, as their labels name them)."""
    from .sources import detect_layout, list_videos as source_videos
    videos = []
    for p in paths:
        if os.path.isfile(p) and p.lower().endswith(".csv"):
            videos += [(v.filename, v.path) for v in source_videos([p], "csv")]
        elif os.path.isdir(p):
            try:
                layout = detect_layout(p)
            except ValueError:
                layout = None  # a plain folder of videos
            if layout in ("ffpp", "celebdf"):
                videos += [(v.filename, v.path)
                           for v in source_videos([p], layout, compression=compression)]
            else:
                videos += [(f, os.path.join(p, f)) for f in sorted(os.listdir(p))
                           if f.lower().endswith(VIDEO_EXTENSIONS)]
        elif os.path.isfile(p):
            videos.append((os.path.basename(p), p))
        else:
            raise FileNotFoundError(f"--videos: {p!r} is neither a file nor a folder")
    if not videos:
        raise ValueError(f"--videos: no video files ({', '.join(VIDEO_EXTENSIONS)}) in {paths}")
    names = [name for name, _ in videos]
    if len(set(names)) != len(names):
        raise ValueError("--videos: two videos share a name; the submission keys on names")
    return videos


@dataclass
class LoadedModel:
    name: str
    model: object
    augment: object         # the run's PairAugment: its centre view is the model's input
    loader_size: tuple      # what the run's loader brought clips to
    recipe: object = None   # its dfdf_train.recipes.Recipe entry


def load_models(paths: dict, device: str) -> dict:
    """``train`` checkpoints -> models in eval mode on ``device``, with their input setup,
    all from the checkpoint itself (its recipe entry and settings)."""
    from .models import build_model
    out = {}
    for name, path in paths.items():
        state = _read_checkpoint(path, f"--models {name}")
        recipe = checkpoint_recipe(path, state)
        if recipe.name != name:
            raise ValueError(f"--models {name}: {path} holds a {recipe.name!r} model")
        cfg = state["config"]
        image_size = tuple(cfg.get("image_size") or recipe.image_size)
        model = build_model(name, size=cfg.get("model_size", "b7"), network=recipe.network)
        model.load_state_dict(state["model"])
        out[name] = LoadedModel(name, model.to(device).eval(), recipe.augment_for(image_size),
                                recipe.loader_size(image_size, cfg.get("input_size")), recipe)
    return out


def predict(videos: list, models: dict, out: str, *, cfg: PredictConfig = PredictConfig(),
            detector: str = "mtcnn", detector_weights: Optional[str] = None,
            device: str = "cpu", tracks: Optional[dict] = None) -> dict:
    """Score ``videos`` (paths, named by their file name, or (name, path) pairs as
    :func:`list_videos` gives them); write the submission, details and report; return
    name -> score. ``tracks``: a dict to fill with name -> each face track's
    summary (or the reason the video scored 0.5)."""
    from dfaug.threads import available_cores, torch_threads
    threads = cfg.threads or available_cores()
    videos = [(os.path.basename(v), v) if isinstance(v, str) else tuple(v) for v in videos]
    with torch_threads(threads):
        return _predict(videos, models, out, cfg, detector, detector_weights, device, threads,
                        {} if tracks is None else tracks)


def _predict(videos, models, out, cfg, detector, detector_weights, device, threads,
             tracks) -> dict:
    from .evaluate import details_line
    from .files import beside_submission, details_path_for
    from .faces import build_detector
    from .inference import NO_FACE_SCORE, aggregate
    from .progress import Progress

    det = build_detector(detector, detector_weights, device=device)
    details_path = details_path_for(out)  # where `evaluate` looks for it
    report_path = beside_submission(out, ".report.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    scores, details, report = {}, [], []
    progress = Progress(len(videos), "predict", "videos")
    for name, path in videos:
        per_track: list = []
        try:
            probs = video_probs(path, models, det, cfg, device, threads, per_track)
        except ValueError as e:  # unreadable video (VideoDecodeError is a ValueError)
            probs, reason = {}, f"unreadable: {e}"
        except OSError as e:  # listed (a CSV row, a test list) but not there
            probs, reason = {}, f"missing: {e}"
        else:
            reason = None if any(len(p) for p in probs.values()) else "no face track"
        if reason:
            report.append({"filename": name, "score": NO_FACE_SCORE, "reason": reason})
            log.warning("%s scored %.1f: %s", name, NO_FACE_SCORE, reason)
        pooled = [p for v in probs.values() for p in v]
        scores[name] = aggregate(pooled)
        tracks[name] = reason or per_track
        details.append(details_line(name, probs))
        progress.update(1)
    progress.close()
    write_text_atomic(out, "filename,label\n" + "".join(f"{n},{s:.6f}\n" for n, s in scores.items()))
    write_text_atomic(details_path, "".join(details))
    write_text_atomic(report_path, "".join(json.dumps(r) + "\n" for r in report))
    log.info("wrote %s: %d videos, %d scored 0.5 without a face or readable frames (%s)",
             out, len(scores), len(report), report_path)
    return scores


def video_probs(path: str, models: dict, detector, cfg: PredictConfig, device: str,
                threads: int = 0, tracks: Optional[list] = None) -> dict:
    """name -> list of P(FAKE) of every model output on the video's face tracks.
    ``tracks``: a list to append each track's summary to (its frames, detections,
    outputs per model, and the recipe's score of its outputs alone)."""
    import numpy as np
    import dfaug
    from .inference import aggregate
    from .tracking import TrackerParams, interpolate_boxes, scale_box, track_iou

    # frames stay as decoded; only those detected on and the crops become RGB
    clip = dfaug.read_video(path, backend="pyav", lazy=True, threads=threads)
    step = max(1, round(1 / clip.frame_duration() / cfg.fps))
    kept = np.arange(0, len(clip), step)                      # the 15-fps frames
    h, w = clip.height, clip.width
    detected = np.arange(0, len(kept), cfg.detect_every)
    detections = detector.detect(clip.frames[kept[detected]])
    found = track_iou(detections, detected, TrackerParams(t_min=cfg.t_min))
    probs: dict = {name: [] for name in models}
    order = sorted(models, key=lambda m: list(RECIPES).index(m) if m in RECIPES else len(RECIPES))
    window_models = [m for m in order if models[m].recipe.prediction == "windows"]
    frame_models = [m for m in order if models[m].recipe.prediction == "frames"]
    for number, track in enumerate(found):
        before = {m: len(v) for m, v in probs.items()}
        numbers, boxes = interpolate_boxes(track)
        if window_models:
            windows = [(i, i + cfg.window) for i in range(0, len(numbers) - cfg.window + 1,
                                                          cfg.window_step)]
            crops = []
            for k, (a, b) in enumerate(windows):
                x1, y1, x2, y2 = scale_box(boxes[(a + b - 1) // 2], cfg.box_scale, w, h)
                crops.append((clip.frames[kept[numbers[a:b]], y1:y2, x1:x2], k % 2 == 1))
            for m in window_models:
                probs[m] += run_model(models[m], crops, cfg, device)
        if frame_models:
            chosen = np.arange(0, len(numbers), cfg.frame_step)
            per_model: dict = {m: [] for m in frame_models}
            for i, (m, mirror) in zip(chosen, frame_turns(len(chosen), frame_models)):
                x1, y1, x2, y2 = scale_box(boxes[i], cfg.box_scale, w, h)
                per_model[m].append((clip.frames[kept[numbers[i:i + 1]], y1:y2, x1:x2], mirror))
            for m, crops in per_model.items():
                probs[m] += run_model(models[m], crops, cfg, device)
        if tracks is not None:
            mine = {m: v[before[m]:] for m, v in probs.items()}
            tracks.append({"track": number, "frames": [int(kept[numbers[0]]), int(kept[numbers[-1]])],
                           "detections": len(track), "score": aggregate(
                               [p for v in mine.values() for p in v]),
                           "outputs": {m: len(v) for m, v in mine.items()}})
    return probs


def frame_turns(n: int, frame_models: list) -> list:
    """(model, mirrored) of each of ``n`` chosen track frames: the frame models take
    turns, and every other frame a model gets is mirrored, so that each model sees
    half of its frames flipped (a plain k % 2 would flip all of one model's frames)."""
    k = len(frame_models)
    return [(frame_models[j % k], (j // k) % 2 == 1) for j in range(n)]


def run_model(m: LoadedModel, crops: list, cfg: PredictConfig, device: str) -> list:
    """Crops (frames (T, h, w, 3) cut to the face box, mirror) -> sigmoid outputs, T per crop."""
    import numpy as np
    import torch
    import dfaug
    inputs = []
    for frames, mirror in crops:
        clip = dfaug.fit_to(np.ascontiguousarray(frames), m.loader_size)
        x = m.augment.center(torch.from_numpy(clip)[None])[0]          # (T, 3, h, w)
        inputs.append(x.flip(-1) if mirror else x)
    out: list = []
    with torch.no_grad():
        for i in range(0, len(inputs), cfg.batch_size):
            batch = torch.stack(inputs[i:i + cfg.batch_size]).to(device)
            if m.recipe.network == "frame":
                batch = batch.flatten(0, 1)                              # (B, 3, h, w)
            out += torch.sigmoid(m.model(batch).float()).flatten().cpu().tolist()
    return out
