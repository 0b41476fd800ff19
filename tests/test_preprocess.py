import glob
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dfaug
from dfdf_train import cli, synth
from dfdf_train.preprocess import (MANIFEST, SKIPPED, DetectorSpec, PreprocessConfig,
                                   finished_groups, plan, preprocess, read_manifest,
                                   resolve_shard, shard_groups)
from dfdf_train.tracking import scale_box


class CachedDetector:
    """MTCNN, remembering its answer per batch of frames: the runs below re-detect
    the same videos (split, resumed) and the detector is what costs."""

    def __init__(self, inner):
        self.inner, self.cache, self.calls = inner, {}, 0

    def detect(self, frames):
        a = np.ascontiguousarray(np.asarray(frames))
        key = (a.shape, hashlib.sha1(a.tobytes()).hexdigest())
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = self.inner.detect(a)
        return [b.copy() for b in self.cache[key]]


@pytest.fixture(scope="module")
def detector():
    return CachedDetector(DetectorSpec(device="cpu").build())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return synth.make_dfdc_folder(str(tmp_path_factory.mktemp("dfdc")), n_real=3,
                                  fakes_per_real=2, seed=3, frames=60, parts=2)


@pytest.fixture(scope="module")
def full_run(dataset, detector, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("full"))
    summary = preprocess(dataset.folders, out, detector=detector, progress=False)
    return out, summary


def pair_contents(out):
    """key -> (meta, real frames digest, fake frames digest) over every shard of ``out``."""
    got = {}
    for shard in sorted(glob.glob(os.path.join(out, "*.tar"))):
        for rec in dfaug.read_shard(shard):
            assert isinstance(rec, dfaug.PairRecord), rec
            assert rec.key not in got, f"duplicate pair {rec.key}"
            got[rec.key] = (json.dumps(rec.meta, sort_keys=True),
                            hashlib.sha1(rec.real).hexdigest(), hashlib.sha1(rec.fake).hexdigest())
    return got


def manifest_lines(out):
    with open(os.path.join(out, MANIFEST)) as f:
        lines = [json.loads(x) for x in f]
    return sorted((x["key"], x["real"], x["fake"], tuple(x["frames"]), tuple(x["crop_box"]))
                  for x in lines)


def test_pairs_are_aligned_crops_of_the_right_videos(full_run, dataset):
    out, summary = full_run
    assert summary.pairs >= 4 and summary.shards
    manifest = read_manifest(out)
    assert len(manifest) == summary.pairs == len(manifest_lines(out))
    assert not glob.glob(os.path.join(out, "*.tmp"))
    by_name = {f"{os.path.basename(os.path.dirname(p))}/{os.path.basename(p)}": p
               for p in dataset.videos}
    videos = {}
    n = 0
    for shard in sorted(glob.glob(os.path.join(out, "*.tar"))):
        for rec in dfaug.read_shard(shard):
            n += 1
            m = rec.meta
            real_path = by_name[f"{m['folder']}/{m['real']}"]
            fake_path = by_name[f"{m['folder']}/{m['fake']}"]
            assert dataset.fakes[fake_path] == real_path  # the fake's own original
            for p in (real_path, fake_path):
                videos.setdefault(p, dfaug.read_video(p))
            idx = np.asarray(m["frame_numbers"])
            assert len(idx) == 50 and np.all(np.diff(idx) == 1) and idx[0] % 6 == 0
            x1, y1, x2, y2 = m["crop_box"]
            w, h = m["source_size"]
            assert (x1, y1, x2, y2) == scale_box(m["detection_box"], 1.5, w, h)
            assert m["middle_frame"] % 6 == 0 and idx[0] <= m["middle_frame"] <= idx[-1]
            # the members are exactly the two videos' frames, same numbers, same box
            real, fake = rec.clips()
            np.testing.assert_array_equal(real.frames, videos[real_path].frames[idx, y1:y2, x1:x2])
            np.testing.assert_array_equal(fake.frames, videos[fake_path].frames[idx, y1:y2, x1:x2])
            np.testing.assert_array_equal(real.pts, videos[real_path].pts[idx])
            # the box holds the face the fake was made from
            fx1, fy1, fx2, fy2 = dataset.faces[real_path][m["middle_frame"]]
            assert x1 <= (fx1 + fx2) / 2 <= x2 and y1 <= (fy1 + fy2) / 2 <= y2
            assert (x2 - x1) * (y2 - y1) > 1.5 * (fx2 - fx1) * (fy2 - fy1)
    assert n == summary.pairs


def test_split_run_equals_unsplit_run(full_run, dataset, detector, tmp_path, monkeypatch):
    out, _ = full_run
    split = str(tmp_path / "split")
    s0 = preprocess(dataset.folders, split, detector=detector, shard_index=0, num_shards=2,
                    progress=False)
    # the second half as torchrun would start it: RANK / WORLD_SIZE
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    s1 = preprocess(dataset.folders, split, detector=detector, progress=False)
    assert s0.groups and s1.groups and s0.groups + s1.groups == 3
    assert all("s0of2" in s for s in s0.shards) and all("s1of2" in s for s in s1.shards)
    assert pair_contents(split) == pair_contents(out)
    assert manifest_lines(split) == manifest_lines(out)


