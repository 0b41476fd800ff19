"""Preprocess on every layout: the same pairs and single clips whatever the source."""
import glob
import hashlib
import json
import os

import numpy as np
import pytest

import dfaug
from dfdf_train import synth
from dfdf_train.preprocess import SKIPPED, DetectorSpec, PreprocessConfig, plan, preprocess
from dfdf_train.sources import detect_layout, list_videos, read_csv
from test_preprocess import CachedDetector


@pytest.fixture(scope="module")
def detector():
    return CachedDetector(DetectorSpec(device="cpu").build())


@pytest.fixture(scope="module", params=synth.LAYOUT_NAMES)
def made(request, tmp_path_factory):
    return synth.make_layout(str(tmp_path_factory.mktemp(request.param)), request.param,
                             frames=40)


CONFIG = PreprocessConfig(clip_length=30)


@pytest.fixture(scope="module")
def full_run(made, detector, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    summary = preprocess([made.input], out, detector=detector, config=CONFIG, progress=False)
    return out, summary


def samples(out):
    return [rec for shard in sorted(glob.glob(os.path.join(out, "*.tar")))
            for rec in dfaug.read_shard(shard)]


def contents(out):
    """key -> (metadata, digest of each member's bytes) over every shard of ``out``."""
    return {rec.key: (json.dumps(rec.meta, sort_keys=True),
                      [hashlib.sha1(getattr(rec, m)).hexdigest() for m in rec.members])
            for rec in samples(out)}


def test_the_layout_is_detected_and_every_listed_video_is_found(made):
    assert detect_layout(made.input) == made.layout
    names = {v.path for v in list_videos([made.input])}
    assert set(made.pairs) | set(made.pairs.values()) | made.singles <= names
    for v in list_videos([made.input]):
        if v.path in made.pairs:
            assert v.label == "FAKE" and v.meta["method"] == made.methods[v.path]
            assert v.split == made.splits[v.path]


def test_pairs_single_clips_and_bad_inputs(made, full_run):
    out, summary = full_run
    tag = os.path.basename(made.root)
    got_pairs, got_singles = {}, {}
    videos = {}
    for rec in samples(out):
        m = rec.meta
        assert m["source"] == made.layout
        path = {k: os.path.join(made.root, m[k]) for k in ("real", "fake") if k in m}
        idx = np.asarray(m["frame_numbers"])
        x1, y1, x2, y2 = m["crop_box"]
        for member in rec.members:
            video = videos.setdefault(path[member], dfaug.read_video(path[member]))
            # the stored clip is exactly the video's frames in the box
            np.testing.assert_array_equal(rec.frames(member), video.frames[idx, y1:y2, x1:x2])
        if rec.members == ("real", "fake"):
            got_pairs[path["fake"]] = path["real"]
            assert m["method"] == made.methods[path["fake"]]
            assert m["split"] == made.splits[path["fake"]]
        else:
            (only,) = rec.members
            got_singles[path[only]] = only
            assert m["label"] == only.upper()
        # the box holds the face the video was made with
        fx1, fy1, fx2, fy2 = made.faces[path[rec.members[0]]][m["middle_frame"]]
        assert x1 <= (fx1 + fx2) / 2 <= x2 and y1 <= (fy1 + fy2) / 2 <= y2
    assert got_pairs == made.pairs
    assert set(got_singles) == made.singles
    assert summary.single_clips == len(got_singles) and summary.pairs == len(got_pairs) + len(got_singles)
    with open(os.path.join(out, SKIPPED)) as f:
        reports = [json.loads(x) for x in f]
    for rel, (action, fragment) in made.expected.items():
        mine = [r for r in reports if r["video"] == f"{tag}/{rel}"]
        assert any(r["action"] == action and fragment in r["reason"] for r in mine), (rel, mine)


def test_split_runs_equal_one_run(made, full_run, detector, tmp_path):
    out, _ = full_run
    split = str(tmp_path / "split")
    for i in range(2):
        preprocess([made.input], split, detector=detector, config=CONFIG, shard_index=i,
                   num_shards=2, progress=False)
    assert contents(split) == contents(out)


def test_single_clips_can_be_skipped(made):
    groups = plan([made.input], single_clips="skip")
    assert not any(g.alone for g in groups)
    lone = [g for g in groups if g.problem and "no FAKE names it" in g.problem]
    assert lone
    assert sum(g.alone is not None for g in plan([made.input])) >= len(made.singles)


def test_a_split_selects_its_videos(made):
    test = list_videos([made.input], split="test")
    assert test and all(v.split == "test" for v in test)
    assert {v.path for v in test} >= {p for p, s in made.splits.items() if s == "test"}
    with pytest.raises(ValueError, match="--split nosuch"):
        list_videos([made.input], split="nosuch")


def test_layouts_that_cannot_be_told_apart_or_read_are_named(tmp_path):
    with pytest.raises(ValueError, match="no known layout.*dfdc, ffpp, celebdf, csv"):
        detect_layout(str(tmp_path))
    (tmp_path / "metadata.json").write_text("{}")
    (tmp_path / "Celeb-real").mkdir()
    with pytest.raises(ValueError, match="several layouts: dfdc, celebdf"):
        detect_layout(str(tmp_path))
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.mp4,REAL\n")
    with pytest.raises(ValueError, match="missing video"):
        read_csv(str(bad))
    bad.write_text("video,label\na.mp4,maybe\n")
    with pytest.raises(ValueError, match="line 2"):
        read_csv(str(bad))
    with pytest.raises(ValueError, match="--layout must be one of"):
        list_videos([str(tmp_path)], layout="kinetics")
    with pytest.raises(ValueError, match="--single-clips"):
        PreprocessConfig(single_clips="sometimes")


def test_ffpp_end_to_end_preprocess_train_predict_evaluate(detector, tmp_path):
    """FF++-layout videos -> shards of pairs and single clips -> a small model trained
    on them -> scores under FF++ names -> AUC per method."""
    from dfdf_train.evaluate import evaluate
    from dfdf_train.predict import list_videos as predict_videos, load_models, predict
    from dfdf_train.train import TrainConfig, train
    made = synth.make_layout(str(tmp_path / "data"), "ffpp", frames=60)
    shards = str(tmp_path / "shards")
    summary = preprocess([made.input], shards, detector=detector, progress=False)  # 50 frames
    assert summary.pairs > summary.single_clips > 0  # both kinds go into training
    cfg = TrainConfig(recipe="re", data=[os.path.join(shards, "*.tar")],
                      out=str(tmp_path / "run"), model_size="b0", image_size=(64, 56),
                      batch_size=2, max_iters=3, warmup_iters=0, workers=0,
                      tensorboard=False)
    train(cfg.check())
    out = str(tmp_path / "sub.csv")
    scores = predict(predict_videos([made.input]),
                     load_models({"re": str(tmp_path / "run" / "last.pt")}, "cpu"), out)
    assert all(0.0 < s < 1.0 for s in scores.values())
    result = evaluate(out, [made.input])
    assert result["videos"] == len(list_videos([made.input]))
    by = {r["key"] for r in result["by"]}
    assert {f"method:{m}" for m in set(made.methods.values()) - {"orphan"}} <= by
    assert {"split:train", "split:test"} <= by


def test_ffpp_compression_and_split_files(tmp_path):
    """Listing only: which quality's videos, and the official split files' pairs."""
    root = tmp_path / "FF"
    for rel in ("original_sequences/youtube/c23/videos/000.mp4",
                "original_sequences/youtube/c23/videos/001.mp4",
                "original_sequences/youtube/c40/videos/000.mp4",
                "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4",
                "manipulated_sequences/Deepfakes/c23/videos/001_000.mp4",
                "manipulated_sequences/FaceSwap/c40/videos/000_001.mp4"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    c23 = list_videos([str(root)])
    assert len(c23) == 4 and {v.split for v in c23} == {None}
    c40 = {v.filename: v for v in list_videos([str(root)], compression="c40")}
    assert c40["manipulated_sequences/FaceSwap/c40/videos/000_001.mp4"].original == \
        "FF/original_sequences/youtube/c40/videos/000.mp4"
    assert c40["manipulated_sequences/FaceSwap/c40/videos/000_001.mp4"].meta["method"] == "FaceSwap"
    with pytest.raises(ValueError, match="no FaceForensics.. videos at compression raw"):
        list_videos([str(root)], compression="raw")
    with pytest.raises(ValueError, match="--compression must be one of"):
        list_videos([str(root)], compression="c99")
    splits = tmp_path / "splits"
    with pytest.raises(ValueError, match="--splits .*none of train.json"):
        list_videos([str(root)], splits=str(splits))
    splits.mkdir()
    (splits / "train.json").write_text('[["001", "000"]]')  # both directions of the pair
    (splits / "test.json").write_text("[]")
    got = {v.filename: v.split for v in list_videos([str(root)], splits=str(splits))}
    assert set(got.values()) == {"train"}
    (splits / "val.json").write_text('{"not": "pairs"}')
    with pytest.raises(ValueError, match="val.json: expected a JSON list"):
        list_videos([str(root)], splits=str(splits))
