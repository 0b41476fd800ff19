"""dfaug.simd: capping FFmpeg's and x264's SIMD, in child processes (the cap is
process-wide)."""
import json
import os
import subprocess
import sys

import pytest

import dfaug.simd

CHILD = r"""
import hashlib, json, ctypes
import av, numpy as np
from fractions import Fraction
import dfaug
from dfaug import simd
from dfaug.compression import CompressionParams, open_encoder
from dfaug.testing import media_path
av.logging.set_level(av.logging.INFO)
with av.logging.Capture() as logs:
    enc = open_encoder(CompressionParams(30, 1.0, 30, "film"), (64, 64), Fraction(30))
    frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
    enc.encode(frame.reformat(format="yuv420p")); list(enc.encode(None))
clip = dfaug.read_video(media_path("carphone_pristine.mp4")).take(np.arange(40))
out = [dfaug.recompress([clip], p)[0].frames for p in (CompressionParams(29, 1.0, 36, "film"),
       CompressionParams(20, 0.61, 28, "fastdecode"))]
print(json.dumps({"av_flags": simd._loaded("libavutil").av_get_cpu_flags(),
                  "x264": [m for _, _, m in logs if "cpu capabilities" in m],
                  "x264_detected": simd._x264_cpu_detect(), "options": simd.x264_options(),
                  "frames": [hashlib.sha1(o.tobytes()).hexdigest() for o in out]}))
"""


def run_child(level=None):
    env = {k: v for k, v in os.environ.items() if k != dfaug.simd.ENV}
    if level:
        env[dfaug.simd.ENV] = level
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sse4_cap_reaches_ffmpeg_and_x264_and_changes_no_pixel():
    native, capped = run_child(), run_child("sse4")
    avx, avx2 = 0x4000, 0x8000
    assert capped["av_flags"] & (avx | avx2) == 0
    assert capped["av_flags"] == native["av_flags"] & ~dfaug.simd.LEVELS["sse4"][0]
    assert len(capped["x264"]) == 1 and "AVX" not in capped["x264"][0]
    assert "SSE4.2" in capped["x264"][0]
    # x264, the H.264 decoder and these swscale conversions give the same pixels
    # with SSE4 as with AVX2: the cap does not change the augmentation here
    assert capped["frames"] == native["frames"]


def test_x264_leaves_out_avx512_by_default_and_none_lifts_every_cap():
    """The default that keeps re-encoding reproducible on AVX-512 CPUs (x264's AVX-512
    code gave different packets run to run on the GPU host's Xeon), checked on the
    encoder x264 reports; "none" gives x264 back its own choice and FFmpeg its own
    detection. On a CPU without AVX-512 the default changes nothing."""
    native, lifted = run_child(), run_child("none")
    avx512 = dfaug.simd.X264["AVX512"]
    assert len(native["x264"]) == 1 and "AVX512" not in native["x264"][0]
    if native["x264_detected"] & avx512:
        assert native["options"] == {"x264-params": f"asm={native['x264_detected'] & ~avx512}"}
        assert "AVX512" in lifted["x264"][0]
    else:
        assert native["options"] == {}
    assert lifted["options"] == {"x264-params": f"asm={lifted['x264_detected']}"}
    assert lifted["av_flags"] == native["av_flags"]
    assert lifted["frames"] == native["frames"]


def test_default_x264_mask_is_the_cpus_less_avx512(monkeypatch):
    simd = dfaug.simd
    avx512, base = simd.X264["AVX512"], 0x10f3ff  # dev-cpu's mask: AVX2, no AVX-512
    monkeypatch.setattr(simd, "_x264_asm", None)
    try:
        for detected, expected in ((base | avx512, {"x264-params": f"asm={base}"}), (base, {})):
            simd.default_x264_asm.cache_clear()
            monkeypatch.setattr(simd, "_x264_cpu_detect", lambda: detected)
            assert simd.x264_options() == expected
    finally:
        simd.default_x264_asm.cache_clear()  # this CPU's own answer for later tests
    monkeypatch.setattr(simd, "_x264_asm", 0x3ff)  # an explicit limit wins
    assert simd.x264_options() == {"x264-params": "asm=1023"}


def test_unknown_level_is_a_clear_error():
    with pytest.raises(ValueError, match="avx2"):
        dfaug.simd.limit_simd("avx9")
