"""Re-encoding with H.265, VP9 and AV1: what recompress promises for H.264 holds for each."""
import av
import numpy as np
import pytest

from conftest import psnr
from dfaug import Clip, CompressionParams, compression, recompress
from dfaug.compression import CODECS, open_decoder, open_encoder, plan_encode

OTHERS = ("hevc", "vp9", "av1")
# a mid value of each codec's quality scale
MID = {"h264": 30, "hevc": 30, "vp9": 40, "av1": 40}


@pytest.fixture(scope="module")
def clip(carphone):
    return carphone.take(np.arange(20, 70))


@pytest.mark.parametrize("codec", OTHERS)
def test_the_pair_gets_one_setting_and_identical_inputs_identical_outputs(clip, carphone_distorted,
                                                                          codec):
    params = CompressionParams(30, 1.0, MID[codec], None, codec=codec)
    a, b = recompress([clip, clip], params)
    again = recompress([clip], params)[0]
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.frames, again.frames)
    fake = carphone_distorted.take(np.arange(20, 70))
    r, f = recompress([clip, fake], params)
    assert r.frames.shape == f.frames.shape and np.array_equal(r.pts, f.pts)
    assert not np.array_equal(r.frames, f.frames)
    assert np.array_equal(r.frames, a.frames)  # a member's frames do not depend on the other's


@pytest.mark.parametrize("codec", OTHERS)
def test_quality_falls_as_the_quality_value_worsens(clip, codec):
    lo, hi = CODECS[codec].quality
    values = np.linspace(lo + 10, hi - 3, 4).astype(int)
    quality = [psnr(recompress([clip], CompressionParams(30, 1.0, int(q), None, codec=codec))[0]
                    .frames, clip.frames) for q in values]
    assert all(a > b + 0.5 for a, b in zip(quality, quality[1:])), quality
    assert quality[0] > 33


@pytest.mark.parametrize("codec", OTHERS)
@pytest.mark.parametrize("fps", [15, 20, 25])
def test_frame_rate_reduction_and_scaling_match_h264(clip, codec, fps):
    h264 = recompress([clip], CompressionParams(fps, 0.6, 30, "film"))[0]
    other = recompress([clip], CompressionParams(fps, 0.6, MID[codec], None, codec=codec))[0]
    assert other.frames.shape == h264.frames.shape
    assert np.array_equal(other.pts, h264.pts)
    assert psnr(other.frames, h264.frames) > 25  # the same pictures


@pytest.mark.parametrize("codec", OTHERS)
def test_sampled_times_are_the_full_encodes_frames_bit_for_bit(clip, codec):
    """Other codecs are fed from the clip's first frame and stop once the last sampled
    frame is out: the frames equal those of a fully flushed encode of every frame."""
    params = CompressionParams(30, 1.0, MID[codec], None, codec=codec)
    times = clip.pts[[9, 13, 17, 21, 25, 29, 33, 37]]
    plan = plan_encode(clip, params, times=times)
    assert plan.indices[0] == 0 and len(plan.indices) == len(clip)  # not the needed frames only
    enc = open_encoder(params, plan.size, plan.rate)
    packets = []
    for n, i in enumerate(plan.indices):
        frame = av.VideoFrame.from_ndarray(clip.frames[i], format="rgb24").reformat(
            *plan.size, "yuv420p", interpolation="BICUBIC", threads=1)
        frame.pts = n
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec = open_decoder(params, enc)
    decoded = {f.pts: f.to_ndarray(format="rgb24") for p in packets + [None] for f in dec.decode(p)}
    expected = np.stack([decoded[int(k)] for k in plan.pick])
    out = recompress([clip], params, times=times)[0]
    assert len(out) == 8 and np.array_equal(out.frames, expected)


def test_hevc_refuses_frames_smaller_than_x265_encodes_safely(clip):
    with pytest.raises(ValueError, match="hevc needs at least 64x64"):
        recompress([clip], CompressionParams(30, 0.4, 30, None, codec="hevc"))  # 70x56
    out = recompress([clip], CompressionParams(30, 0.5, 30, None, codec="hevc"))[0]  # 88x72
    assert out.frames.shape[1:3] == (72, 88)


@pytest.mark.parametrize("kwargs, message", [
    (dict(codec="mpeg2"), r"codec must be one of \('h264', 'hevc', 'vp9', 'av1'\)"),
    (dict(codec="vp9", crf=64), r"crf must be an integer in \[0, 63\] for vp9"),
    (dict(codec="av1", crf=0), r"crf must be an integer in \[1, 63\] for av1"),
    (dict(codec="hevc", crf=52), r"crf must be an integer in \[0, 51\] for hevc"),
    (dict(codec="vp9", preset="medium"), "preset must be one of .*'realtime-8'.* for vp9"),
    (dict(codec="av1", preset="14"), "preset must be one of .* for av1"),
    (dict(codec="hevc", tune="film"), "tune must be one of .* or None for hevc"),
    (dict(codec="vp9", tune="grain"), r"tune must be one of \(\) or None for vp9"),
])
def test_bad_codec_settings_name_the_argument_and_its_values(kwargs, message):
    base = dict(fps=30, scale=1.0, crf=30, tune=None)
    with pytest.raises(ValueError, match=message):
        CompressionParams(**{**base, **kwargs})


