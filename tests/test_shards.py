import io
import json
import os
import shutil
import subprocess
import tarfile

import numpy as np
import pytest

from dfaug import Clip
from dfaug.shards import (BadSample, PairRecord, PairShardWriter, ShardMember, index_path,
                          read_shard)
from pairs import real_pairs


@pytest.fixture(scope="module")
def pairs():
    return real_pairs(n_carphone=4, n_bikes=1)


def write(tmp_path, pairs, **kwargs):
    with PairShardWriter(str(tmp_path / "pairs-%04d.tar"), **kwargs) as writer:
        for key, real, fake, meta in pairs:
            writer.write(key, real, fake, meta)
    return writer.shards


def test_round_trip_with_rollover(tmp_path, pairs):
    shards = write(tmp_path, pairs, max_pairs=2)
    assert [os.path.basename(s) for s in shards] == ["pairs-0000.tar", "pairs-0001.tar",
                                                    "pairs-0002.tar"]
    assert not list(tmp_path.glob("*.tmp"))
    records = [r for s in shards for r in read_shard(s)]
    assert [r.key for r in records] == [p[0] for p in pairs]
    for record, (key, real, fake, meta) in zip(records, pairs):
        assert isinstance(record, PairRecord)
        got_real, got_fake = record.clips()
        assert np.array_equal(got_real.frames, real.frames)   # lossless storage
        assert np.array_equal(got_fake.frames, fake.frames)
        assert np.array_equal(record.pts, real.pts)
        assert record.meta["first_frame"] == meta["first_frame"]
        assert (record.meta["height"], record.meta["width"]) == (real.height, real.width)
        some = record.frames("fake", [3, 19, 31])
        assert np.array_equal(some, fake.frames[[3, 19, 31]])
        lazy = record.lazy_frames("real")
        assert lazy.shape == real.frames.shape
        assert np.array_equal(lazy[19], real.frames[19])


def test_members_whose_size_disagrees_with_the_metadata_are_a_clear_error(tmp_path, pairs):
    record = next(read_shard(write(tmp_path, pairs[:1])[0]))
    record.meta["width"] += 2
    for read in (lambda m: record.frames(m, [0]), record.lazy_frames):
        for member in ("real", "fake"):
            with pytest.raises(ValueError, match="do not match the metadata"):
                read(member)
    with pytest.raises(ValueError, match="member must be"):
        record.lazy_frames("both")


def test_size_limit_rolls_over(tmp_path, pairs):
    one = len(open(write(tmp_path / "a", pairs[:1])[0], "rb").read())
    shards = write(tmp_path / "b", pairs, max_bytes=int(one * 1.5))
    assert len(shards) == len(pairs)


