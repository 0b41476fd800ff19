"""One group -> its samples and reports: decode, detect, track, align, cut.

Never raises for bad input: whatever goes wrong with a video is reported and the
group goes on (or ends) without it. Knows no data set: videos come as
:class:`dfdf_train.sources.Video`.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..sources import Video
from ..tracking import Track, align_tracks, scale_box, track_iou
from .config import PreprocessConfig
from .groups import Group

log = logging.getLogger("dfdf_train.preprocess")


class Skip(Exception):
    """A video (or pair) that cannot be used; the message is the reported reason."""


@dataclass
class Sample:
    """One shard sample: ``clips`` maps "real" and "fake" (a pair) or one of them (a
    single clip) to its dfaug.Clip."""

    key: str
    clips: dict
    meta: dict


@dataclass
class GroupResult:
    key: str
    samples: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    n_videos: int = 0
    timings: dict = field(default_factory=dict)


class Timer:
    def __init__(self, timings: dict, stage: str):
        self.timings, self.stage = timings, stage

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self.t


def stable_seed(*parts) -> list[int]:
    """Integers for numpy's SeedSequence from strings/ints; stable across runs and
    machines (Python's hash() is salted per process)."""
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append(p)
        else:
            out.append(int.from_bytes(hashlib.sha256(str(p).encode()).digest()[:8], "little"))
    return out


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (NVDEC backends leave frames on the GPU)
        return x.detach().cpu().numpy()
    return np.asarray(x)


def probe_rotation(path: str) -> int:
    """Display rotation of the first video frame in degrees (0 when unknown).

    PyAV (and so dfaug.read_video) returns the pixels as stored; a phone video
    with a 90-degree display matrix would reach the detector sideways.
    """
    import av
    try:
        with av.open(path) as container:
            for frame in container.decode(video=0):
                return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    except Exception:  # unreadable: read_video will say why
        return 0
    return 0


def load_video(path: str, cfg: PreprocessConfig, name: str, reports: list):
    """Decode one video or raise :class:`Skip`; unusual-but-usable properties are
    appended to ``reports`` as ``kept`` notes."""
    import dfaug
    if not os.path.exists(path):
        raise Skip("file missing")
    rotation = probe_rotation(path)
    if rotation:
        raise Skip(f"rotated video (display rotation {rotation} degrees): frames would reach "
                   "the detector sideways and the pair may not align; not supported")
    # On the CPU the frames stay as decoded and become RGB only when used: the
    # detector sees every 6th frame and the crops 50 a pair, and converting every
    # 1080p frame was over half of the decoding time (docs/preprocess.md).
    backend, options = cfg.decoder, {}
    if cfg.decoder in ("auto", "pyav"):
        backend, options = "pyav", {"lazy": True, "threads": cfg.threads}
    try:
        clip = dfaug.read_video(path, backend=backend, **options)
    except dfaug.VideoDecodeError as e:
        raise Skip(f"unreadable video: {e}") from None
    except FileNotFoundError:
        raise Skip("file missing") from None
    except Exception as e:  # whatever FFmpeg or a GPU decoder throws: one video, not the run
        raise Skip(f"unreadable video ({type(e).__name__}: {e})") from None
    t, h, w = len(clip), clip.height, clip.width
    if t < cfg.clip_length:
        raise Skip(f"too short: {t} frames < clip length {cfg.clip_length}")
    if h % 2 or w % 2:
        reports.append(_report(name, "kept", f"odd frame size {w}x{h}: processed (crops are "
                                             "stored losslessly at any size)"))
    steps = np.diff(clip.pts)
    if len(steps) and (steps.max() - steps.min()) > 0.1 * np.median(steps):
        reports.append(_report(name, "kept", f"variable frame rate (frame steps "
                                             f"{steps.min():.4f}..{steps.max():.4f} s): processed; "
                                             "real and fake align by frame number and the pair "
                                             "stores their timestamps"))
    return clip


def _report(video: str, action: str, reason: str, **extra) -> dict:
    return {"video": video, "action": action, "reason": reason, **extra}


def detect_tracks(frames, detector, cfg: PreprocessConfig, timings: dict) -> list[Track]:
    numbers = np.arange(0, int(frames.shape[0]), cfg.every)
    with Timer(timings, "detect"):
        detections = detector.detect(frames[numbers])
    with Timer(timings, "track"):
        return track_iou(detections, numbers, cfg.tracker)


def clip_starts(frames: np.ndarray, length: int, n_frames: int) -> np.ndarray:
    """Detection frames a clip can start on so that it ends on or before the track's
    last detection (where the face was last seen) and inside the video."""
    last = min(int(frames[-1]), n_frames - 1)
    return frames[frames + length - 1 <= last]


def _safe_key(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", "_".join(str(p) for p in parts))


def process_group(group: Group, detector, cfg: PreprocessConfig) -> GroupResult:
    """Every aligned pair of one real video and its fakes, or the single clips of a
    video cut alone, and every skip with its reason.

    Never raises for bad input: whatever goes wrong with a video is reported and
    the group goes on (or ends) without it.
    """
    res = GroupResult(group.key, n_videos=group.n_videos)
    if group.problem:
        res.reports += [_report(v.name, "skipped", group.problem) for v in group.videos]
        return res
    try:
        if group.alone is not None:
            return _process_alone(group, detector, cfg, res)
        return _process(group, detector, cfg, res)
    except Exception as e:  # a bug or an unforeseen input: report it, keep the run going
        log.exception("%s: unexpected error", group.key)
        res.samples = []
        res.reports.append(_report(group.key, "skipped",
                                   f"unexpected error ({type(e).__name__}: {e})"))
        return res


def _process_alone(group: Group, detector, cfg: PreprocessConfig, res: GroupResult) -> GroupResult:
    video = group.alone
    try:
        with Timer(res.timings, "decode"):
            clip = load_video(video.path, cfg, video.name, res.reports)
        tracks = detect_tracks(clip.frames, detector, cfg, res.timings)
        if not tracks:
            raise Skip(f"no face found on {len(range(0, len(clip), cfg.every))} detection frames")
    except Skip as e:
        res.reports.append(_report(video.name, "skipped", str(e)))
        return res
    res.reports.append(_report(video.name, "kept", group.note))
    rng = np.random.default_rng(stable_seed(cfg.seed, *video.name.split("/", 1)))
    with Timer(res.timings, "crop"):
        for track in tracks:
            starts = clip_starts(track.frames, cfg.clip_length, len(clip))
            if len(starts) == 0:
                res.reports.append(_report(
                    video.name, "skipped", f"track covers frames {track.frames[0]}.."
                    f"{track.frames[-1]}, shorter than the clip length {cfg.clip_length}",
                    track=int(track.id)))
                continue
            k = min(cfg.clips_per_pair, len(starts))
            for start in np.sort(rng.choice(starts, size=k, replace=False)):
                res.samples.append(_cut_alone(video, clip, track, int(start), cfg))
    return res


def _process(group: Group, detector, cfg: PreprocessConfig, res: GroupResult) -> GroupResult:
    real_video = group.real
    real_name = real_video.name
    try:
        with Timer(res.timings, "decode"):
            real = load_video(real_video.path, cfg, real_name, res.reports)
        tracks_r = detect_tracks(real.frames, detector, cfg, res.timings)
        if not tracks_r:
            raise Skip(f"no face found on {len(range(0, len(real), cfg.every))} detection frames")
    except Skip as e:
        res.reports.append(_report(real_name, "skipped", str(e)))
        res.reports += [_report(f.name, "skipped", f"original {real_video.filename} skipped: {e}")
                        for f in group.fakes]
        return res
    n, h, w = len(real), real.height, real.width
    for fake_video in group.fakes:
        fake_name = fake_video.name
        try:
            with Timer(res.timings, "decode"):
                fake = load_video(fake_video.path, cfg, fake_name, res.reports)
            if (fake.height, fake.width) != (h, w):
                raise Skip(f"frame size differs: fake {fake.width}x{fake.height}, real {w}x{h}")
            if len(fake) != n:
                raise Skip(f"frame count differs: fake {len(fake)}, real {n}")
            gap = float(np.max(np.abs(fake.pts - real.pts)))
            if gap > 0.25 * real.frame_duration():
                raise Skip(f"timestamps differ from the real's by up to {gap:.4f} s")
            tracks_f = detect_tracks(fake.frames, detector, cfg, res.timings)
            if not tracks_f:
                raise Skip("no face found")
            with Timer(res.timings, "track"):
                aligned = align_tracks(tracks_r, tracks_f, min_iou=cfg.align_iou,
                                       min_detections=cfg.min_detections)
            if not aligned:
                raise Skip(f"no aligned track pair (IoU > {cfg.align_iou} on every shared "
                           f"detection frame, >= {cfg.min_detections} shared detections)")
        except Skip as e:
            res.reports.append(_report(fake_name, "skipped", str(e)))
            continue
        tag, real_file = real_name.split("/", 1)
        rng = np.random.default_rng(stable_seed(cfg.seed, tag, real_file, fake_video.filename))
        with Timer(res.timings, "crop"):
            for p in aligned:
                track_id = f"r{p.real.id}f{p.fake.id}"
                starts = clip_starts(p.frames, cfg.clip_length, n)
                if len(starts) == 0:
                    res.reports.append(_report(
                        fake_name, "skipped", f"aligned tracks cover frames {p.frames[0]}.."
                        f"{p.frames[-1]}, shorter than the clip length {cfg.clip_length}",
                        pair=track_id))
                    continue
                k = min(cfg.clips_per_pair, len(starts))
                for start in np.sort(rng.choice(starts, size=k, replace=False)):
                    res.samples.append(_cut_pair(real_video, fake_video, real, fake, p,
                                                 int(start), rng, cfg))
        del fake
    return res


def _source_meta(video: Video) -> dict:
    """What the source says of a video, for every sample cut from it."""
    return {**({"split": video.split} if video.split is not None else {}), **video.meta}


def _cut_pair(real_video: Video, fake_video: Video, real, fake, p, start, rng, cfg) -> Sample:
    import dfaug

    idx = np.arange(start, start + cfg.clip_length)
    inside = p.frames[(p.frames >= start) & (p.frames <= idx[-1])]
    middle = int(inside[len(inside) // 2])
    from_real = bool(rng.random() < 0.5)
    box = (p.real if from_real else p.fake).box_at(middle)
    x1, y1, x2, y2 = scale_box(box, cfg.box_scale, real.width, real.height)
    pts = real.pts[idx]
    # the same box, the same frame numbers, the same timestamps: an aligned pair
    real_crop = dfaug.Clip(np.ascontiguousarray(_numpy(real.frames[idx, y1:y2, x1:x2])), pts)
    fake_crop = dfaug.Clip(np.ascontiguousarray(_numpy(fake.frames[idx, y1:y2, x1:x2])), pts)
    tag = real_video.name.split("/", 1)[0]
    key = _safe_key(tag, os.path.splitext(fake_video.filename)[0], f"r{p.real.id}f{p.fake.id}",
                    f"{start:06d}")
    meta = {**_source_meta(fake_video),
            "label": "FAKE", "folder": tag, "real": real_video.filename,
            "fake": fake_video.filename,
            "frame_numbers": idx.tolist(), "crop_box": [x1, y1, x2, y2],
            "box_from": "real" if from_real else "fake", "middle_frame": middle,
            "detection_box": [round(float(v), 2) for v in box],
            "source_size": [real.width, real.height],
            "real_track": p.real.id, "fake_track": p.fake.id, "seed": cfg.seed}
    return Sample(key, {"real": real_crop, "fake": fake_crop}, meta)


def _cut_alone(video: Video, clip, track: Track, start: int, cfg) -> Sample:
    """A single clip of ``video``: the track's middle detection box, scaled, as in a pair."""
    import dfaug

    idx = np.arange(start, start + cfg.clip_length)
    inside = track.frames[(track.frames >= start) & (track.frames <= idx[-1])]
    middle = int(inside[len(inside) // 2])
    box = track.box_at(middle)
    x1, y1, x2, y2 = scale_box(box, cfg.box_scale, clip.width, clip.height)
    crop = dfaug.Clip(np.ascontiguousarray(_numpy(clip.frames[idx, y1:y2, x1:x2])), clip.pts[idx])
    tag = video.name.split("/", 1)[0]
    member = video.label.lower()
    key = _safe_key(tag, os.path.splitext(video.filename)[0], f"t{track.id}", f"{start:06d}")
    meta = {**_source_meta(video),
            "label": video.label, "folder": tag, member: video.filename,
            **({"original": video.original.split("/", 1)[1]} if video.original else {}),
            "frame_numbers": idx.tolist(), "crop_box": [x1, y1, x2, y2],
            "middle_frame": middle, "detection_box": [round(float(v), 2) for v in box],
            "source_size": [clip.width, clip.height], "track": track.id, "seed": cfg.seed}
    return Sample(key, {member: crop}, meta)
