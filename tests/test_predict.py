"""`python -m dfdf_train predict` on real and synthetic videos, with trained checkpoints."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import dfaug
from dfaug.testing import media_path
from dfdf_train import synth
from dfdf_train.predict import PredictConfig, list_videos, load_models, parse_models, predict
from dfdf_train.train import TrainConfig, train


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three small models after two iterations each on carphone pairs: enough to be
    real `train` checkpoints; what they predict is not the point here."""
    root = tmp_path_factory.mktemp("ckpt")
    clip = dfaug.read_video(media_path("carphone_pristine.mp4"))
    with dfaug.PairShardWriter(str(root / "pairs-%03d.tar")) as writer:
        for start in (0, 10):
            real = clip.take(np.arange(start, start + 50))
            writer.write(f"c{start}", real, real)
    out = {}
    for recipe in ("large_crop", "re", "sequence"):
        cfg = TrainConfig(recipe=recipe, data=[str(root / "*.tar")], out=str(root / recipe),
                          model_size="b0", image_size=(64, 56), batch_size=2, max_iters=2,
                          warmup_iters=0, workers=0, compression=False, tensorboard=False)
        train(cfg.check())
        out[recipe] = str(root / recipe / "last.pt")
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """2 real + 2 fake synthetic DFDC videos, an unreadable one and a face-less one."""
    root = tmp_path_factory.mktemp("videos")
    made = synth.make_dfdc_folder(str(root), n_real=2, fakes_per_real=1, seed=5, frames=45,
                                  folder="test_videos", split="test")
    folder = made.folders[0]
    with open(os.path.join(folder, "broken.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    street = dfaug.read_video(media_path("bikes.mp4"))
    synth.write_video(os.path.join(folder, "street.mp4"),
                      np.ascontiguousarray(street.frames[:45, 100:244, 300:476]))
    return folder, made


def read_rows(path):
    with open(path) as f:
        header, *rows = f.read().splitlines()
    assert header == "filename,label"
    return {r.split(",")[0]: float(r.split(",")[1]) for r in rows}


def test_predict_scores_every_video_and_reports_the_hopeless(checkpoints, videos, tmp_path):
    folder, made = videos
    out = str(tmp_path / "submission.csv")
    scores = predict(list_videos([folder]), load_models(checkpoints, "cpu"), out)
    rows = read_rows(out)
    names = sorted(os.path.basename(v) for v in made.videos) + ["broken.mp4", "street.mp4"]
    assert sorted(rows) == sorted(names) and rows == pytest.approx(scores, abs=1e-6)
    assert rows["broken.mp4"] == rows["street.mp4"] == 0.5
    with open(str(tmp_path / "submission.report.jsonl")) as f:
        report = {r["filename"]: r["reason"] for r in map(json.loads, f)}
    assert set(report) == {"broken.mp4", "street.mp4"}
    assert report["broken.mp4"].startswith("unreadable") and report["street.mp4"] == "no face track"
    with open(str(tmp_path / "submission.details.jsonl")) as f:
        details = {d["filename"]: d["probs"] for d in map(json.loads, f)}
    cfg = PredictConfig()
    for video in made.videos:
        name = os.path.basename(video)
        probs = details[name]
        assert 0.01 <= rows[name] <= 0.99
        # 45 frames at 29.97 fps -> 23 frames at 15 fps, faces on frames 0, 3, .., 21:
        # one track of 22 interpolated frames; sequence windows start every 14 frames
        # (2 of them, 7 outputs each); the frame models share every 2nd frame (11).
        assert len(probs["sequence"]) == 2 * cfg.window
        assert len(probs["large_crop"]) + len(probs["re"]) == 11
        assert abs(len(probs["large_crop"]) - len(probs["re"])) <= 1


def test_any_subset_of_models_works(checkpoints, videos, tmp_path):
    folder, made = videos
    out = str(tmp_path / "seq.csv")
    only = {"sequence": checkpoints["sequence"]}
    predict([made.reals[0]], load_models(only, "cpu"), out)
    with open(str(tmp_path / "seq.details.jsonl")) as f:
        probs = json.loads(f.readline())["probs"]
    assert set(probs) == {"sequence"} and len(probs["sequence"]) == 14


def test_bad_model_arguments(checkpoints, tmp_path):
    with pytest.raises(ValueError, match="NAME=CHECKPOINT"):
        parse_models(["b7=x.pt"])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_models({"re": str(tmp_path / "missing.pt")}, "cpu")
    with pytest.raises(ValueError, match="holds a 'sequence' model"):
        load_models({"re": checkpoints["sequence"]}, "cpu")
    text = tmp_path / "notashard.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="is not a checkpoint of `dfdf_train train`"):
        load_models({"re": str(text)}, "cpu")
    with pytest.raises(FileNotFoundError):
        list_videos([str(tmp_path / "nowhere")])


def test_predict_and_evaluate_on_the_command_line(checkpoints, videos, tmp_path):
    folder, made = videos
    clean = tmp_path / "clean"
    clean.mkdir()
    for v in made.videos:
        shutil.copy(v, clean)
    shutil.copy(os.path.join(folder, "metadata.json"), clean)
    out = tmp_path / "sub.csv"
    models = [f"{k}={v}" for k, v in checkpoints.items()]
    done = subprocess.run([sys.executable, "-m", "dfdf_train", "predict", "--videos", str(clean),
                           "--models", *models, "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "dfdf_train", "evaluate", "--pred", str(out),
                           "--metadata", str(clean), "--json", str(tmp_path / "e.json")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.load(open(tmp_path / "e.json"))
    assert result["videos"] == 4 and result["fake"] == 2
    assert "sequence alone" in done.stdout


@pytest.mark.parametrize("models", [["large_crop", "re"], ["re"]])
def test_frame_models_take_turns_and_each_sees_half_of_its_frames_mirrored(models):
    from dfdf_train.predict import frame_turns
    turns = frame_turns(12, models)
    assert [m for m, _ in turns] == [models[j % len(models)] for j in range(12)]
    for m in models:
        mirrored = [flip for name, flip in turns if name == m]
        assert mirrored == [j % 2 == 1 for j in range(len(mirrored))]  # alternate, half each


def test_one_video_prints_its_score_and_each_track(checkpoints, videos, tmp_path):
    _, made = videos
    out = tmp_path / "one.csv"
    done = subprocess.run([sys.executable, "-m", "dfdf_train", "predict", "--videos",
                           made.reals[0], "--models", f"sequence={checkpoints['sequence']}",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    name = os.path.basename(made.reals[0])
    score = read_rows(out)[name]
    assert f"{name}: P(FAKE) = {score:.4f} from 1 face track" in done.stdout
    assert re.search(r"track 0: frames 0\.\.4\d, \d+ detections, P\(FAKE\) 0\.\d{4} "
                     r"\(outputs: sequence 14\)", done.stdout), done.stdout


@pytest.mark.parametrize("layout", synth.LAYOUT_NAMES)
def test_each_layout_is_predicted_under_its_own_names(checkpoints, layout, tmp_path):
    from dfdf_train.evaluate import evaluate
    from dfdf_train.sources import list_videos as source_videos
    # 45 frames: 8 detections at 15 fps, enough for a track (t_min 7)
    made = synth.make_layout(str(tmp_path / "data"), layout, n_real=2, frames=45, bad=False)
    videos = list_videos([made.input])
    labelled = source_videos([made.input])
    assert sorted(name for name, _ in videos) == sorted(v.filename for v in labelled)
    assert all(os.path.isfile(path) for _, path in videos)
    out = str(tmp_path / "sub.csv")
    scores = predict(videos, load_models({"re": checkpoints["re"]}, "cpu"), out)
    assert len(scores) == 4 and all(0.01 <= s <= 0.99 for s in scores.values())
    with open(str(tmp_path / "sub.report.jsonl")) as f:
        assert f.read() == ""  # every video scored from its face tracks, none 0.5
    result = evaluate(out, [made.input])
    assert (result["videos"], result["fake"], result["missing_predictions"]) == (4, 2, 0)
    assert result["rows"][0]["auc"] is not None