def test_shards_are_readable_by_webdataset(tmp_path, pairs):
    webdataset = pytest.importorskip("webdataset")
    shards = write(tmp_path, pairs[:3])
    samples = list(webdataset.WebDataset(shards, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [p[0] for p in pairs[:3]]
    fmt = json.loads(samples[0]["json"])["format"]
    assert set(samples[0]) >= {"json", f"real.{fmt}", f"fake.{fmt}"}


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar command")
def test_a_shard_repacked_by_gnu_tar_reads_the_same(tmp_path, pairs):
    shard = write(tmp_path, pairs[:3])[0]
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(shard) as tar:
        names = tar.getnames()
        tar.extractall(unpacked, filter="data")
    repacked = tmp_path / "repacked.tar"
    subprocess.run(["tar", "-cf", str(repacked), "-C", str(unpacked), *names], check=True)
    ours, theirs = list(read_shard(shard)), list(read_shard(str(repacked)))
    assert all(isinstance(r, PairRecord) for r in theirs)
    assert [r.key for r in theirs] == [r.key for r in ours] == [p[0] for p in pairs[:3]]
    assert all(a.real == b.real and a.fake == b.fake for a, b in zip(ours, theirs))


def test_writer_refuses_misaligned_pairs_and_bad_keys(tmp_path, pairs):
    key, real, fake, meta = pairs[0]
    with PairShardWriter(str(tmp_path / "p-%02d.tar")) as writer:
        with pytest.raises(ValueError, match="not an aligned pair"):
            writer.write("a", real, fake.take(np.arange(49)))
        with pytest.raises(ValueError, match="not an aligned pair"):
            writer.write("a", real, Clip(fake.frames, fake.pts + 0.01))
        with pytest.raises(ValueError, match="key"):
            writer.write("a.b", real, fake)
        writer.write("a", real, fake)
        with pytest.raises(ValueError, match="already written"):
            writer.write("a", real, fake)
    with pytest.raises(ValueError, match="pattern"):
        PairShardWriter(str(tmp_path / "no-field.tar"))
    with pytest.raises(ValueError, match="fmt must be one of"):
        PairShardWriter(str(tmp_path / "p-%02d.tar"), fmt="jpeg")


def test_a_crash_leaves_no_half_written_shard(tmp_path, pairs):
    key, real, fake, meta = pairs[0]
    with pytest.raises(RuntimeError):
        with PairShardWriter(str(tmp_path / "p-%02d.tar")) as writer:
            writer.write("a", real, fake)
            assert list(tmp_path.glob("*.tar.tmp"))
            raise RuntimeError("killed")
    assert not list(tmp_path.iterdir())


def corrupt_member(path: str, member_suffix: str) -> None:
    """Rewrite a shard with the first member ending in ``member_suffix`` garbled."""
    members = []
    with tarfile.open(path) as tar:
        for info in tar:
            members.append((info, tar.extractfile(info).read()))
    done = False
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            if not done and info.name.endswith(member_suffix):
                data = data[:len(data) // 3] + bytes(len(data) - len(data) // 3)
                info.size = len(data)
                done = True
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("lazy", [False, True])
def test_broken_samples_are_reported_not_raised(tmp_path, pairs, lazy):
    shard = write(tmp_path, pairs[:3])[0]
    fmt = next(read_shard(shard)).meta["format"]
    corrupt_member(shard, f".real.{fmt}")
    first, *rest = list(read_shard(shard, lazy=lazy))
    with pytest.raises(ValueError):
        first.frames("real")
    assert np.array_equal(rest[0].frames("real"), pairs[1][1].frames)

    data = open(shard, "rb").read()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    out = list(read_shard(str(truncated), lazy=lazy))
    assert isinstance(out[-1], BadSample) and "truncated" in out[-1].reason
    assert all(isinstance(r, PairRecord) for r in out[:-1])

    # cut right after the first sample's last member: tarfile alone reads one
    # complete sample and ends quietly; the reader must report the lost rest
    with tarfile.open(shard) as tar:
        first_key = tar.getmembers()[0].name.split(".")[0]
        end_of_first = max(m.offset_data + -(-m.size // 512) * 512  # with its padding
                           for m in tar.getmembers() if m.name.startswith(first_key + "."))
    between = tmp_path / "between.tar"
    between.write_bytes(data[:end_of_first])
    out = list(read_shard(str(between), lazy=lazy))
    assert [type(r) for r in out] == [PairRecord, BadSample]
    assert out[0].key == first_key and "end-of-archive" in out[1].reason

    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    (bad,) = list(read_shard(str(garbage), lazy=lazy))
    assert isinstance(bad, BadSample)


@pytest.mark.parametrize("lazy", [False, True])
def test_a_shard_cut_inside_a_member_accounts_for_every_sample_it_lost(tmp_path, pairs, lazy):
    """The writer's index beside the shard names the samples a cut loses: the one cut
    and every one after it come out as BadSamples, each with its key."""
    shard = write(tmp_path, pairs[:4])[0]
    keys = [k for k, *_ in pairs[:4]]
    assert json.load(open(index_path(shard))) == {"samples": 4, "keys": keys}
    with tarfile.open(shard) as tar:
        second_real = next(m for m in tar.getmembers() if m.name.startswith(keys[1] + ".real"))
    data = open(shard, "rb").read()
    with open(shard, "wb") as f:  # cut in place, in the middle of the second real member
        f.write(data[:second_real.offset_data + second_real.size // 2])
    out = list(read_shard(shard, lazy=lazy))
    assert [type(r) for r in out] == [PairRecord, BadSample, BadSample, BadSample]
    assert [r.key for r in out] == keys
    assert "truncated" in out[1].reason
    assert all("lost" in r.reason and "3 of the index's 4" in r.reason for r in out[2:])

    os.remove(index_path(shard))  # a shard from elsewhere: how many is unknown, but said
    out = list(read_shard(shard, lazy=lazy))
    assert [type(r) for r in out] == [PairRecord, BadSample]
    assert out[1].key == keys[1] and "the samples after it are lost" in out[1].reason


def test_a_lazy_record_reads_its_frames_only_when_they_are_decoded(tmp_path, pairs):
    shard = write(tmp_path, pairs[:3])[0]
    eager, lazy = list(read_shard(shard)), list(read_shard(shard, lazy=True))
    assert [r.key for r in lazy] == [r.key for r in eager]
    for e, r in zip(eager, lazy):
        assert r.meta == e.meta and r.shard == e.shard == shard
        assert isinstance(r.real, ShardMember) and isinstance(r.fake, ShardMember)
        assert r.real.read() == e.real and r.fake.read() == e.fake
        assert np.array_equal(r.frames("fake", [1, 3]), e.frames("fake", [1, 3]))
        assert np.array_equal(r.lazy_frames("real")[2], e.frames("real", [2])[0])
        assert r.real.read_ranges([(5, 9), (0, 2)]) == [e.real[5:9], e.real[:2]]
        with pytest.raises(ValueError, match="ranges must lie within"):
            r.real.read_ranges([(0, r.real.size + 1)])

    # the shard changes after it was indexed: a clear error when the pair is decoded,
    # whether it was cut short or rewritten with members at the same places
    data = open(shard, "rb").read()
    with open(shard, "wb") as f:
        f.write(data[:lazy[-1].fake.offset + 100])
    indexed = lazy[-1].fake.mtime_ns
    os.utime(shard, ns=(indexed, indexed + 10**9))  # as a later write would (clocks are coarse)
    with pytest.raises(ValueError, match="changed after it was indexed"):
        lazy[0].frames("real")
    os.utime(shard, ns=(indexed, indexed))  # the same time again: the bytes are checked
    assert np.array_equal(lazy[0].frames("real"), eager[0].frames("real"))
    with pytest.raises(ValueError, match="cut short"):
        lazy[-1].frames("fake")
    os.remove(shard)
    with pytest.raises(FileNotFoundError):
        lazy[0].frames("real")
