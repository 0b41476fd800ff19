import logging

import numpy as np
import pytest
import torch

from dfaug import Clip, CompressionParams, CompressionSampler
from dfaug.compression import fps_filter, plan_encode
from dfaug.loader import PairDataset, PairLoader
from dfaug.pipeline import split_records
from dfaug.sampling import nearest, nearest_indices
from dfaug.times import for_mode
from dfaug.shards import PairShardWriter, ShardMember
from pairs import real_pairs
from test_shards import corrupt_member


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    """10 real-video pairs (carphone pristine/distorted, synthetic fakes, bikes) in 5 shards."""
    folder = tmp_path_factory.mktemp("shards")
    with PairShardWriter(str(folder / "pairs-%03d.tar"), max_pairs=2) as writer:
        for key, real, fake, meta in real_pairs(n_carphone=8, n_bikes=2):
            writer.write(key, real, fake, meta)
    return folder


ALL_KEYS = {f"carphone{i:03d}" for i in range(8)} | {"bikes000", "bikes001"}


def keys_seen(shards, world_size, workers, epoch=0, **kwargs):
    seen = []
    for rank in range(world_size):
        ds = PairDataset(shards, compression=None, batch_size=3, rank=rank,
                         world_size=world_size, size=(64, 64), **kwargs)
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                             collate_fn=lambda b: b)
        for batch in loader:
            seen.extend(batch.keys)
    return seen


@pytest.mark.parametrize("shards", ["pairs-*.tar", "pairs-00[01].tar"])
def test_each_pair_once_per_epoch_over_2_ranks_and_2_workers(shard_dir, shards):
    """5 shards over 4 splits (shard-level), and 2 shards over 4 splits (pair-level)."""
    seen = keys_seen(str(shard_dir / shards), world_size=2, workers=2)
    expected = ALL_KEYS if shards == "pairs-*.tar" else {f"carphone{i:03d}" for i in range(4)}
    assert sorted(seen) == sorted(expected)


def test_same_seed_same_batches_other_epoch_other_order(shard_dir):
    def run(epoch, seed=0):
        loader = PairLoader(str(shard_dir / "*.tar"), augment="tight", mode="sequence",
                            batch_size=4, num_workers=2, seed=seed, size=(128, 112))
        loader.set_epoch(epoch)
        return [(x, y) for x, y in loader]

    a, b, c = run(0), run(0), run(1)
    assert len(a) == len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb)
                                    for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_a_pair_gets_the_same_draw_whatever_the_workers(shard_dir):
    def pairs(workers):
        ds = PairDataset(str(shard_dir / "*.tar"), mode="sequence", batch_size=3,
                         compression=CompressionSampler(p_skip=0.0), size=(72, 88))
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers,
                                             collate_fn=lambda b: b)
        return {k: p for b in loader for k, p in zip(b.keys, b.data.pairs)}

    alone, split = pairs(0), pairs(2)
    assert alone.keys() == split.keys() == ALL_KEYS
    assert all(torch.equal(alone[k], split[k]) for k in ALL_KEYS)


def test_frame_mode_batches(shard_dir):
    loader = PairLoader(str(shard_dir / "*.tar"), augment="tight_erase", mode="frame", batch_size=3,
                        num_workers=0, size=(288, 224))
    batches = list(loader)
    assert sum(len(y) for _, y in batches) == 10 * 8      # 8 frames per pair, each an image
    x, y = batches[0]
    assert x.shape == (3 * 8, 3, 224, 192) and x.dtype == torch.float32
    assert y.shape == (24,) and bool(((y >= 0) & (y <= 1)).all())
    assert len(set(y.tolist())) == 24                      # one t per image
    assert loader.counts["pairs"] == 10 and not loader.skipped


def test_sequence_mode_with_the_recipe_compression(shard_dir):
    loader = PairLoader(str(shard_dir / "*.tar"), augment="tight", mode="sequence",
                        batch_size=4, num_workers=2,
                        compression=CompressionSampler(p_skip=0.0), size=(160, 128))
    shapes = [(x.shape, y.shape) for x, y in loader]
    assert shapes[0] == ((4, 7, 3, 224, 192), (4, 7))
    assert sum(s[1][0] for s in shapes) == 10
    for x, y in loader:
        assert torch.equal(y, y[:, :1].expand_as(y))       # one t per sequence
        assert torch.isfinite(x).all()


