"""`python -m dfdf_train robustness` and dfaug.transcode on real and synthetic videos."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dfaug
from dfaug import CompressionParams
from dfaug.testing import media_path
from dfaug.transcode import transcode
from dfdf_train import synth
from dfdf_train.predict import PredictConfig, list_videos, load_models, predict
from dfdf_train.robustness import CELLS, Cell, parse_grid, robustness
from test_predict import checkpoints  # noqa: F401  (a fixture: three small trained models)


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """The demo's kind of held-out set: 2 real + 2 fake DFDC-layout videos."""
    made = synth.make_dfdc_folder(str(tmp_path_factory.mktemp("held")), n_real=2,
                                  fakes_per_real=1, seed=9, frames=45, folder="test_videos",
                                  split="test", methods=synth.EASY_METHODS)
    return made.folders[0]


def test_transcode_streams_a_whole_video_reproducibly():
    path = media_path("carphone_pristine.mp4")
    src = dfaug.read_video(path)
    rates = []
    for crf in (20, 35, 50):
        copy = transcode(path, CompressionParams(1000, 1.0, crf, None, codec="vp9"))
        again = transcode(path, CompressionParams(1000, 1.0, crf, None, codec="vp9"))
        assert copy.data == again.data and copy.frames == len(src)
        back = dfaug.read_video(copy.data)
        assert back.frames.shape == src.frames.shape
        rates.append(copy.kbit_s)
    assert rates[0] > rates[1] > rates[2]
    half = transcode(path, CompressionParams(15, 0.5, 30, "film"))
    back = dfaug.read_video(half.data)
    assert back.frames.shape == (60, 72, 88, 3) and half.frames == 60
    assert np.allclose(np.diff(back.pts), 1 / 15, atol=1e-3)
    with pytest.raises(dfaug.VideoDecodeError):
        transcode(b"\x00" * 1000, CompressionParams(1000, 1.0, 30, None))


def test_two_small_grids_and_the_untouched_cell_equals_predict(checkpoints, held_out,  # noqa: F811
                                                                tmp_path):
    models = load_models(checkpoints, "cpu")
    videos = list_videos([held_out])
    labelled = [v for v in videos if v[0] in json.load(open(os.path.join(held_out,
                                                                         "metadata.json")))]
    alone = predict(labelled, models, str(tmp_path / "alone.csv"), cfg=PredictConfig(threads=1))
    for k, grid in enumerate((["h264:23,40"], ["vp9:45", "h264:30:0.5"])):
        out = str(tmp_path / f"grid{k}")
        cells = parse_grid(grid)
        result = robustness(videos, models, out, cells, labels=[held_out], threads=1)
        rows = result["rows"]
        assert [r["cell"] for r in rows] == [c.key for c in cells] and len(rows) == 3
        assert all(r["videos"] == 4 and r["fake"] == 2 for r in rows)
        with open(os.path.join(out, CELLS)) as f:
            lines = [json.loads(x) for x in f]
        assert len(lines) == 4 * 3  # the unlabelled videos of the folder are not scored
        original = {x["video"]: x["score"] for x in lines if x["cell"] == "original"}
        assert original == pytest.approx(alone, abs=1e-6)
        encoded = [x for x in lines if x["cell"] != "original"]
        assert all(x["kbit_s"] > 0 for x in encoded)
        # at half size (88x72) a face may be too small to find: scored 0.5 and counted
        assert all(x["reason"] is None for x in encoded if x["scale"] == 1)
        for r in rows:
            assert r["scored_0.5"] == sum(1 for x in lines if x["cell"] == r["cell"] and x["reason"])
        for name in ("robustness.csv", "robustness.md"):
            assert open(os.path.join(out, name)).read().count("\n") == 4 + (name == "robustness.md")
        assert os.path.getsize(os.path.join(out, "robustness.png")) > 10000
    # an interrupted run resumes: its lines are kept, a cut last line is scored again
    with open(os.path.join(out, CELLS)) as f:
        text = f.read()
    with open(os.path.join(out, CELLS), "w") as f:
        f.write(text[:-20])
    again = robustness(videos, models, out, cells, labels=[held_out], threads=1)
    assert again["rows"] == result["rows"]
    with open(os.path.join(out, CELLS)) as f:
        assert sum(1 for x in f if x.strip().endswith("}")) == 12


def test_the_command_line_prints_the_table(checkpoints, held_out, tmp_path):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "dfdf_train", "robustness", "--videos", held_out,
                           "--models", f"re={checkpoints['re']}", "--out", str(tmp_path / "o"),
                           "--grid", "av1:50", "--threads", "1", "--no-plot"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| original |" in done.stdout and "| av1:50:1 | av1 | 50 |" in done.stdout
    assert not os.path.exists(tmp_path / "o" / "robustness.png")


@pytest.mark.parametrize("grid, message", [
    (["h264"], "expected CODEC:QUALITIES"), (["h264:high"], "qualities must be integers"),
    (["vp9:70"], r"crf must be an integer in \[0, 63\] for vp9"),
    (["mpeg2:5"], "codec must be one of"), (["h264:23:2"], "scale must be in"),
])
def test_bad_grids_name_the_entry(grid, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(grid)
    assert parse_grid(["h264:23,40", "h264:40"]) == [Cell(), Cell("h264", 23), Cell("h264", 40)]


def test_unreadable_and_missing_videos_score_half_with_the_reason(checkpoints, tmp_path):  # noqa: F811
    """A CSV may list a video that is corrupt or absent: 0.5 and the reason, in every cell."""
    made = synth.make_layout(str(tmp_path / "data"), "csv", n_real=2, frames=45, bad=False)
    root = os.path.dirname(made.input)
    with open(os.path.join(root, "clips", "broken.mp4"), "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with open(made.input, "a") as f:
        f.write("clips/broken.mp4,FAKE,,test,\nclips/absent.mp4,REAL,,test,\n")
    models = load_models({"re": checkpoints["re"]}, "cpu")
    result = robustness(list_videos([made.input]), models, str(tmp_path / "o"),
                        parse_grid(["h264:30"]), labels=[made.input], threads=1)
    assert [r["scored_0.5"] for r in result["rows"]] == [2, 2]
    with open(tmp_path / "o" / CELLS) as f:
        reasons = {(x["video"], x["cell"]): x["reason"] for x in map(json.loads, f)}
    assert reasons["clips/broken.mp4", "original"].startswith("unreadable")
    assert reasons["clips/absent.mp4", "h264:30:1"].startswith("missing")
    scores = predict(list_videos([made.input]), models, str(tmp_path / "p.csv"))
    assert scores["clips/absent.mp4"] == scores["clips/broken.mp4"] == 0.5
