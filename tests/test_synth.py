import json
import os

import numpy as np
import pytest

import dfaug
from dfdf_train import synth
from dfdf_train.preprocess import probe_rotation


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return synth.make_dfdc_folder(str(tmp_path_factory.mktemp("synth")), n_real=3,
                                  fakes_per_real=2, seed=1, frames=40, parts=2)


def test_dfdc_layout_and_metadata(small):
    assert [os.path.basename(f) for f in small.folders] == ["dfdc_train_part_0",
                                                            "dfdc_train_part_1"]
    assert len(small.reals) == 3 and len(small.fakes) == 6
    for folder in small.folders:
        with open(os.path.join(folder, "metadata.json")) as f:
            meta = json.load(f)
        assert meta == small.metadata[folder]
        assert set(meta) == {n for n in os.listdir(folder) if n.endswith(".mp4")}
        for name, entry in meta.items():
            assert entry["split"] == "train" and entry["label"] in ("REAL", "FAKE")
            assert len(name) == len("abcdefghij.mp4")
            if entry["label"] == "FAKE":  # DFDC: the original is a REAL of the same folder
                assert meta[entry["original"]] == {"label": "REAL", "split": "train"}
            else:
                assert "original" not in entry
    # distinct methods per real, and the reals differ from one another
    for real in small.reals:
        methods = [small.methods[f] for f, r in small.fakes.items() if r == real]
        assert len(set(methods)) == 2
    sizes = {dfaug.read_video(p).frames.shape for p in small.reals}
    assert all(s[0] == 40 for s in sizes)


def test_fakes_differ_from_their_real_in_the_face_only(small):
    for fake_path, real_path in small.fakes.items():
        real, fake = dfaug.read_video(real_path), dfaug.read_video(fake_path)
        assert fake.frames.shape == real.frames.shape
        np.testing.assert_array_equal(fake.pts, real.pts)
        diff = np.abs(fake.frames.astype(np.int16) - real.frames.astype(np.int16)).mean(axis=3)
        inside, outside = [], []
        for t in range(0, len(real), 10):
            x1, y1, x2, y2 = np.round(small.faces[fake_path][t]).astype(int)
            w, h = x2 - x1, y2 - y1
            face = np.zeros(diff.shape[1:], bool)
            face[max(y1, 0):y2, max(x1, 0):x2] = True
            near = np.zeros(diff.shape[1:], bool)  # the feathered mask reaches a bit beyond
            near[max(y1 - h // 4, 0):y2 + h // 4, max(x1 - w // 4, 0):x2 + w // 4] = True
            inside.append(diff[t][face].mean())
            outside.append(diff[t][~near].mean())  # only H.264 noise out there
        assert np.mean(inside) > 2.0, small.methods[fake_path]
        assert np.mean(inside) > 3 * np.mean(outside), small.methods[fake_path]


def test_same_seed_same_set_other_seed_held_out(tmp_path, small):
    again = synth.make_dfdc_folder(str(tmp_path / "a"), n_real=3, fakes_per_real=2, seed=1,
                                   frames=40, parts=2)
    assert list(again.metadata.values()) == list(small.metadata.values())
    test = synth.make_dfdc_folder(str(tmp_path / "t"), n_real=2, fakes_per_real=1, seed=99,
                                  frames=40, folder="test_videos", split="test")
    assert [os.path.basename(f) for f in test.folders] == ["test_videos"]
    names = set(test.metadata[test.folders[0]])
    assert len(names) == 4 and not names & {n for m in small.metadata.values() for n in m}
    assert {e["split"] for e in test.metadata[test.folders[0]].values()} == {"test"}
    with pytest.raises(ValueError, match="fakes_per_real"):
        synth.make_dfdc_folder(str(tmp_path / "x"), fakes_per_real=5)


def test_bad_inputs_are_what_they_claim(tmp_path):
    bad = synth.make_bad_inputs(str(tmp_path), frames=30)
    with open(os.path.join(bad.folder, "metadata.json")) as f:
        meta = json.load(f)
    assert set(bad.expected) <= set(meta) and set(bad.paired) <= set(meta)
    path = lambda n: os.path.join(bad.folder, n)  # noqa: E731
    assert os.path.getsize(path("empty_real.mp4")) == 0
    assert not os.path.exists(path("ghost_fake.mp4"))
    assert meta["orphan_fake.mp4"]["original"] not in meta
    assert probe_rotation(path("rotated_real.mp4")) == 90
    assert probe_rotation(path("odd_real.mp4")) == 0
    for name in ("corrupt_real.mp4", "truncated_real.mp4", "empty_real.mp4"):
        with pytest.raises(dfaug.VideoDecodeError):
            dfaug.read_video(path(name))
    odd = dfaug.read_video(path("odd_real.mp4"))
    assert odd.height % 2 == 1 and odd.width % 2 == 1
    vfr = dfaug.read_video(path("vfr_real.mp4"))
    assert len(set(np.round(np.diff(vfr.pts), 4))) == 2
    np.testing.assert_array_equal(dfaug.read_video(path("vfr_fake.mp4")).pts, vfr.pts)
    real = dfaug.read_video(path("mismatch_real.mp4"))
    assert dfaug.read_video(path("size_fake.mp4")).frames.shape[1:3] != real.frames.shape[1:3]
    assert len(dfaug.read_video(path("count_fake.mp4"))) == len(real) - 5


def test_write_video_roundtrip(tmp_path, carphone):
    p = synth.write_video(str(tmp_path / "x.mp4"), carphone.frames[:10], crf=0)
    back = dfaug.read_video(p)
    assert back.frames.shape == (10, 144, 176, 3)
    np.testing.assert_allclose(back.pts, np.arange(10) * 1001 / 30000, atol=1e-6)
    assert np.abs(back.frames.astype(int) - carphone.frames[:10]).mean() < 3  # 4:2:0 chroma
    with pytest.raises(ValueError, match="uint8"):
        synth.write_video(str(tmp_path / "y.mp4"), carphone.frames[:2].astype(np.float32))


def test_easy_fakes_rotate_the_face_colours(tmp_path):
    made = synth.make_dfdc_folder(str(tmp_path), n_real=1, fakes_per_real=1, seed=2, frames=20,
                                  methods=synth.EASY_METHODS)
    (fake_path, real_path), = made.fakes.items()
    assert made.methods[fake_path] == "recolor"
    real = dfaug.read_video(real_path).frames.astype(np.int16)
    fake = dfaug.read_video(fake_path).frames.astype(np.int16)
    x1, y1, x2, y2 = np.round(made.faces[fake_path][10]).astype(int)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2   # the mask's full-strength core
    core = (slice(cy - 4, cy + 4), slice(cx - 4, cx + 4))
    assert np.abs(fake[10][core] - real[10][core][..., [1, 2, 0]]).mean() < 6
    with pytest.raises(ValueError, match="methods"):
        synth.make_dfdc_folder(str(tmp_path / "x"), methods=("sepia",))
    with pytest.raises(ValueError, match="fakes_per_real"):
        synth.make_dfdc_folder(str(tmp_path / "y"), fakes_per_real=2, methods=synth.EASY_METHODS)
