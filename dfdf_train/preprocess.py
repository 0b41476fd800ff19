"""DFDC folders -> aligned real/fake face-clip pair shards (docs/recipe.md "Preprocessing").

Per REAL video and the FAKEs that name it as their original (metadata.json): decode,
detect faces on every 6th frame, link them into IoU tracks, pair each fake track with
the real track of the same face (IoU > 0.5 on every shared detection frame, >= 5
shared detections), and cut 50-frame clips starting on a random detection frame. A
clip has ONE static box: the middle detection's box from the real or the fake track
(50/50), scaled 1.5x about its centre and clamped to the frame; the real and the fake
clip use the same box and the same frame numbers. Pairs go into tar shards readable
by dfaug's loader.

Output (OUT):
  pairs-s{i}of{n}-{seq}.tar   pair shards (dfaug.PairShardWriter; renamed when complete)
  manifest.jsonl              one line per pair written: key, shard, real, fake, frames, box
  skipped.jsonl               one line per video or pair skipped (or kept with a note), reason
  done/                       commit records; a real video is finished once its record exists

Re-running with the same OUT skips finished real videos. Split the work with
--shard-index/--num-shards (or run under torchrun: RANK/WORLD_SIZE split it the
same way); the pairs do not depend on the split: clip starts and box choices come
from a generator seeded with (--seed, folder, video name).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Optional, Sequence

import numpy as np

from dfaug.formats import DEFAULT_FORMAT, FORMATS

from .files import write_text_atomic
from .progress import Progress
from .tracking import Track, TrackerParams, align_tracks, scale_box, track_iou

HELP = "DFDC videos -> aligned real/fake face-clip pair shards (resumable, shardable)"
log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
SKIPPED = "skipped.jsonl"
DONE_DIR = "done"


# ============================================================================ parameters


@dataclass(frozen=True)
class PreprocessConfig:
    """The recipe's geometry and the run's choices.

    ``every``: detect faces on every n-th frame. ``clip_length``: frames per clip.
    ``clips_per_pair``: clips drawn (without repeats) per aligned track pair.
    ``box_scale``: the static box is the detection scaled by this about its centre.
    ``min_detections`` / ``align_iou``: the alignment rule of real and fake tracks.
    ``decoder``: :func:`dfaug.read_video` backend. ``seed``: with folder and video
    name, seeds every random choice. ``threads``: decoder threads of one video;
    :func:`preprocess` sets it from its ``threads`` budget.
    """

    every: int = 6
    clip_length: int = 50
    clips_per_pair: int = 1
    box_scale: float = 1.5
    min_detections: int = 5
    align_iou: float = 0.5
    tracker: TrackerParams = TrackerParams()
    decoder: str = "auto"
    seed: int = 0
    threads: int = 0  # CPU threads of one video's decoding (0: FFmpeg's choice); set by preprocess()

    def __post_init__(self):
        for name, low in (("every", 1), ("clip_length", 2), ("clips_per_pair", 1),
                          ("min_detections", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, "
                                 f"got {getattr(self, name)}")
        if self.box_scale <= 0:
            raise ValueError(f"--box-scale must be > 0, got {self.box_scale}")


@dataclass(frozen=True)
class DetectorSpec:
    """How to build the detector (picklable, so worker processes build their own)."""

    name: str = "mtcnn"
    weights: Optional[str] = None
    device: Optional[str] = None
    threshold: Optional[float] = None
    longer_side: Optional[int] = 512
    batch_size: int = 32

    def build(self):
        from .faces import build_detector
        return build_detector(self.name, self.weights, self.device, threshold=self.threshold,
                              longer_side=self.longer_side, batch_size=self.batch_size)


# ============================================================================ plan


@dataclass(frozen=True)
class Group:
    """The unit of work and of resuming: one real video and its fakes.

    ``folder``: absolute path; ``tag``: its name (unique among the inputs);
    ``real``: the original's file name; ``problem``: why the original cannot be used,
    found from metadata.json alone (then only the fakes are reported).
    """

    folder: str
    tag: str
    real: str
    fakes: tuple = ()
    problem: Optional[str] = None

    @property
    def key(self) -> str:
        return f"{self.tag}/{self.real}"

    @property
    def n_videos(self) -> int:
        return len(self.fakes) + (self.problem is None)


def read_metadata(folder: str) -> dict:
    path = os.path.join(folder, "metadata.json")
    if not os.path.isdir(folder):
        raise ValueError(f"--input {folder}: not a folder")
    if not os.path.isfile(path):
        raise ValueError(f"--input {folder}: no metadata.json (not a DFDC folder)")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"--input {folder}: unreadable metadata.json ({e})") from e
    if not isinstance(meta, dict):
        raise ValueError(f"--input {folder}: metadata.json is not an object of videos")
    return meta


def plan(inputs: Sequence[str]) -> list[Group]:
    """Every group of every input folder, sorted by key (the order every shard agrees on)."""
    if not inputs:
        raise ValueError("--input: give at least one DFDC folder")
    groups: list[Group] = []
    tags: dict[str, str] = {}
    for folder in inputs:
        folder = os.path.abspath(folder)
        tag = os.path.basename(folder.rstrip(os.sep))
        if tag in tags and tags[tag] != folder:
            raise ValueError(f"--input: two folders are named {tag!r} ({tags[tag]}, {folder}); "
                             "video keys would collide")
        if tag in tags:
            continue
        tags[tag] = folder
        meta = read_metadata(folder)
        reals = {n for n, e in meta.items() if isinstance(e, dict) and e.get("label") == "REAL"}
        fakes_of: dict[str, list] = {n: [] for n in reals}
        orphans: dict[str, list] = {}
        for name, entry in meta.items():
            if not isinstance(entry, dict) or entry.get("label") != "FAKE":
                continue
            original = entry.get("original")
            if not original:
                groups.append(Group(folder, tag, name, (name,), problem="FAKE without an "
                                    "'original' in metadata.json"))
            elif original in fakes_of:
                fakes_of[original].append(name)
            else:
                orphans.setdefault(original, []).append(name)
        for real, fakes in fakes_of.items():
            groups.append(Group(folder, tag, real, tuple(sorted(fakes))))
        for original, fakes in orphans.items():
            groups.append(Group(folder, tag, original, tuple(sorted(fakes)),
                                problem=f"original {original} missing: not a REAL video "
                                        "of metadata.json"))
    return sorted(groups, key=lambda g: g.key)


def resolve_shard(index: Optional[int], count: Optional[int], env=None) -> tuple[int, int]:
    """(shard index, shard count): the flags, else torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    env = os.environ if env is None else env
    if (index is None) != (count is None):
        raise ValueError("--shard-index and --num-shards go together")
    if index is None:
        index, count = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
    if count < 1:
        raise ValueError(f"--num-shards must be >= 1, got {count}")
    if not 0 <= index < count:
        raise ValueError(f"--shard-index must be in [0, {count - 1}], got {index}")
    return index, count


