import numpy as np
import pytest

import dfaug
from conftest import CountingRange, psnr
from dfaug.storage import FORMATS, LOSSLESS, StoredFrames, decode_frames, encode_frames
from dfaug.testing import media_path


@pytest.fixture(scope="module")
def bunny_crops() -> dict[str, np.ndarray]:
    """Crops of real video: a face-sized square and an odd-sized one."""
    frames = dfaug.read_video(media_path("bigbuckbunny.mp4")).frames
    return {"square": np.ascontiguousarray(frames[:12, 200:400, 500:700]),
            "odd": np.ascontiguousarray(frames[20:32, 101:276, 333:476])}  # 175x143


@pytest.fixture(scope="module")
def clips(carphone, bunny_crops) -> dict[str, np.ndarray]:
    return {"carphone": carphone.frames[:50],
            "carphone_odd": np.ascontiguousarray(carphone.frames[50:62, :143, :175]),  # 143x175
            **{f"bunny_{k}": v for k, v in bunny_crops.items()}}


@pytest.fixture(scope="module")
def encoded(clips) -> dict[tuple[str, str], bytes]:
    return {(name, fmt): encode_frames(frames, fmt) for name, frames in clips.items()
            for fmt in FORMATS}


@pytest.mark.parametrize("fmt", LOSSLESS)
@pytest.mark.parametrize("name", ["carphone", "carphone_odd", "bunny_square", "bunny_odd"])
def test_lossless_round_trip_is_exact(clips, encoded, name, fmt):
    out = decode_frames(encoded[name, fmt], fmt)
    assert out.dtype == np.uint8 and out.shape == clips[name].shape
    assert np.array_equal(out, clips[name])


@pytest.mark.parametrize("name", ["carphone", "carphone_odd", "bunny_odd"])
def test_yuv420p_is_close(clips, encoded, name):
    out = decode_frames(encoded[name, "yuv420p"], "yuv420p")
    assert out.shape == clips[name].shape
    # Measured 40.5-44 dB on these clips (BT.601 limited range, 2x2 chroma).
    assert psnr(out, clips[name]) > 38


@pytest.mark.parametrize("fmt", FORMATS)
def test_subset_equals_rows_of_full_decode(encoded, fmt):
    data = encoded["carphone", fmt]
    full = decode_frames(data, fmt)
    for indices in ([*range(5, 50)], [*range(15, 44)], [*range(9, 38, 4)], [*range(19, 32, 2)],
                    [49, 0, 7, 7, 3], [12], np.array([44, 45], np.int32)):
        np.testing.assert_array_equal(decode_frames(data, fmt, indices), full[indices])


@pytest.mark.parametrize("fmt", FORMATS)
def test_decoding_into_a_whole_clip_buffer_fills_the_frames_at_their_index(encoded, fmt):
    data = encoded["carphone_odd", fmt]
    full = decode_frames(data, fmt)
    wanted = [9, 2, 5]
    out = np.full_like(full, 7)
    assert decode_frames(data, fmt, wanted, out=out) is out
    assert np.array_equal(out[wanted], full[wanted])
    untouched = np.setdiff1d(np.arange(len(full)), wanted)
    assert (out[untouched] == 7).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_stored_frames_decode_what_is_indexed_as_decode_frames_does(encoded, fmt):
    data = encoded["carphone", fmt]
    full = decode_frames(data, fmt)
    lazy = StoredFrames(data, fmt)
    assert isinstance(lazy, dfaug.video.LazyFrames)
    assert lazy.shape == full.shape and lazy.dtype == np.uint8 and len(lazy) == len(full)
    # forward, backward and repeated, across h264-lossless's keyframe runs
    for i in [0, 1, 9, 13, 12, 4, 49, 48, 25, 25, -1, np.int64(7)]:
        frame = lazy[i]
        assert frame.shape == full.shape[1:] and frame.flags.c_contiguous
        np.testing.assert_array_equal(frame, full[i])
    frame[:] = 0  # a frame handed out is the caller's: changing it changes no later one
    np.testing.assert_array_equal(lazy[7], full[7])
    np.testing.assert_array_equal(lazy[[49, 0, 7, 7]], full[[49, 0, 7, 7]])
    np.testing.assert_array_equal(lazy[40:45, 10:20, :30], full[40:45, 10:20, :30])
    np.testing.assert_array_equal(np.asarray(lazy), full)
    for bad in (50, -51, [3, 50]):
        with pytest.raises(IndexError):
            lazy[bad]