def test_pair_members_stay_aligned_through_the_worker(shard_dir):
    """Without augmentation: the compressed real and fake differ only where the fake does."""
    ds = PairDataset(str(shard_dir / "pairs-000.tar"), mode="sequence", batch_size=2,
                     compression=CompressionSampler(p_skip=0.0, p_scale=1.0), size=(144, 176))
    batch = next(iter(ds))
    pairs = batch.data.pairs.float()                            # (2, 2, 7, 3, 144, 176)
    assert batch.data.pairs.dtype == torch.uint8
    for pair, key in zip(pairs, batch.keys):
        diff = (pair[0] - pair[1]).abs().mean(dim=(0, 1))   # (H, W)
        shifted = (pair[0, 1:] - pair[1, :-1]).abs().mean(dim=(0, 1))
        assert diff[:20].mean() < shifted[:20].mean()      # frame k of real with frame k of fake
        if key == "carphone001":                           # synthetic: only the centre changed
            assert diff[36:108, 59:117].mean() > 1.5 * diff[:20].mean()


def test_a_corrupted_member_is_skipped_and_counted(shard_dir, tmp_path, caplog):
    import shutil
    for p in shard_dir.glob("*.tar"):
        shutil.copy(p, tmp_path / p.name)
    fmt = "ffv1"
    from dfaug.shards import read_shard
    fmt = next(read_shard(str(tmp_path / "pairs-001.tar"))).meta["format"]
    corrupt_member(str(tmp_path / "pairs-001.tar"), f".fake.{fmt}")
    loader = PairLoader(str(tmp_path / "*.tar"), augment="tight", mode="sequence",
                        batch_size=4, num_workers=0, size=(128, 112))
    with caplog.at_level(logging.WARNING, logger="dfaug.loader"):
        total = sum(len(y) for _, y in loader)
    assert total == 9
    assert loader.counts == {"pairs": 9, "skipped": 1}
    (shard, key, reason), = loader.skipped
    assert shard.endswith("pairs-001.tar") and key == "carphone002"
    assert "carphone002" in caplog.text


@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_a_pair_reads_only_the_stored_frames_it_decodes(shard_dir, monkeypatch, mode):
    """Without re-encoding a pair decodes 7 or 8 of its 50 frames: only their bytes
    are read from the shard, after each member's header (one call each: the frames'
    reads share one opening of the file)."""
    calls = []
    read_ranges = ShardMember.read_ranges

    def counting(member, ranges):
        calls.append((member, list(ranges)))
        return read_ranges(member, ranges)
    monkeypatch.setattr(ShardMember, "read_ranges", counting)
    ds = PairDataset(str(shard_dir / "*.tar"), mode=mode, batch_size=1, compression=None,
                     size=(64, 56), shuffle_buffer=1)
    record = next(split_records(ds.shards, 0, 1))
    used = len(nearest_indices(record.pts, for_mode(mode)(record.pts, None)))
    ds.make_sample(record)
    for member in (record.real, record.fake):
        header, frames = [r for m, r in calls if m is member]
        assert len(header) == 1 and len(frames) == used  # 4 or 2 (1/15 s) frames apart
        read = sum(b - a for a, b in header + frames)
        assert read < member.size * (used + 2) / 50, (read, member.size)


@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_a_pair_read_frame_by_frame_is_the_pair_read_whole(shard_dir, mode):
    from dfaug.shards import read_shard
    paths = sorted(map(str, shard_dir.glob("*.tar")))
    for compression in (None, CompressionSampler(p_skip=0.0)):
        ds = PairDataset(paths, mode=mode, compression=compression, size=(96, 80))
        for path in paths[:2]:
            for eager, lazy in zip(read_shard(path), read_shard(path, lazy=True)):
                assert isinstance(lazy.real, ShardMember) and isinstance(eager.real, bytes)
                assert np.array_equal(ds.make_sample(lazy).frames, ds.make_sample(eager).frames)