def shard_groups(groups: Sequence[Group], index: int, count: int) -> list[Group]:
    """Every count-th group of the sorted list: balanced, and the same on every rank."""
    return list(groups[index::count])


# ============================================================================ one group


class Skip(Exception):
    """A video (or pair) that cannot be used; the message is the reported reason."""


@dataclass
class Pair:
    key: str
    real: object  # dfaug.Clip
    fake: object
    meta: dict


@dataclass
class GroupResult:
    key: str
    pairs: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    n_videos: int = 0
    timings: dict = field(default_factory=dict)


class _Timer:
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
    with _Timer(timings, "detect"):
        detections = detector.detect(frames[numbers])
    with _Timer(timings, "track"):
        return track_iou(detections, numbers, cfg.tracker)


def clip_starts(frames: np.ndarray, length: int, n_frames: int) -> np.ndarray:
    """Detection frames a clip can start on so that it ends on or before the track's
    last detection (where the face was last seen) and inside the video."""
    last = min(int(frames[-1]), n_frames - 1)
    return frames[frames + length - 1 <= last]


def _safe_key(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", "_".join(str(p) for p in parts))


def process_group(group: Group, detector, cfg: PreprocessConfig) -> GroupResult:
    """Every aligned pair of one real video and its fakes, and every skip with its reason.

    Never raises for bad input: whatever goes wrong with a video is reported and
    the group goes on (or ends) without it.
    """
    res = GroupResult(group.key, n_videos=group.n_videos)
    real_name = group.key
    fake_names = [f"{group.tag}/{f}" for f in group.fakes]
    if group.problem:
        res.reports += [_report(f, "skipped", group.problem) for f in fake_names]
        return res
    if not group.fakes:
        res.reports.append(_report(real_name, "skipped", "no FAKE names it as its original"))
        return res
    try:
        return _process(group, detector, cfg, res)
    except Exception as e:  # a bug or an unforeseen input: report it, keep the run going
        log.exception("%s: unexpected error", group.key)
        res.pairs = []
        res.reports.append(_report(real_name, "skipped",
                                   f"unexpected error ({type(e).__name__}: {e})"))
        return res


def _process(group: Group, detector, cfg: PreprocessConfig, res: GroupResult) -> GroupResult:
    real_name = group.key
    try:
        with _Timer(res.timings, "decode"):
            real = load_video(os.path.join(group.folder, group.real), cfg, real_name, res.reports)
        tracks_r = detect_tracks(real.frames, detector, cfg, res.timings)
        if not tracks_r:
            raise Skip(f"no face found on {len(range(0, len(real), cfg.every))} detection frames")
    except Skip as e:
        res.reports.append(_report(real_name, "skipped", str(e)))
        res.reports += [_report(f"{group.tag}/{f}", "skipped",
                                f"original {group.real} skipped: {e}") for f in group.fakes]
        return res
    n, h, w = len(real), real.height, real.width
    for fake_file in group.fakes:
        fake_name = f"{group.tag}/{fake_file}"
        try:
            with _Timer(res.timings, "decode"):
                fake = load_video(os.path.join(group.folder, fake_file), cfg, fake_name,
                                  res.reports)
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
            with _Timer(res.timings, "track"):
                aligned = align_tracks(tracks_r, tracks_f, min_iou=cfg.align_iou,
                                       min_detections=cfg.min_detections)
            if not aligned:
                raise Skip(f"no aligned track pair (IoU > {cfg.align_iou} on every shared "
                           f"detection frame, >= {cfg.min_detections} shared detections)")
        except Skip as e:
            res.reports.append(_report(fake_name, "skipped", str(e)))
            continue
        rng = np.random.default_rng(stable_seed(cfg.seed, group.tag, group.real, fake_file))
        with _Timer(res.timings, "crop"):
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
                    res.pairs.append(_cut_pair(group, fake_file, real, fake, p, int(start),
                                               rng, cfg))
        del fake
    return res


def _cut_pair(group, fake_file, real, fake, p, start, rng, cfg) -> Pair:
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
    key = _safe_key(group.tag, os.path.splitext(fake_file)[0], f"r{p.real.id}f{p.fake.id}",
                    f"{start:06d}")
    meta = {"label": "FAKE", "folder": group.tag, "real": group.real, "fake": fake_file,
            "frame_numbers": idx.tolist(), "crop_box": [x1, y1, x2, y2],
            "box_from": "real" if from_real else "fake", "middle_frame": middle,
            "detection_box": [round(float(v), 2) for v in box],
            "source_size": [real.width, real.height],
            "real_track": p.real.id, "fake_track": p.fake.id, "seed": cfg.seed}
    return Pair(key, real_crop, fake_crop, meta)


# ============================================================================ workers


_WORKER: dict = {}


def _worker_init(spec: DetectorSpec, cfg: PreprocessConfig) -> None:
    from dfaug.threads import set_torch_threads
    set_torch_threads(cfg.threads)
    _WORKER["detector"] = spec.build()
    _WORKER["cfg"] = cfg


def _worker_run(group: Group) -> GroupResult:
    return process_group(group, _WORKER["detector"], _WORKER["cfg"])


def _results(groups: list, spec: DetectorSpec, cfg: PreprocessConfig, workers: int,
             detector) -> Iterator[GroupResult]:
    """Results in the order of ``groups`` (so shards are reproducible), computed here
    with ``detector`` or by ``workers`` processes that build theirs from ``spec``."""
    if workers <= 1 or len(groups) <= 1:
        for g in groups:
            yield process_group(g, detector, cfg)
        return
    import multiprocessing as mp
    # spawn: torch and CUDA do not survive fork
    with mp.get_context("spawn").Pool(workers, _worker_init, (spec, cfg)) as pool:
        yield from pool.imap(_worker_run, groups)


# ============================================================================ output


@dataclass
class Summary:
    groups: int = 0
    real_videos: int = 0
    videos: int = 0
    pairs: int = 0
    skipped: int = 0
    kept_notes: int = 0
    already_done: int = 0
    shards: list = field(default_factory=list)
    seconds: float = 0.0
    timings: dict = field(default_factory=dict)


def _records(out_dir: str) -> list[dict]:
    d = os.path.join(out_dir, DONE_DIR)
    if not os.path.isdir(d):
        return []
    out = []
    for name in sorted(os.listdir(d)):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f))
    return out


