"""The evaluate command, end to end on small hand-made files (log-losses computed by hand)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dfdf_train import cli
from dfdf_train.evaluate import (details_line, details_path_for, evaluate, format_table,
                                 read_details, read_metadata, read_predictions)

ROOT = Path(__file__).resolve().parents[1]
LN = math.log

# a, c FAKE (part0); b REAL (part0); d REAL (part1); e.mp4 is predicted but unlabelled
PRED = "filename,label\na.mp4,0.9\nb.mp4,0.2\nc.mp4,0.5\nd.mp4,0.4\ne.mp4,0.7\n"
SUBMISSION_LOSS = -(LN(0.9) + LN(0.8) + LN(0.5) + LN(0.6)) / 4
DETAILS = {
    "a.mp4": {"large_crop": [0.9], "re": [0.6, 0.5], "sequence": []},
    "b.mp4": {"large_crop": [0.2], "re": [0.4]},
    "c.mp4": {},                                   # no face
    "d.mp4": {"sequence": [0.1]},
}


def _write_metadata(path: Path, labels: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: {"label": v, "split": "train"} for k, v in labels.items()}))


@pytest.fixture
def data(tmp_path):
    _write_metadata(tmp_path / "part0" / "metadata.json",
                    {"a.mp4": "FAKE", "b.mp4": "REAL", "c.mp4": "FAKE"})
    _write_metadata(tmp_path / "part1.json", {"d.mp4": "REAL"})
    pred = tmp_path / "submission.csv"
    pred.write_text(PRED)
    return tmp_path, pred, [tmp_path / "part0", tmp_path / "part1.json"]


def _write_details(pred: Path) -> Path:
    path = details_path_for(pred)
    path.write_text("".join(details_line(k, v) for k, v in DETAILS.items()))
    return path


def _losses(result):
    return {r["key"]: r["log_loss"] for r in result["rows"]}


def test_submission_log_loss_by_hand(data):
    _, pred, metadata = data
    result = evaluate(pred, metadata)
    assert _losses(result)["submission"] == pytest.approx(SUBMISSION_LOSS, rel=1e-12)
    assert _losses(result)["constant"] == pytest.approx(0.693147, abs=1e-6)
    assert (result["videos"], result["fake"], result["real"]) == (4, 2, 2)
    assert (result["missing_predictions"], result["extra_predictions"]) == (0, 1)
    assert set(_losses(result)) == {"submission", "constant"}


def test_details_rows_by_hand(data):
    _, pred, metadata = data
    result = evaluate(pred, metadata, details=_write_details(pred))
    got = _losses(result)
    t01, t03, t04 = 0.1 ** 0.65, 0.3 ** 0.65, 0.4 ** 0.65
    # y: a=1 b=0 c=1 d=0; a model without output for a video scores it 0.5
    # large_crop: a 0.9 -> 0.99 (clipped), b 0.2 -> 0.5 - t03, c, d -> 0.5
    assert got["model:large_crop"] == pytest.approx(
        -(LN(0.99) + LN(0.5 + t03) + 2 * LN(0.5)) / 4)
    # re: a [0.6, 0.5] -> weights 0.1001, 0.0001 ; b 0.4 -> 0.5 - t01
    a_re = ((0.5 + t01) * 0.1001 + 0.5 * 0.0001) / 0.1002
    assert got["model:re"] == pytest.approx(-(LN(a_re) + LN(0.5 + t01) + 2 * LN(0.5)) / 4)
    # sequence: only d, 0.1 -> 0.5 - 0.4^0.65 < 0.01 -> 0.01, y = 0
    assert 0.5 - t04 < 0.01
    assert got["model:sequence"] == pytest.approx(-(3 * LN(0.5) + LN(0.99)) / 4)
    # plain mean of all models: a 2/3, b 0.3, c 0.5, d 0.1
    assert got["all:mean"] == pytest.approx(-(LN(2 / 3) + LN(0.7) + LN(0.5) + LN(0.9)) / 4)
    # the recipe's rule on all of them pooled
    a_all = (0.99 * 0.4001 + (0.5 + t01) * 0.1001 + 0.5 * 0.0001) / 0.5003
    b_all = ((0.5 - t03) * 0.3001 + (0.5 - t01) * 0.1001) / 0.4002
    assert got["all:weighted"] == pytest.approx(
        -(LN(a_all) + LN(1 - b_all) + LN(0.5) + LN(0.99)) / 4)
    rows = {r["key"]: r for r in result["rows"]}
    assert [r["key"] for r in result["rows"]] == [
        "submission", "all:weighted", "all:mean",
        "model:large_crop", "model:re", "model:sequence", "constant"]
    assert rows["model:re"]["videos_with_output"] == 2
    assert rows["model:sequence"]["videos_with_output"] == 1


def test_cli_end_to_end_with_json(data, capsys):
    tmp, pred, metadata = data
    _write_details(pred)  # found beside the submission without --details
    out_json = tmp / "scores.json"
    rc = cli.main(["evaluate", "--pred", str(pred), "--metadata", *map(str, metadata),
                   "--json", str(out_json)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"{SUBMISSION_LOSS:.4f}" in printed
    assert "0.6931" in printed and "large_crop alone" in printed and "plain mean" in printed
    assert "4 labelled videos (2 FAKE, 2 REAL)" in printed
    saved = json.loads(out_json.read_text())
    assert _losses(saved)["submission"] == pytest.approx(SUBMISSION_LOSS)
    assert saved["details"] == str(details_path_for(pred))
    # --no-details drops the per-model rows
    cli.main(["evaluate", "--pred", str(pred), "--metadata", *map(str, metadata),
              "--no-details"])
    assert "large_crop alone" not in capsys.readouterr().out


def test_missing_predictions(data):
    tmp, pred, metadata = data
    _write_metadata(tmp / "part2.json", {"f.mp4": "FAKE", "g.mp4": "REAL"})
    with pytest.raises(ValueError, match=r"2 labelled video\(s\) have no prediction.*--missing"):
        evaluate(pred, metadata + [tmp / "part2.json"])
    result = evaluate(pred, metadata + [tmp / "part2.json"], missing=0.5)
    assert result["missing_predictions"] == 2 and result["videos"] == 6
    assert _losses(result)["submission"] == pytest.approx(
        -(LN(0.9) + LN(0.8) + LN(0.5) + LN(0.6) + 2 * LN(0.5)) / 6)
    # predicted but absent from the details file: the same rule
    pred.write_text(PRED + "f.mp4,0.7\ng.mp4,0.3\n")
    details = _write_details(pred)
    with pytest.raises(ValueError, match="2 labelled video.s. have no details line"):
        evaluate(pred, metadata + [tmp / "part2.json"], details=details)
    result = evaluate(pred, metadata + [tmp / "part2.json"], details=details, missing=0.5)
    assert (result["missing_predictions"], result["missing_details"]) == (0, 2)
    assert _losses(result)["all:mean"] == pytest.approx(
        -(LN(2 / 3) + LN(0.7) + LN(0.5) + LN(0.9) + 2 * LN(0.5)) / 6)


def test_paths_in_submission_match_by_name(data):
    tmp, _, metadata = data
    pred = tmp / "paths.csv"
    pred.write_text(PRED.replace("a.mp4", "videos/test/a.mp4"))
    assert _losses(evaluate(pred, metadata))["submission"] == pytest.approx(SUBMISSION_LOSS)


@pytest.mark.parametrize("text, message", [
    ("a.mp4,0.9\n", "header"),
    ("name,prob\na.mp4,0.9\n", "header"),
    ("filename,label\na.mp4,high\n", "line 2: label 'high' is not a number"),
    ("filename,label\na.mp4,1.5\n", r"not a probability in \[0, 1\]"),
    ("filename,label\na.mp4,nan\n", "not a probability"),
    ("filename,label\na.mp4,0.1\na.mp4,0.2\n", "line 3: 'a.mp4' is predicted twice"),
    ("filename,label\na.mp4\n", "line 2: 1 fields"),
    ("", "header"),
])
def test_malformed_submission(tmp_path, text, message):
    pred = tmp_path / "bad.csv"
    pred.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        read_predictions(pred)
    assert str(pred) in str(e.value)


def test_bad_metadata(tmp_path):
    _write_metadata(tmp_path / "unknown.json", {"a.mp4": "MAYBE"})
    with pytest.raises(ValueError, match=r"unknown.json.*'a.mp4' has label 'MAYBE'"):
        read_metadata([tmp_path / "unknown.json"])
    (tmp_path / "nolabel.json").write_text('{"a.mp4": {"split": "train"}}')
    with pytest.raises(ValueError, match="has label None"):
        read_metadata([tmp_path / "nolabel.json"])
    (tmp_path / "broken.json").write_text('{"a.mp4": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        read_metadata([tmp_path / "broken.json"])
    _write_metadata(tmp_path / "x.json", {"a.mp4": "FAKE"})
    _write_metadata(tmp_path / "y.json", {"a.mp4": "REAL"})
    with pytest.raises(ValueError, match="'a.mp4' is 0 in .*y.json but 1 in .*x.json"):
        read_metadata([tmp_path / "x.json", tmp_path / "y.json"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="--metadata: no such file: .*metadata.json"):
        read_metadata([tmp_path / "empty"])
    assert read_metadata([tmp_path / "x.json"]) == {"a.mp4": 1}


def test_bad_details(data):
    tmp, pred, metadata = data
    with pytest.raises(FileNotFoundError, match="--details"):
        evaluate(pred, metadata, details=tmp / "absent.jsonl")
    bad = tmp / "bad.jsonl"
    for text, message in [
        ('{"filename": "a.mp4"}\n', "line 1: expected"),
        ('\n{"filename": "a.mp4", "probs": {"re": [0.5, 2.0]}}\n', r"line 2: model 're'.*\[0, 1\]"),
        ('{"filename": "a.mp4", "probs": {"re": 0.5}}\n', "must be a list"),
        ('{"filename": "a.mp4", "probs": {}}\n{"filename": "a.mp4", "probs": {}}\n', "twice"),
        ("not json\n", "not valid JSON"),
    ]:
        bad.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_details(bad)


def test_details_line_round_trip(tmp_path):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    line = details_line("a.mp4", {"large_crop": np.array([0.25, 0.75]),
                                  "sequence": torch.tensor([[0.5]])})
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == {"filename": "a.mp4",
                                "probs": {"large_crop": [0.25, 0.75], "sequence": [0.5]}}
    with pytest.raises(ValueError, match="large_crop"):
        details_line("a.mp4", {"large_crop": [float("nan")]})
    assert details_path_for("out/sub.csv") == Path("out/sub.details.jsonl")


def test_cli_errors_are_plain(data):
    tmp, pred, metadata = data
    proc = subprocess.run([sys.executable, "-m", "dfdf_train", "evaluate", "--pred",
                           str(tmp / "absent.csv"), "--metadata", str(metadata[0])],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "evaluate: error: --pred: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_subprocess():
    proc = subprocess.run([sys.executable, "-m", "dfdf_train", "evaluate", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for word in ("--pred", "--metadata", "--details", "--missing", "--json", "log-loss"):
        assert word in proc.stdout


# ------------------------------------------------------------------- AUC and the layouts

def test_auc_by_hand_ties_and_one_class():
    from dfdf_train.evaluate import accuracy, auc
    # pairs (FAKE, REAL): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1
    assert auc([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)
    assert auc([1, 0], [0.2, 0.8]) == 0.0 and auc([0, 1], [0.3, 0.3]) == 0.5
    assert auc([1, 1], [0.2, 0.8]) is None and auc([0], [0.5]) is None
    assert accuracy([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]) == 0.75  # 0.5 counts as REAL


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_scikit_learn(seed):
    np = pytest.importorskip("numpy")
    from sklearn.metrics import roc_auc_score
    from dfdf_train.evaluate import auc
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    y[:2] = [0, 1]
    s = np.round(rng.random(200) * 0.5 + 0.3 * y, 1)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def _write_csv_labels(root: Path) -> Path:
    rows = ["video,label,original,split,method",
            "r/0.mp4,REAL,,train,", "r/1.mp4,REAL,,test,", "r/2.mp4,REAL,,test,",
            "f/a_0.mp4,FAKE,r/0.mp4,train,swap", "f/a_1.mp4,FAKE,r/1.mp4,test,swap",
            "f/b_1.mp4,FAKE,r/1.mp4,test,tint", "f/b_2.mp4,FAKE,r/2.mp4,test,tint"]
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


CSV_PRED = {"r/0.mp4": 0.2, "r/1.mp4": 0.6, "r/2.mp4": 0.1, "f/a_0.mp4": 0.7,
            "f/a_1.mp4": 0.9, "f/b_1.mp4": 0.4, "f/b_2.mp4": 0.5}
CSV_DETAILS = {"r/0.mp4": {"re": [0.2, 0.3]}, "r/1.mp4": {"re": [0.6], "sequence": [0.5]},
               "r/2.mp4": {"re": [0.1]}, "f/a_0.mp4": {"re": [0.7, 0.8]},
               "f/a_1.mp4": {"re": [0.9]}, "f/b_1.mp4": {"sequence": [0.4, 0.2]},
               "f/b_2.mp4": {}}


def test_csv_labels_give_auc_per_split_method_and_frames(tmp_path):
    from sklearn.metrics import log_loss as sk_log_loss, roc_auc_score
    labels = _write_csv_labels(tmp_path / "data")
    pred = tmp_path / "sub.csv"
    # predictions written with a leading folder still match by their path's tail
    pred.write_text("filename,label\n" + "".join(f"data/{k},{v}\n" for k, v in CSV_PRED.items()))
    details = _write_details_of(pred, CSV_DETAILS)
    result = evaluate(pred, [labels], details=details)
    y = {k: int(k.startswith("f/")) for k in CSV_PRED}
    names = sorted(CSV_PRED)
    sub = result["rows"][0]
    assert sub["auc"] == pytest.approx(roc_auc_score([y[n] for n in names],
                                                     [CSV_PRED[n] for n in names]))
    assert sub["log_loss"] == pytest.approx(sk_log_loss([y[n] for n in names],
                                                        [CSV_PRED[n] for n in names]))
    by = {r["key"]: r for r in result["by"]}
    assert set(by) == {"split:train", "split:test", "method:swap", "method:tint", }
    # a method: its fakes against every real
    tint = ["f/b_1.mp4", "f/b_2.mp4", "r/0.mp4", "r/1.mp4", "r/2.mp4"]
    assert by["method:tint"]["videos"] == 5 and by["method:tint"]["fake"] == 2
    assert by["method:tint"]["auc"] == pytest.approx(
        roc_auc_score([y[n] for n in tint], [CSV_PRED[n] for n in tint]))
    test = [n for n in names if n not in ("r/0.mp4", "f/a_0.mp4")]
    assert by["split:test"]["auc"] == pytest.approx(
        roc_auc_score([y[n] for n in test], [CSV_PRED[n] for n in test]))
    assert by["split:train"]["auc"] == 1.0 and by["split:train"]["accuracy"] == 1.0
    frames_y = [y[n] for n in names for m in CSV_DETAILS[n].values() for _ in m]
    frames_p = [p for n in names for m in CSV_DETAILS[n].values() for p in m]
    assert result["frame_level"]["frames"] == len(frames_p) == 10
    assert result["frame_level"]["auc"] == pytest.approx(roc_auc_score(frames_y, frames_p))
    text = format_table(result)
    assert "frame-level AUC" in text and "method tint" in text and "split test" in text


def test_one_class_is_said_plainly(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label\na.mp4,FAKE\nb.mp4,FAKE\n")
    pred = tmp_path / "sub.csv"
    pred.write_text("filename,label\na.mp4,0.9\nb.mp4,0.4\n")
    result = evaluate(pred, [labels])
    assert result["rows"][0]["auc"] is None and result["rows"][0]["accuracy"] == 0.5
    text = format_table(result)
    assert "AUC needs FAKE and REAL videos" in text and "n/a" in text


def test_two_predictions_of_one_video_are_an_error(tmp_path):
    labels = _write_csv_labels(tmp_path / "data")
    pred = tmp_path / "sub.csv"
    pred.write_text("filename,label\nr/0.mp4,0.1\ndata/r/0.mp4,0.2\n")
    with pytest.raises(ValueError, match="both the video 'r/0.mp4'"):
        evaluate(pred, [labels], missing=0.5)


def _write_details_of(pred: Path, details: dict) -> Path:
    path = details_path_for(pred)
    path.write_text("".join(details_line(k, v) for k, v in details.items()))
    return path
