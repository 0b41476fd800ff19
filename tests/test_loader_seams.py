"""The loader's seams on real video: which frames (``times=``), mixup off, batches with
their info, single clips beside pairs, and a user's own device stage; each across
resumes and (rank, worker) splits."""
import numpy as np
import pytest
import torch

from dfaug import Clip, CompressionSampler, PairAugment, PairShardWriter, recompress, times
from dfaug.device_stage import Augment, PassThrough, SampleBatch
from dfaug.loader import PairDataset, PairLoader
from dfaug.pipeline import SampleMaker, fit_to
from dfaug.shards import read_shard
from pairs import real_pairs, synthetic_fake
from test_times import vfr_pts

SIZE = (64, 56)


def vfr_pair(carphone):
    """carphone with frames dropped irregularly (a variable frame rate), and its fake."""
    pts = vfr_pts(carphone)
    idx = np.searchsorted(carphone.pts, pts)
    real = Clip(carphone.frames[idx], pts)
    return real, synthetic_fake(real)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory, carphone):
    """6 pairs (29.97 fps carphone, 25 fps bikes, one VFR) and 4 single clips (2 real,
    2 fake), mixed in 5 shards."""
    folder = tmp_path_factory.mktemp("seams")
    samples = real_pairs(n_carphone=3, n_bikes=2)
    with PairShardWriter(str(folder / "mixed-%03d.tar"), max_pairs=2) as writer:
        for i, (key, real, fake, meta) in enumerate(samples):
            writer.write(key, real, fake, {**meta, "method": "distorted" if i % 2 == 0 else "blend"})
            label = ("real", "fake")[i % 2]
            if i < 4:
                writer.write_clip(f"single{i}", real if label == "real" else fake, label,
                                  {"method": "none" if label == "real" else "blend"})
        real, fake = vfr_pair(carphone)
        writer.write("vfr000", real, fake, {"method": "blend"})
    return folder


PAIRS = {"carphone000", "carphone001", "carphone002", "bikes000", "bikes001", "vfr000"}
SINGLES = {"single0": 0.0, "single1": 1.0, "single2": 0.0, "single3": 1.0}


def records(shard_dir) -> dict:
    return {r.key: r for p in sorted(shard_dir.glob("*.tar")) for r in read_shard(str(p))}


# ------------------------------------------------------------------ which frames

@pytest.mark.parametrize("choice", [times.uniform(16), times.window(16, 1 / 30)])
def test_16_frames_from_25fps_and_vfr_pairs_reencoded(shard_dir, choice):
    loader = PairLoader(str(shard_dir / "*.tar"), mode="sequence", augment="tight",
                        times=choice, batch_size=2, size=SIZE, device="cpu", with_info=True,
                        compression=CompressionSampler(p_skip=0.0))
    keys = set()
    for x, y, info in loader:
        assert x.shape[1:] == (16, 3, 224, 192) and y.shape == (len(x), 16)
        keys |= {i.key for i in info}
    assert loader.counts["skipped"] == 0 and keys == PAIRS | set(SINGLES)


def test_the_sampled_frames_are_those_nearest_to_the_times(shard_dir):
    """Without re-encoding, each frame of a 16-frame window is the stored frame nearest
    to the window's times, drawn from the sample's own generator; both members alike."""
    choice = times.window(16, 1 / 30)
    loader = PairLoader(str(shard_dir / "*.tar"), mode="sequence", times=choice, batch_size=3,
                        size=SIZE, compression=None, device_stage=PassThrough(), seed=4)
    loader.set_epoch(2)
    stored = records(shard_dir)
    maker = SampleMaker(choice, SIZE, None, seed=4, epoch=2)
    seen = 0
    for batch in loader:
        assert isinstance(batch, SampleBatch)
        frames = [batch.pairs[i] for i in range(len(batch.pairs))] if batch.pairs is not None else []
        frames += [batch.singles[i] for i in range(len(batch.singles))] if batch.singles is not None else []
        for info, got in zip(batch.info, frames):
            record = stored[info.key]
            t = choice(record.pts, maker.rng(info.key, 1))
            idx = np.searchsorted(record.pts, t - 0.5 * np.diff(record.pts).max())  # a floor
            idx = np.array([min(range(max(0, i - 2), min(len(record.pts), i + 3)),
                                key=lambda j: (abs(record.pts[j] - tt), -j)) for i, tt in zip(idx, t)])
            for m, member in enumerate(record.members):
                want = fit_to(record.frames(member)[idx], SIZE)
                assert torch.equal(got[m], torch.from_numpy(want)), (info.key, member)
            seen += 1
    assert seen == len(PAIRS) + len(SINGLES)