def test_a_codec_missing_from_the_pyav_build_is_named_at_construction(monkeypatch):
    monkeypatch.setattr(compression.av, "codecs_available",
                        set(av.codecs_available) - {"libsvtav1"})
    with pytest.raises(ValueError, match="codec 'av1' needs FFmpeg's libsvtav1, which this "
                                         "PyAV build"):
        CompressionParams(30, 1.0, 40, None, codec="av1")
    CompressionParams(30, 1.0, 40, None, codec="vp9")  # the others still work


def test_defaults_are_each_codecs_own():
    assert CompressionParams(30, 1.0, 23, "film").preset == "medium"
    assert CompressionParams(30, 1.0, 23, "film").codec == "h264"
    assert {c: CompressionParams(30, 1.0, MID[c], None, codec=c).preset for c in OTHERS} == {
        c: CODECS[c].default_preset for c in OTHERS}
    tiny = Clip(np.zeros((3, 8, 8, 3), np.uint8), np.arange(3) / 30)
    assert recompress([tiny], CompressionParams(30, 1.0, 40, None, codec="vp9"))[0].frames.shape \
        == (3, 8, 8, 3)


# ------------------------------------------------------------------------- the sampler

def test_a_codec_mix_draws_each_codec_by_weight_with_its_own_ranges():
    from scipy import stats
    from dfaug import CodecChoice, CompressionSampler
    s = CompressionSampler(p_skip=0.0, codecs=(CodecChoice("h264", 2.0, (20, 30), tunes=("film",)),
                                               CodecChoice("vp9", 1.0, (30, 40)),
                                               CodecChoice("av1", 1.0, (35, 45), "8")))
    rng = np.random.default_rng(0)
    draws = [s.sample(rng) for _ in range(4000)]
    counts = [sum(d.codec == c for d in draws) for c in ("h264", "vp9", "av1")]
    assert stats.chisquare(counts, [2000, 1000, 1000]).pvalue > 1e-3
    for codec, (lo, hi), preset, tunes in (("h264", (20, 30), "medium", {"film"}),
                                           ("vp9", (30, 40), "realtime-5", {None}),
                                           ("av1", (35, 45), "8", {None})):
        mine = [d for d in draws if d.codec == codec]
        assert {d.crf for d in mine} == set(range(lo, hi))
        assert {d.preset for d in mine} == {preset} and {d.tune for d in mine} == tunes
    # the same seed, the same draws
    assert [s.sample(np.random.default_rng(5)) for _ in range(2)][0] == \
        s.sample(np.random.default_rng(5))


def test_without_codecs_the_draws_are_the_recipes_number_for_number():
    from dfaug import CompressionSampler
    # the recipe's draw order, written out: u_skip, u_fps, u_scale, fps, scale, crf, tune
    rng, mine = np.random.default_rng(11), np.random.default_rng(11)
    s = CompressionSampler()
    for _ in range(200):
        u = rng.random(3)
        fps, scale = int(rng.integers(15, 30)), float(rng.uniform(0.25, 1.0))
        crf, tune = int(rng.integers(17, 40)), s.tunes[int(rng.integers(6))]
        d = s.sample(mine)
        if u[0] < 0.5:
            assert d is None
            continue
        assert (d.fps, d.scale, d.crf, d.tune, d.preset, d.codec) == (
            fps if u[1] < 0.5 else 30.0, scale if u[2] < 0.5 else 1.0, crf, tune, "medium", "h264")


@pytest.mark.parametrize("name", ["recipe", "web", "phone"])
def test_named_samplers_draw_settings_that_encode(clip, name):
    from dfaug import CompressionSampler
    s = CompressionSampler.named(name)
    rng = np.random.default_rng(1)
    draws = [d for d in (s.sample(rng) for _ in range(400)) if d is not None]
    if name == "web":
        assert {d.codec for d in draws} == {"h264", "vp9", "av1"}
        assert {d.scale for d in draws} == {1.0, 2 / 3, 4 / 9, 1 / 3} and {d.fps for d in draws} == {30}
    if name == "phone":
        assert {d.codec for d in draws} == {"hevc"} and {d.scale for d in draws} == {1.0}
    big = Clip(np.repeat(np.repeat(clip.frames[:12], 2, 1), 2, 2), clip.pts[:12])  # 352x288
    for d in draws[:6]:
        assert len(recompress([big], d)[0]) >= 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(codecs=("mpeg2",)), "codecs: codec must be one of"),
    (dict(codecs="vp9"), "codecs must be a non-empty sequence"),
    (dict(codecs=()), "codecs must be a non-empty sequence"),
    (dict(scales=(0.5, 1.5)), "scales must be a non-empty sequence of factors in"),
])
def test_bad_sampler_codecs_raise(kwargs, message):
    from dfaug import CompressionSampler
    with pytest.raises(ValueError, match=message):
        CompressionSampler(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(codec="vp9", crf_range=(10, 70)), "crf_range of vp9"),
    (dict(codec="av1", preset="slow"), "preset of av1 must be one of"),
    (dict(codec="hevc", tunes=("film",)), "tunes of hevc must be some of"),
    (dict(codec="h264", weight=0), "weight of h264 must be a positive number"),
])
def test_bad_codec_choices_raise(kwargs, message):
    from dfaug import CodecChoice
    with pytest.raises(ValueError, match=message):
        CodecChoice(**kwargs)
    with pytest.raises(ValueError, match="name must be one of"):
        __import__("dfaug").CompressionSampler.named("tiktok")