@pytest.mark.parametrize("fmt", FORMATS)
def test_stored_frames_check_the_header_at_once_and_a_frame_when_it_is_read(encoded, fmt):
    data = encoded["carphone_odd", fmt]
    with pytest.raises(dfaug.VideoDecodeError, match="truncated"):
        StoredFrames(data[:-1], fmt)
    with pytest.raises(ValueError, match="holds a"):
        StoredFrames(data, "raw" if fmt != "raw" else "png")
    bad = StoredFrames(data[:-100] + bytes([data[-100] ^ 4]) + data[-99:], fmt)  # last frame
    assert bad[0].shape == (143, 175, 3)
    with pytest.raises(dfaug.VideoDecodeError, match="data is corrupt"):
        bad[11]


@pytest.mark.parametrize("bad", [np.empty((12, 143, 175, 3), np.float32),  # dtype
                                 np.empty((11, 143, 175, 3), np.uint8),    # frames
                                 np.empty((12, 175, 143, 3), np.uint8),    # size
                                 np.empty((12, 143, 350, 3), np.uint8)[:, :, ::2]])  # layout
def test_a_wrong_out_buffer_is_a_clear_error(encoded, bad):
    with pytest.raises(ValueError, match="out must be a C-contiguous uint8 array"):
        decode_frames(encoded["carphone_odd", "zstd"], "zstd", [1], out=bad)


def test_sizes_differ_as_expected(encoded):
    size = {fmt: len(encoded["carphone", fmt]) for fmt in FORMATS}
    assert size["raw"] > 50 * 144 * 176 * 3
    assert size["ffv1"] < size["png"] < size["raw"]
    # the default format: measured 20% smaller than PNG on carphone (docs/storage.md)
    assert size["zstd"] < 0.9 * size["png"]


def test_h264_has_periodic_keyframes(encoded):
    from dfaug.storage import H264_GOP, _Blob
    blob = _Blob(encoded["carphone", "h264-lossless"], "h264-lossless")
    assert np.flatnonzero(blob.keys).tolist() == list(range(0, 50, H264_GOP))