def finished_groups(out_dir: str) -> set:
    """Keys (folder/real video) of the groups committed in ``out_dir``."""
    return {k for r in _records(out_dir) for k in r["groups"]}


def read_manifest(out_dir: str) -> list[dict]:
    """Every pair committed in ``out_dir`` (from the commit records, so also while
    other shards of the run are still going)."""
    return [p for r in _records(out_dir) for p in r["pairs"]]


def merge_reports(out_dir: str) -> tuple[int, int]:
    """Rebuild manifest.jsonl and skipped.jsonl from the commit records.

    Shards of a split run finish in any order and each rebuilds the files: a writer
    checks after writing that no record arrived meanwhile, so the last one to
    finish leaves the complete files. Returns (pairs, reports).
    """
    while True:
        records = _records(out_dir)
        pairs = [json.dumps(p, sort_keys=True) for r in records for p in r["pairs"]]
        reports = [json.dumps(s, sort_keys=True) for r in records for s in r["reports"]]
        write_text_atomic(os.path.join(out_dir, MANIFEST), "".join(x + "\n" for x in pairs))
        write_text_atomic(os.path.join(out_dir, SKIPPED), "".join(x + "\n" for x in reports))
        if len(_records(out_dir)) == len(records):
            return len(pairs), len(reports)