def test_resume_after_a_crash(full_run, dataset, detector, tmp_path, monkeypatch):
    out, summary = full_run
    resumed = str(tmp_path / "resumed")
    calls = {"n": 0}
    write = dfaug.PairShardWriter.write

    def crashing_write(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")
        return write(self, *args, **kwargs)

    monkeypatch.setattr(dfaug.PairShardWriter, "write", crashing_write)
    with pytest.raises(RuntimeError, match="power cut"):
        preprocess(dataset.folders, resumed, detector=detector, shard_pairs=1, progress=False)
    monkeypatch.undo()
    # complete shards only, and a record of what they hold
    assert not glob.glob(os.path.join(resumed, "**", "*.tmp"), recursive=True)
    done = finished_groups(resumed)
    assert 1 <= len(done) < 3
    s = preprocess(dataset.folders, resumed, detector=detector, shard_pairs=1, progress=False)
    assert s.already_done == len(done) and s.groups == 3 - len(done)
    assert pair_contents(resumed) == pair_contents(out)  # no pair twice, none missing
    assert manifest_lines(resumed) == manifest_lines(out)
    # and once finished, a re-run has nothing to do
    again = preprocess(dataset.folders, resumed, detector=detector, progress=False)
    assert again.groups == 0 and again.already_done == 3
    assert manifest_lines(resumed) == manifest_lines(out)


def test_limit_then_resume(full_run, dataset, detector, tmp_path):
    out, _ = full_run
    part = str(tmp_path / "part")
    first = preprocess(dataset.folders, part, detector=detector, limit=1, progress=False)
    assert first.groups == 1 and len(finished_groups(part)) == 1
    rest = preprocess(dataset.folders, part, detector=detector, progress=False)
    assert rest.groups == 2 and rest.already_done == 1
    assert pair_contents(part) == pair_contents(out)


def test_bad_inputs_are_reported_and_skipped(tmp_path):
    bad = synth.make_bad_inputs(str(tmp_path / "in"), frames=40)  # short: 30-frame clips
    out = str(tmp_path / "out")
    # two worker processes: bad input must not take a worker (or the run) down either
    s = preprocess([bad.folder], out, detector=DetectorSpec(device="cpu"), workers=2,
                   config=PreprocessConfig(clip_length=30), progress=False)
    assert s.groups == len(plan([bad.folder]))
    meta = json.load(open(os.path.join(bad.folder, "metadata.json")))
    # a FAKE whose original is missing makes a group, not a real video
    assert s.real_videos == sum(e["label"] == "REAL" for e in meta.values()) < s.groups
    with open(os.path.join(out, SKIPPED)) as f:
        reports = [json.loads(x) for x in f]
    tag = os.path.basename(bad.folder)
    for name, (action, fragment) in bad.expected.items():
        mine = [r for r in reports if r["video"] == f"{tag}/{name}"]
        assert any(r["action"] == action and fragment in r["reason"] for r in mine), (name, mine)
    assert all(r["reason"] for r in reports)
    # the usable fakes (one of them after three unusable ones of the same real) paired,
    # and nothing else did
    assert {m["fake"] for m in read_manifest(out)} == {f"{tag}/{n}" for n in bad.paired}
    for shard in glob.glob(os.path.join(out, "*.tar")):
        for rec in dfaug.read_shard(shard):
            real, fake = rec.clips()
            assert real.frames.shape == fake.frames.shape
    vfr = [m for m in read_manifest(out) if m["fake"].endswith("vfr_fake.mp4")]
    assert vfr and s.skipped >= len([e for e in bad.expected.values() if e[0] == "skipped"])


def test_plan_and_split(dataset, tmp_path):
    groups = plan(dataset.folders)
    assert [g.key for g in groups] == sorted(g.key for g in groups)
    assert len(groups) == 3 and all(len(g.fakes) == 2 for g in groups)
    halves = [shard_groups(groups, i, 2) for i in range(2)]
    assert sorted(g.key for h in halves for g in h) == [g.key for g in groups]
    assert resolve_shard(None, None, {}) == (0, 1)
    assert resolve_shard(None, None, {"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    assert resolve_shard(1, 2, {"RANK": "3", "WORLD_SIZE": "4"}) == (1, 2)  # flags win
    with pytest.raises(ValueError, match="--shard-index"):
        resolve_shard(2, 2)
    with pytest.raises(ValueError, match="--shard-index and --num-shards"):
        resolve_shard(1, None)
    with pytest.raises(ValueError, match="--input"):
        plan([str(tmp_path)])  # no metadata.json
    with pytest.raises(ValueError, match="--every"):
        PreprocessConfig(every=0)


def test_command_line(dataset, tmp_path, capsys):
    help_run = subprocess.run([sys.executable, "-m", "dfdf_train", "preprocess", "--help"],
                              capture_output=True, text=True, timeout=60)
    assert help_run.returncode == 0
    for flag in ("--input", "--out", "--detector-weights", "--every", "--clip-length",
                 "--clips-per-pair", "--shard-index", "--num-shards", "--workers", "--seed",
                 "--device"):
        assert flag in help_run.stdout
    assert "manifest.jsonl" in help_run.stdout  # the module docstring describes the output
    base = ["preprocess", "--input", *dataset.folders, "--out", str(tmp_path / "o")]
    for extra, flag in ((["--every", "0"], "--every"), (["--num-shards", "2"], "--shard-index"),
                        (["--detector", "dsfd"], "--detector"),
                        (["--detector", "torchscript"], "--detector-weights"),
                        (["--clip-length", "1"], "--clip-length"), (["--format", "bmp"], "--format"),
                        (["--workers", "-1"], "--workers")):
        with pytest.raises(SystemExit) as e:
            cli.main(base + extra)
        assert e.value.code == 2
        assert flag in capsys.readouterr().err, extra
    with pytest.raises(SystemExit):
        cli.main(["preprocess", "--input", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert "--input" in capsys.readouterr().err