def test_frames_a_choice_cannot_give_are_skipped_and_counted(shard_dir):
    loader = PairLoader(str(shard_dir / "*.tar"), mode="sequence", augment="tight",
                        times=times.window(150, 1 / 25), batch_size=4, size=SIZE, device="cpu")
    assert list(loader) == []                       # 6 s windows of clips of 2 to 4 s
    assert loader.counts["skipped"] == 10
    assert all("longer than the clip" in why for _, _, why in loader.skipped)
    outside = PairLoader(str(shard_dir / "*.tar"), mode="frame", batch_size=4, size=SIZE,
                         times=lambda pts, rng: pts[0] + np.array([0.5, 9.0]), device="cpu")
    assert list(outside) == [] and outside.counts["skipped"] == 10
    assert all("outside the clip" in why for _, _, why in outside.skipped)
    strict = PairLoader(str(shard_dir / "*.tar"), mode="sequence", augment="tight",
                        batch_size=4, size=SIZE, device="cpu", compression=None,
                        times=times.window(16, 1 / 30, repeat=False))
    list(strict)
    skipped = {key for _, key, _ in strict.skipped}
    assert {"bikes000", "bikes001"} <= skipped       # 25 fps is too slow for a 30th apart
    assert all("repeated frames" in why for _, _, why in strict.skipped)


# ------------------------------------------------------------------ mixup off

@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_mixup_off_yields_both_members_with_the_same_draw(tmp_path, carphone, mode):
    """A pair of two identical clips: whatever the draws, the real and the fake rows
    come out equal only if both got the same re-encoding and augmentation."""
    clip = carphone.take(np.arange(50))
    with PairShardWriter(str(tmp_path / "same-%03d.tar")) as writer:
        for k in range(3):
            writer.write(f"same{k}", clip, clip)
    loader = PairLoader(str(tmp_path / "*.tar"), mode=mode, mixup=False, batch_size=3,
                        size=(144, 176), device="cpu", augment="tight_erase",
                        compression=CompressionSampler(p_skip=0.0))
    (x, y), = list(loader)
    frames = 8 if mode == "frame" else 1
    assert len(x) == 3 * 2 * frames
    labels = y if mode == "frame" else y[:, 0]
    assert labels.tolist() == [0.0, 1.0] * (3 * frames)
    assert torch.equal(x[0::2], x[1::2])
    assert not torch.equal(x[0], x[2 * frames])     # other pairs, other draws


# ------------------------------------------------------------------ info

def test_info_rows_align_with_x_and_carry_the_params_used(shard_dir):
    """Each row's RowInfo names its sample and member; re-encoding the stored clips with
    its CompressionParams and taking the centre view gives that row back exactly."""
    preset = PairAugment("tight")
    stage = Augment(preset, "sequence", mixup=False, center=True)
    loader = PairLoader(str(shard_dir / "*.tar"), mode="sequence", batch_size=4, size=(144, 176),
                        device_stage=stage, with_info=True, device="cpu",
                        compression=CompressionSampler(p_skip=0.3))
    stored = records(shard_dir)
    rows = 0
    for x, y, info in loader:
        assert len(info) == len(x) == len(y)
        for row, (xi, yi, i) in enumerate(zip(x, y, info)):
            record = stored[i.key]
            assert i.meta["method"] == record.meta["method"]
            assert float(yi[0]) == (i.member == "fake")
            clip = Clip(record.frames(i.member), record.pts)
            t = times.recipe_sequence()(record.pts, None)
            again, = recompress([clip], i.params, times=t)
            view = preset.center(torch.from_numpy(fit_to(again.frames, (144, 176)))[None, None])
            assert torch.equal(xi, view[0, 0]), (i.key, i.member)
            rows += 1
    # the VFR pair has frames up to 100 ms apart: the recipe's 1/15 s spacing skips it
    assert loader.skipped and {key for _, key, _ in loader.skipped} == {"vfr000"}
    assert rows == 2 * (len(PAIRS) - 1) + len(SINGLES)
    params = [i.params for _, _, info in loader for i in info]
    assert any(p is None for p in params) and any(p is not None for p in params)


# ------------------------------------------------------------------ single clips

def test_single_clips_alone_and_beside_pairs_over_2_ranks_and_2_workers(shard_dir):
    seen, labels = [], {}
    for rank in range(2):
        loader = PairLoader(str(shard_dir / "*.tar"), mode="frame", batch_size=3, size=SIZE,
                            num_workers=2, rank=rank, world_size=2, device="cpu",
                            with_info=True, seed=1)
        loader.set_epoch(3)
        for x, y, info in loader:
            assert len(x) == len(y) == len(info)
            for yi, i in zip(y.tolist(), info):
                if i.member == "mix":
                    seen.append(i.key)
                else:
                    labels.setdefault(i.key, set()).add(yi)
    assert set(seen) == PAIRS and set(labels) == set(SINGLES)
    assert {k: v.pop() for k, v in labels.items()} == SINGLES    # hard labels, unmixed
    only = PairLoader(str(shard_dir / "*.tar"), mode="frame", batch_size=2, size=SIZE,
                      device="cpu", with_info=True, times=times.uniform(3))
    singles = [i.key for _, _, info in only for i in info if i.member != "mix"]
    assert sorted(set(singles)) == sorted(SINGLES) and len(singles) == 3 * len(SINGLES)
    assert only.counts == {"pairs": len(PAIRS), "singles": len(SINGLES), "skipped": 0}