class _ShardSink:
    """Pairs of whole groups into one shard per commit; then the commit record.

    A group's pairs never straddle two shards, and a group counts as done only
    once the record naming it exists, written after its shard was renamed into
    place: a crash at any point leaves only complete shards and re-runs exactly the
    groups without a record.
    """

    def __init__(self, out_dir: str, tag: str, fmt: str, shard_pairs: int, max_groups: int = 64):
        self.out_dir, self.tag, self.fmt = out_dir, tag, fmt
        self.shard_pairs, self.max_groups = shard_pairs, max_groups
        os.makedirs(os.path.join(out_dir, DONE_DIR), exist_ok=True)
        self.seq = self._next_seq()
        self._clean_stale()
        self.writer = None
        self.groups: list = []
        self.pairs: list = []
        self.reports: list = []
        self.shards: list = []

    def _prefix(self) -> str:
        return f"pairs-{self.tag}-"

    def _next_seq(self) -> int:
        seqs = [int(m.group(1)) for n in os.listdir(os.path.join(self.out_dir, DONE_DIR))
                if (m := re.fullmatch(re.escape(self._prefix()) + r"(\d+)\.json", n))]
        return max(seqs) + 1 if seqs else 0

    def _clean_stale(self) -> None:
        # leftovers of a crash: temporary files, and shards renamed but never committed
        for d in (self.out_dir, os.path.join(self.out_dir, DONE_DIR)):
            for n in os.listdir(d):
                m = re.match(re.escape(self._prefix()) + r"(\d+)\.", n)
                if m and (int(m.group(1)) >= self.seq or n.endswith(".tmp")):
                    os.remove(os.path.join(d, n))
                    log.info("removed %s, left by an interrupted run", n)

    def add(self, result: GroupResult) -> None:
        import dfaug
        for pair in result.pairs:
            if self.writer is None:
                self.writer = dfaug.PairShardWriter(
                    os.path.join(self.out_dir, self._prefix() + "%06d.tar"),
                    max_bytes=1 << 62, fmt=self.fmt, start_index=self.seq)
            self.writer.write(pair.key, pair.real, pair.fake, pair.meta)
            self.pairs.append({"key": pair.key, "shard": self._prefix() + f"{self.seq:06d}.tar",
                               "real": f"{pair.meta['folder']}/{pair.meta['real']}",
                               "fake": f"{pair.meta['folder']}/{pair.meta['fake']}",
                               "label": "FAKE",
                               "frames": [pair.meta["frame_numbers"][0],
                                          pair.meta["frame_numbers"][-1]],
                               "crop_box": pair.meta["crop_box"]})
        self.groups.append(result.key)
        self.reports += result.reports
        if len(self.pairs) >= self.shard_pairs or len(self.groups) >= self.max_groups:
            self.commit()

    def commit(self) -> None:
        if not self.groups:
            return
        shard = None
        if self.writer is not None:
            shard = os.path.basename(self.writer.close()[-1])
            self.shards.append(shard)
        record = {"shard": shard, "groups": self.groups, "pairs": self.pairs,
                  "reports": self.reports}
        done = os.path.join(self.out_dir, DONE_DIR, self._prefix() + f"{self.seq:06d}.json")
        write_text_atomic(done, json.dumps(record))
        self.seq += 1
        self.writer, self.groups, self.pairs, self.reports = None, [], [], []

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def preprocess(inputs: Sequence[str], out_dir: str, *,
               config: PreprocessConfig = PreprocessConfig(),
               detector: "DetectorSpec | object" = DetectorSpec(),
               shard_index: Optional[int] = None, num_shards: Optional[int] = None,
               workers: int = 0, limit: Optional[int] = None, shard_pairs: int = 256,
               fmt: str = DEFAULT_FORMAT, progress: bool = True,
               threads: Optional[int] = None) -> Summary:
    """Run the preprocessing; see the module docstring. Returns what this run did.

    ``detector``: a :class:`DetectorSpec`, or a ready detector object (in-process
    runs only). ``limit``: stop after this many groups (real videos) of this shard.
    ``shard_pairs``: start a new shard after this many pairs (at a group boundary).
    ``threads``: CPU cores the run may use (None: those this process may run on),
    shared evenly by the ``workers`` (decoding and detection threads of each).
    """
    if workers < 0:
        raise ValueError(f"--workers must be >= 0, got {workers}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    from dfaug.threads import available_cores, torch_threads
    budget = threads or available_cores()
    config = replace(config, threads=max(1, budget // max(1, workers)))
    with torch_threads(config.threads):  # in-process runs; workers set their own
        return _preprocess(inputs, out_dir, config, detector, shard_index, num_shards,
                           workers, limit, shard_pairs, fmt, progress)


def _preprocess(inputs, out_dir, config, detector, shard_index, num_shards, workers, limit,
                shard_pairs, fmt, progress) -> Summary:
    if shard_pairs < 1:
        raise ValueError(f"--shard-pairs must be >= 1, got {shard_pairs}")
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be >= 0, got {limit}")
    import dfaug
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if config.decoder != "auto" and config.decoder not in dfaug.available_backends():
        raise ValueError(f"--decoder must be 'auto' or one of {dfaug.available_backends()}, "
                         f"got {config.decoder!r}")
    index, count = resolve_shard(shard_index, num_shards)
    t0 = time.perf_counter()
    groups = shard_groups(plan(inputs), index, count)
    spec = detector if isinstance(detector, DetectorSpec) else None
    if spec is None and workers > 1:
        raise ValueError("--workers > 1 needs a DetectorSpec (workers build their own detector)")
    # built before any output exists: a bad detector setting fails here, once, plainly
    # (worker processes build their own; this one serves runs done in-process)
    ready = spec.build() if spec is not None else detector
    os.makedirs(out_dir, exist_ok=True)
    done = finished_groups(out_dir)
    todo = [g for g in groups if g.key not in done]
    summary = Summary(already_done=len(groups) - len(todo))
    if limit is not None:
        todo = todo[:limit]
    sink = _ShardSink(out_dir, f"s{index}of{count}", fmt, shard_pairs)
    bar = Progress(sum(g.n_videos for g in todo), f"preprocess shard {index}/{count}", "videos",
                   enabled=progress)
    try:
        for group, result in zip(todo, _results(todo, spec, config, workers, ready)):
            with _Timer(summary.timings, "write"):
                sink.add(result)
            summary.groups += 1
            summary.real_videos += group.problem is None  # not a FAKE whose original is missing
            summary.videos += result.n_videos
            summary.pairs += len(result.pairs)
            summary.skipped += sum(r["action"] == "skipped" for r in result.reports)
            summary.kept_notes += sum(r["action"] == "kept" for r in result.reports)
            for k, v in result.timings.items():
                summary.timings[k] = summary.timings.get(k, 0.0) + v
            bar.update(result.n_videos)
        with _Timer(summary.timings, "write"):
            sink.commit()
    except BaseException:
        sink.abort()  # nothing half-written: the open shard's temporary file goes
        raise
    finally:
        bar.close()
    merge_reports(out_dir)
    summary.shards = sink.shards
    summary.seconds = time.perf_counter() - t0
    return summary


# ============================================================================ command line


def add_arguments(parser) -> None:
    parser.add_argument("--input", nargs="+", required=True, metavar="DIR",
                        help="DFDC folders (dfdc_train_part_N/ with metadata.json)")
    parser.add_argument("--out", required=True, metavar="OUTDIR",
                        help="output folder: pair shards, manifest.jsonl, skipped.jsonl, done/")
    parser.add_argument("--detector", default="mtcnn", help="face detector: mtcnn (default, "
                        "weights from facenet-pytorch) or torchscript (--detector-weights)")
    parser.add_argument("--detector-weights", metavar="PATH", help="TorchScript detector file")
    parser.add_argument("--threshold", type=float, help="face score threshold "
                        "(default: 0.7 for mtcnn, 0.3 for torchscript)")
    parser.add_argument("--longer-side", type=int, default=512,
                        help="detect on frames rescaled to this longer side (default 512)")
    parser.add_argument("--every", type=int, default=6, help="detect faces on every n-th frame (6)")
    parser.add_argument("--clip-length", type=int, default=50, help="frames per clip (50)")
    parser.add_argument("--clips-per-pair", type=int, default=1,
                        help="clips per aligned real/fake track pair (1)")
    parser.add_argument("--shard-index", type=int, help="this run's part of the real videos "
                        "(default: torchrun's RANK, else 0)")
    parser.add_argument("--num-shards", type=int, help="number of parts (default: torchrun's "
                        "WORLD_SIZE, else 1)")
    parser.add_argument("--shard-pairs", type=int, default=256,
                        help="pairs per output shard, rounded up to whole real videos (256)")
    parser.add_argument("--workers", type=int, default=0,
                        help="decoding/detection processes (0: in this process)")
    parser.add_argument("--seed", type=int, default=0, help="seed of clip starts and box choices")
    parser.add_argument("--device", help="detector device (default: cuda when available)")
    parser.add_argument("--decoder", default="auto", help="dfaug.read_video backend: auto (CPU), "
                        "or dali / pyav-cuda for NVDEC with frames left on the GPU")
    parser.add_argument("--format", default=DEFAULT_FORMAT, choices=FORMATS,
                        help=f"frame storage format in the shards (default {DEFAULT_FORMAT}; "
                        "docs/storage.md compares them)")
    parser.add_argument("--limit", type=int, help="stop after this many real videos (to try it out)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument("--threads", type=int, help="CPU cores this run may use (default: "
                        "those this process may run on), shared evenly by --workers")


def run(args) -> int:
    config = PreprocessConfig(every=args.every, clip_length=args.clip_length,
                              clips_per_pair=args.clips_per_pair, decoder=args.decoder,
                              seed=args.seed)
    from .faces import DETECTORS
    if args.detector not in DETECTORS:
        raise ValueError(f"--detector must be one of {sorted(DETECTORS)}, got {args.detector!r}")
    if args.longer_side is not None and args.longer_side < 16:
        raise ValueError(f"--longer-side must be >= 16, got {args.longer_side}")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ValueError(f"--threshold must be in [0, 1], got {args.threshold}")
    device = args.device
    if device is None and "LOCAL_RANK" in os.environ:
        import torch  # one GPU per torchrun process
        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    spec = DetectorSpec(args.detector, args.detector_weights, device, args.threshold,
                        args.longer_side)
    summary = preprocess(args.input, args.out, config=config, detector=spec,
                         shard_index=args.shard_index, num_shards=args.num_shards,
                         workers=args.workers, limit=args.limit, shard_pairs=args.shard_pairs,
                         fmt=args.format, progress=not args.no_progress, threads=args.threads)
    print(json.dumps({"pairs": summary.pairs, "real_videos": summary.real_videos,
                      "groups": summary.groups,
                      "videos": summary.videos, "skipped": summary.skipped,
                      "kept_with_note": summary.kept_notes,
                      "already_done": summary.already_done, "shards": summary.shards,
                      "seconds": round(summary.seconds, 2),
                      "stage_seconds": {k: round(v, 2) for k, v in summary.timings.items()}}))
    return 0