def test_every_pair_of_a_shard_cut_inside_a_member_is_accounted_for(tmp_path):
    """12 pairs in 4 shards, one cut in the middle of its second real member: the loader
    makes the 10 pairs before and around the cut and counts the cut pair and the one
    after it as skipped, each with its key (the shard's index names them)."""
    pairs = real_pairs(n_carphone=10, n_bikes=2)
    with PairShardWriter(str(tmp_path / "pairs-%03d.tar"), max_pairs=3) as writer:
        for key, real, fake, meta in pairs:
            writer.write(key, real, fake, meta)
    cut = sorted(tmp_path.glob("*.tar"))[1]
    import tarfile
    with tarfile.open(cut) as tar:
        reals = [m for m in tar.getmembers() if ".real." in m.name]
    second = reals[1]
    cut.write_bytes(cut.read_bytes()[:second.offset_data + second.size // 2])
    loader = PairLoader(str(tmp_path / "*.tar"), augment="tight_erase", mode="frame", batch_size=4,
                        num_workers=0, device="cpu", compression=None, size=(64, 56))
    made = sum(len(y) // 8 for _, y in loader)
    lost = {key for _, key, _ in loader.skipped}
    assert loader.counts["pairs"] == made == 10 and loader.counts["skipped"] == 2
    assert lost == {reals[1].name.split(".")[0], reals[2].name.split(".")[0]}


def test_the_shuffle_buffer_holds_no_frames_and_a_shard_gone_later_is_skipped(shard_dir, tmp_path):
    """Records are read lazily, so the buffer holds metadata only; a shard cut short or
    removed after its records were buffered costs those pairs (skipped and counted),
    not the epoch."""
    import shutil
    for p in shard_dir.glob("*.tar"):
        shutil.copy(p, tmp_path / p.name)
    ds = PairDataset(str(tmp_path / "*.tar"), mode="sequence", batch_size=1, compression=None,
                     size=(64, 56), shuffle_buffer=100)
    records = list(split_records(ds.shards, 0, 1))
    assert len(records) == 10
    assert all(isinstance(r.real, ShardMember) and isinstance(r.fake, ShardMember)
               for r in records)
    batches = iter(ds)
    first = next(batches)  # every record is buffered before the first pair is made
    assert len(first.keys) == 1 and first.data.pairs.shape == (1, 2, 7, 3, 64, 56)
    cut, gone = sorted(tmp_path.glob("*.tar"))[:2]
    cut.write_bytes(cut.read_bytes()[:1024])
    gone.unlink()
    rest = list(batches)
    skipped = [s for b in rest for s in b.skipped]
    made = [k for b in rest for k in b.keys]
    lost = {r.key for r in records if r.shard in (str(cut), str(gone))} - set(first.keys)
    assert {key for _, key, _ in skipped} == lost and len(skipped) == len(lost) >= 3
    assert set(made) | set(first.keys) | lost == ALL_KEYS and len(made) == 9 - len(lost)
    assert any("changed after it was indexed" in why for _, _, why in skipped)
    assert any("No such file" in why for _, _, why in skipped)


def test_a_pairs_compression_draw_depends_on_seed_epoch_and_key_only(shard_dir):
    shards = str(shard_dir / "*.tar")
    keys = [f"carphone{k:03d}" for k in range(10)]
    one = PairDataset(shards, seed=5)
    other_split = PairDataset(shards, seed=5, rank=1, world_size=2)
    assert [one.pair_params(k) for k in keys] == [other_split.pair_params(k) for k in keys]
    drawn = [one.pair_params(k) for k in keys]
    assert any(p is None for p in drawn) and any(p is not None for p in drawn)  # p_skip 0.5
    one.set_epoch(1)
    assert [one.pair_params(k) for k in keys] != drawn
    assert PairDataset(shards, compression=None).pair_params(keys[0]) is None


@pytest.mark.parametrize("stop_after", [1, 3])
def test_resume_continues_with_the_same_batches(shard_dir, tmp_path, stop_after):
    """A loader stopped after k batches and restored from its state_dict in a new
    loader gives the rest of the uninterrupted run, bit for bit: with the recipe's
    re-encoding, 2 workers, and a broken pair before and after the stop."""
    import shutil
    for p in shard_dir.glob("*.tar"):
        shutil.copy(p, tmp_path / p.name)
    from dfaug.shards import read_shard
    fmt = next(read_shard(str(tmp_path / "pairs-001.tar"))).meta["format"]
    corrupt_member(str(tmp_path / "pairs-001.tar"), f".fake.{fmt}")

    def loader():
        out = PairLoader(str(tmp_path / "*.tar"), augment="tight", mode="sequence",
                         batch_size=2, num_workers=2, seed=3, size=(128, 112), shuffle_buffer=3)
        out.set_epoch(1)
        return out

    full = loader()
    expected = list(full)
    first = loader()
    got = []
    for x, y in first:
        got.append((x, y))
        if len(got) == stop_after:
            break
    state = first.state_dict()
    second = loader()
    second.load_state_dict(state)
    got += list(second)
    assert len(got) == len(expected) == 5  # 9 good pairs in batches of 2, per worker
    for (xa, ya), (xb, yb) in zip(got, expected):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert second.counts == full.counts == {"pairs": 9, "skipped": 1}
    assert second.skipped == full.skipped
    # the restored loader is an ordinary one afterwards: its next epoch is complete
    second.set_epoch(2)
    assert sum(len(y) for _, y in second) == 9


def test_workers_get_more_slack_than_torchs_default(shard_dir):
    # batches come in worker order: 2 batches of slack held 16 workers up
    # (benchmarks/sim_prefetch.py); without workers torch takes no prefetch factor
    assert PairLoader(str(shard_dir / "*.tar"), num_workers=2)._loader.prefetch_factor == 4
    assert PairLoader(str(shard_dir / "*.tar"), num_workers=2,
                      prefetch_factor=3)._loader.prefetch_factor == 3
    assert PairLoader(str(shard_dir / "*.tar"))._loader.prefetch_factor is None


def test_resume_needs_the_same_workers(shard_dir):
    a = PairLoader(str(shard_dir / "*.tar"), num_workers=2, size=(128, 112))
    b = PairLoader(str(shard_dir / "*.tar"), num_workers=1, size=(128, 112))
    with pytest.raises(ValueError, match="workers"):
        b.load_state_dict(a.state_dict())


@pytest.mark.parametrize("rate", [30, 30000 / 1001, 25, 24])
@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_the_frames_picked_for_times_are_those_nearest_in_the_whole_reencoded_clip(rate, mode):
    # what recompress(times=) returns must be what a sample would pick from the whole
    # re-encoded clip: the output frames nearest to the recipe's times
    pts = 0.1 + np.arange(75) / rate
    times = for_mode(mode)(pts, None)
    used = nearest_indices(pts, times)
    shape_only = Clip(np.empty((len(pts), 2, 2, 3), np.uint8), pts)
    for fps in range(10, 61):
        params = CompressionParams(fps=fps, scale=1.0, crf=23, tune="film")
        plan = plan_encode(shape_only, params, times=times)
        whole = fps_filter(pts, fps)[1]
        assert np.array_equal(plan.pts, whole[np.unique(nearest(whole, times))]), fps
        if fps * (pts[1] - pts[0]) >= 1 - 1e-6:  # no rate reduction: no frame more than used
            assert np.array_equal(plan.indices[plan.pick], used)


def test_too_short_clips_are_skipped(tmp_path):
    (key, real, fake, meta), = real_pairs(n_carphone=1, n_bikes=0)
    with PairShardWriter(str(tmp_path / "s-%02d.tar")) as writer:
        writer.write("short", real.take(np.arange(20)), fake.take(np.arange(20)))
        writer.write("long", real, fake)
    loader = PairLoader(str(tmp_path / "*.tar"), augment="tight_erase", batch_size=2, size=(128, 112))
    assert sum(len(y) for _, y in loader) == 8
    assert loader.skipped[0][1] == "short" and "outside the clip" in loader.skipped[0][2]


def test_bad_arguments(shard_dir, tmp_path):
    with pytest.raises(FileNotFoundError):
        PairDataset(str(tmp_path / "none-*.tar"))
    with pytest.raises(ValueError, match="mode"):
        PairDataset(str(shard_dir / "*.tar"), mode="video")
    with pytest.raises(ValueError, match="rank"):
        PairDataset(str(shard_dir / "*.tar"), rank=2, world_size=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_loader_augments_on_the_gpu(shard_dir):
    loader = PairLoader(str(shard_dir / "*.tar"), augment="tight_erase", mode="frame", batch_size=2,
                        num_workers=2, device="cuda", size=(144, 176))
    assert loader.dataset.stage is None            # workers hand over uint8 pairs
    x, y = next(iter(loader))
    assert x.is_cuda and y.is_cuda and x.shape == (16, 3, 224, 192)


def test_the_default_shuffle_buffer_mixes_a_real_videos_pairs_apart():
    """benchmarks/sim_shuffle.py drives PairDataset's own dealing and buffer; on shards
    in preprocess's order (a real video's pairs one after another) the default
    buffer gives batches of mostly distinct real videos, a 1-pair buffer does not."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "sim_shuffle.py")
    spec = importlib.util.spec_from_file_location("sim_shuffle", path)
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    shards = sim.synthetic_shards(400, 64, np.random.default_rng(0))
    default = PairDataset.__init__.__kwdefaults__["shuffle_buffer"]
    assert default == 1024
    unshuffled = sim.distinct_per_batch(shards, 1, batch_size=8, splits=4, seed=0)
    mixed = sim.distinct_per_batch(shards, default, batch_size=8, splits=4, seed=0)
    assert unshuffled < 3 and mixed > 7.5