@pytest.mark.parametrize("frames, match", [
    ([[[[0, 0, 0]]]], "numpy array"),
    (np.zeros((2, 4, 4, 3), np.float32), "uint8"),
    (np.zeros((4, 4, 3), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((2, 4, 4, 4), np.uint8), r"\(T, H, W, 3\)"),
    (np.zeros((0, 4, 4, 3), np.uint8), "at least one"),
    (np.zeros((2, 0, 4, 3), np.uint8), "at least one"),
])
def test_bad_frames_raise(frames, match):
    with pytest.raises(ValueError, match=match):
        encode_frames(frames, "ffv1")


def test_unknown_format_raises(clips, encoded):
    with pytest.raises(ValueError, match="fmt must be one of"):
        encode_frames(clips["carphone_odd"], "jpeg")
    with pytest.raises(ValueError, match="fmt must be one of"):
        decode_frames(encoded["carphone", "ffv1"], "jpeg")
    with pytest.raises(ValueError, match="fmt is 'png' but data holds a 'ffv1'"):
        decode_frames(encoded["carphone", "ffv1"], "png")


@pytest.mark.parametrize("indices, match", [
    ([50], r"\[0, 49\]"), ([-1], r"\[0, 49\]"), ([], "at least one"),
    ([1.5], "integers"), ([[1, 2]], "1-D"),
])
def test_bad_indices_raise(encoded, indices, match):
    with pytest.raises(ValueError, match=match):
        decode_frames(encoded["carphone", "raw"], "raw", indices)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("source", [bytes, CountingRange])
def test_damaged_data_raises(encoded, fmt, source):
    data = encoded["carphone_odd", fmt]
    damaged = {
        "empty": b"",
        "not a clip": b"\x89PNG" + data[4:],
        "truncated": data[:-1],
        "truncated header": data[:30],
        "too long": data + b"\0",
        "header bit": data[:14] + bytes([data[14] ^ 1]) + data[15:],
        "payload bit": data[:-100] + bytes([data[-100] ^ 4]) + data[-99:],
    }
    for what, bad in damaged.items():
        with pytest.raises(ValueError, match="data "):
            decode_frames(source(bad), fmt)
            pytest.fail(f"{what} data decoded without an error")
    with pytest.raises(ValueError, match="data must be bytes"):
        decode_frames("not bytes", fmt)
    # Checksums are per frame: a damaged last frame leaves the first one readable.
    assert decode_frames(source(damaged["payload bit"]), fmt, [0]).shape == (1, 143, 175, 3)


def frame_spans(data: bytes, fmt: str, runs) -> list:
    """The byte ranges of runs of consecutive frames [(first, last), ...] in ``data``."""
    blob = dfaug.storage._Blob(data, fmt)
    return [(blob.offsets[a], blob.offsets[b] + blob.lengths[b]) for a, b in runs]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_range_is_read_for_the_header_and_the_decoded_frames_only(encoded, fmt):
    """A lazy shard record's member is a file range: storage reads its header, then
    each run of consecutive frames it decodes in one read, and nothing else."""
    data = encoded["carphone", fmt]
    full = decode_frames(data, fmt)
    src = CountingRange(data)
    idx = [37, 9, 13, 14, 15, 9]
    np.testing.assert_array_equal(decode_frames(src, fmt, idx), full[idx])
    runs = [(9, 9), (13, 15), (37, 37)]
    if fmt == "h264-lossless":  # each from its keyframe (every 5th frame)
        runs = [(5, 15), (35, 37)]
    assert src.calls == [[(0, min(len(data), 4096))], frame_spans(data, fmt, runs)]
    assert src.bytes_read < len(data) / 3

    # StoredFrames: prefetch reads the frames a reader will index, in one call
    src = CountingRange(data)
    lazy = StoredFrames(src, fmt)
    lazy.prefetch(np.arange(20, 31))
    for i in range(20, 31):
        np.testing.assert_array_equal(lazy[i], full[i])
    spans = frame_spans(data, fmt, [(20, 34) if fmt == "h264-lossless" else (20, 30)])
    assert src.calls[1:] == [spans]
    np.testing.assert_array_equal(lazy[44], full[44])  # not prefetched: read when indexed
    assert len(src.calls) == 3


def test_a_long_clip_header_is_read_in_a_second_read(carphone):
    """The first read of a file range holds the header of clips up to ~450 frames."""
    frames = np.ascontiguousarray(np.resize(carphone.frames[:, :6, :8], (500, 6, 8, 3)))
    data = encode_frames(frames, "zstd")
    src = CountingRange(data)
    np.testing.assert_array_equal(decode_frames(src, "zstd", [499]), frames[[499]])
    header = 24 + 500 * 9 + 4  # header, frame table (9 bytes a frame), their checksum
    last_frame_end = frame_spans(data, "zstd", [(499, 499)])[0][1]
    assert [call[0][1] for call in src.calls] == [4096, header, last_frame_end]


def test_decode_is_a_video_decode_error(encoded):
    with pytest.raises(dfaug.VideoDecodeError):
        decode_frames(encoded["carphone", "ffv1"][:-5], "ffv1")


def _blob(fmt: str, t: int, h: int, w: int, payloads: list) -> bytes:
    """A clip container around arbitrary payloads, with valid checksums, so that
    the decoder's own checks (not the CRCs) meet the bad payloads."""
    import zlib

    from dfaug import storage as st
    head = st._HEADER.pack(st._MAGIC, st._VERSION, st._CODE[fmt], 0, t, h, w, 0)
    head += b"".join(st._ENTRY.pack(len(p), zlib.crc32(p), 1) for p in payloads)
    return head + st._CRC.pack(zlib.crc32(head)) + b"".join(payloads)


def test_zstd_payloads_that_pass_their_checksum_but_are_bad_raise():
    import zstandard
    good = zstandard.ZstdCompressor().compress(bytes(4 * 6 * 3))
    short = zstandard.ZstdCompressor().compress(bytes(4 * 6 * 3 - 1))
    assert decode_frames(_blob("zstd", 1, 4, 6, [good]), "zstd").shape == (1, 4, 6, 3)
    with pytest.raises(dfaug.VideoDecodeError, match="frame 1 fails to decompress"):
        decode_frames(_blob("zstd", 2, 4, 6, [good, b"not zstd at all"]), "zstd")
    with pytest.raises(dfaug.VideoDecodeError, match="frame 0 holds 71 bytes, expected 72"):
        decode_frames(_blob("zstd", 1, 4, 6, [short]), "zstd")
    too_long = zstandard.ZstdCompressor().compress(bytes(4 * 6 * 3 + 1))
    with pytest.raises(dfaug.VideoDecodeError, match="frame 0"):
        decode_frames(_blob("zstd", 1, 4, 6, [too_long]), "zstd")


def test_zstd_predictor_round_trips_extreme_pixels():
    # wrap-around in every direction: 0/255 checkerboards and random noise
    rng = np.random.default_rng(0)
    board = (np.indices((9, 7)).sum(0) % 2 * 255).astype(np.uint8)
    frames = np.stack([np.repeat(board[..., None], 3, -1), 255 - np.repeat(board[..., None], 3, -1),
                       rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)])
    np.testing.assert_array_equal(decode_frames(encode_frames(frames, "zstd"), "zstd"), frames)


def test_compiled_falls_back_when_numba_cannot_cache():
    from dfaug.storage import compiled
    namespace = {}
    exec(compile("def double(x):\n    return 2 * x\n", "<no file>", "exec"), namespace)
    assert compiled(namespace["double"])(21) == 42  # no source file: nothing to cache in