def test_a_pair_missing_a_member_is_reported_not_read_as_a_single(tmp_path, carphone):
    import io
    import tarfile
    clip = carphone.take(np.arange(50))
    with PairShardWriter(str(tmp_path / "p-%03d.tar")) as writer:
        writer.write("whole", clip, synthetic_fake(clip))
        writer.write("broken", clip, synthetic_fake(clip))
    path = str(tmp_path / "p-000.tar")
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            if not (m.name.startswith("broken.") and ".fake." in m.name):
                tar.addfile(m, io.BytesIO(data))
    out = list(read_shard(path))
    assert out[0].key == "whole" and out[0].label is None
    assert out[1].key == "broken" and "incomplete sample" in out[1].reason


def test_write_clip_checks_its_label(tmp_path, carphone):
    with PairShardWriter(str(tmp_path / "s-%03d.tar")) as writer:
        with pytest.raises(ValueError, match="label must be one of"):
            writer.write_clip("a", carphone, "FAKE")


# ------------------------------------------------------------------ resume with each seam

@pytest.mark.parametrize("seam", ["window", "mixup_off", "info_and_singles", "own_stage"])
def test_resume_mid_epoch_with_each_seam(shard_dir, seam):
    class Brighter:  # a user's device stage: their own augmentation, no mixup
        def __call__(self, batch, gen):
            clips = [c for c in (batch.pairs, batch.singles) if c is not None]
            x = torch.cat([c.flatten(0, 1) for c in clips]).float() / 255
            return x + 0.1 * torch.rand(1, generator=gen), torch.ones(len(x))

    args = {"window": dict(times=times.window(16, 1 / 30), mode="sequence", augment="tight"),
            "mixup_off": dict(mixup=False),
            "info_and_singles": dict(with_info=True, times=times.uniform(4)),
            "own_stage": dict(device_stage=Brighter(), mode="sequence")}[seam]

    def loader():
        out = PairLoader(str(shard_dir / "*.tar"), batch_size=2, num_workers=2, seed=6,
                         size=SIZE, device="cpu", shuffle_buffer=3,
                         compression=CompressionSampler(p_skip=0.5), **args)
        out.set_epoch(1)
        return out

    expected = list(loader())
    first, got = loader(), []
    for batch in first:
        got.append(batch)
        if len(got) == 2:
            break
    second = loader()
    second.load_state_dict(first.state_dict())
    got += list(second)
    assert len(got) == len(expected) >= 4
    for a, b in zip(got, expected):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        if len(a) == 3:
            assert a[2] == b[2]


# ------------------------------------------------------------------ bad arguments

@pytest.mark.parametrize("kwargs, match", [
    (dict(times=16), "times must be a callable"),
    (dict(device_stage="none"), "device_stage must be a callable"),
    (dict(mixup="no"), "mixup must be True or False"),
    (dict(with_info=1), "with_info must be True or False"),
    (dict(compression=0.5), "compression must be a CompressionSampler"),
])
def test_bad_arguments_name_themselves(shard_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        PairLoader(str(shard_dir / "*.tar"), **kwargs)
    with pytest.raises(ValueError, match="not both"):
        PairDataset(str(shard_dir / "*.tar"), augment="tight_erase", device_stage=PassThrough())


def test_a_single_clip_with_a_second_frame_member_is_reported(tmp_path, carphone):
    import io
    import tarfile
    with PairShardWriter(str(tmp_path / "s-%03d.tar")) as writer:
        writer.write_clip("one", carphone.take(np.arange(50)), "real")
    path = str(tmp_path / "s-000.tar")
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    real, data = members[1]                                # one.json, one.real.zstd
    fake = tarfile.TarInfo(real.name.replace(".real.", ".fake."))
    fake.size = len(data)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for m, d in members + [(fake, data)]:
            tar.addfile(m, io.BytesIO(d))
    out, = list(read_shard(path))
    assert out.key == "one" and "is not among the metadata's members" in out.reason


def test_a_custom_stage_may_return_a_third_value_of_its_own(shard_dir):
    class WithKeys:
        def __call__(self, batch, gen):
            return batch.pairs.float() if batch.pairs is not None else batch.singles.float(), \
                torch.zeros(1), [i.key for i in batch.info]
    loader = PairLoader(str(shard_dir / "*.tar"), batch_size=2, size=SIZE, device="cpu",
                        compression=None, device_stage=WithKeys())
    x, y, keys = next(iter(loader))
    assert isinstance(keys, list) and all(isinstance(k, str) for k in keys)
