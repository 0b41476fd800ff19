import dataclasses

import numpy as np
import pytest
import torch

from dfaug import AugmentConfig, PairAugment
from dfaug.augment import (IMAGENET_MEAN, IMAGENET_STD, PRESETS, _resize_uint8,
                           _resize_uint8_exact, hash_normal)

ALL_ON = dict(p_autoaugment=1.0)  # exercise AutoAugment on every pair


def pairs_of(frames: np.ndarray, batch: int, t: int) -> torch.Tensor:
    """(B, 2, T, 3, H, W) uint8 with real == fake: real frames, consecutive per clip."""
    x = torch.from_numpy(frames[: batch * t]).permute(0, 3, 1, 2)
    x = x.reshape(batch, 1, t, *x.shape[1:])
    return torch.cat([x, x], 1)


@pytest.fixture(scope="module")
def frames(carphone):
    return carphone.frames


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_identical_pair_in_identical_pair_out(frames, preset):
    aug = PairAugment(preset, p_autoaugment=1.0, p_erase=1.0 if preset == "tight_erase" else 0.0)
    out = aug(pairs_of(frames, 16, 1), torch.Generator().manual_seed(1))
    assert torch.equal(out[:, 0], out[:, 1])


def test_identical_frames_in_a_clip_stay_identical(frames):
    x = torch.from_numpy(frames[40]).permute(2, 0, 1).expand(6, 2, 7, -1, -1, -1).contiguous()
    out = PairAugment("tight", **ALL_ON)(x, torch.Generator().manual_seed(2))
    assert torch.equal(out, out[:, :, :1].expand_as(out))
    # but different clips of the batch were augmented differently
    assert len({out[i, 0, 0].sum().item() for i in range(6)}) == 6


def test_erasing_box_and_noise_are_shared_by_pair_and_frames(frames):
    aug = PairAugment("tight_erase", p_erase=1.0, p_autoaugment=0.0)
    x = pairs_of(frames, 4, 7)
    params = aug.make_params(4, 144, 176, torch.Generator().manual_seed(3))
    assert params.erase.all()
    out = aug.apply(x, params)
    plain = aug.apply(x, dataclasses.replace(params, erase=torch.zeros(4, dtype=torch.bool)))
    for b in range(4):
        top, left, h, w = params.erase_box[b].tolist()
        changed = (out[b] != plain[b]).any(dim=(0, 1, 2))      # (H, W)
        assert changed[top:top + h, left:left + w].float().mean() > 0.99
        assert not changed[:top].any() and not changed[top + h:].any()
        area = h * w / (224 * 192)
        assert 0.02 * 0.9 <= area <= 1 / 3 * 1.1
        box = out[b, :, :, :, top:top + h, left:left + w]
        assert torch.equal(box, box[:1, :1].expand_as(box))   # same noise everywhere
        assert 0.8 < box[0, 0].std() < 1.2                     # N(0, 1) in normalised units


def test_batch_of_identical_inputs_gets_diverse_outputs(frames):
    x = pairs_of(frames[50:51].repeat(32, 0), 32, 1)
    out = PairAugment("tight_erase")(x, torch.Generator().manual_seed(4))
    distinct = {tuple(np.round(out[i, 0].flatten()[::997].numpy(), 4)) for i in range(32)}
    assert len(distinct) >= 28  # flips, crops and AutoAugment draws differ per pair


def test_same_seed_same_batch_other_seed_other_batch(frames):
    x = pairs_of(frames, 8, 1)
    aug = PairAugment("tight_erase", p_erase=0.5)
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_size_dtype_and_normalisation(frames, preset):
    out = PairAugment(preset)(pairs_of(frames, 4, 7), torch.Generator().manual_seed(7))
    assert out.shape == (4, 2, 7, 3, 224, 192) and out.dtype == torch.float32
    # a flat picture of the ImageNet mean colour becomes zero (no AutoAugment, no erasing)
    flat = torch.tensor([round(255 * m) for m in IMAGENET_MEAN], dtype=torch.uint8)
    flat = flat.view(1, 1, 1, 3, 1, 1).expand(2, 2, 1, 3, 150, 150)
    out = PairAugment(preset, p_autoaugment=0.0, p_erase=0.0)(flat.contiguous())
    expected = [(round(255 * m) / 255 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(out.mean(dim=(0, 1, 2, 4, 5)), torch.tensor(expected), atol=1e-5)


def test_large_crop_keeps_the_whole_box_visible(frames):
    """SmallestMaxSize(192) + PadIfNeeded(224, 192): a square box is resized whole,
    with 16 rows of reflect-101 padding above and below."""
    square = torch.from_numpy(frames[:2, :, 16:160].copy()).permute(0, 3, 1, 2)   # 144x144
    x = square.view(1, 1, 2, 3, 144, 144).expand(1, 2, 2, 3, 144, 144).contiguous()
    aug = PairAugment("whole_face", p_flip=0.0, p_autoaugment=0.0)
    out = aug(x, torch.Generator().manual_seed(0))
    pixels = out[0, 0] * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) \
        + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    pixels = torch.round(pixels * 255)
    resized = torch.nn.functional.interpolate(square.float(), size=(192, 192), mode="bilinear",
                                              align_corners=False)
    # the resize is cv2-style bilinear; torch's uint8 kernel may round a level differently
    assert (pixels[:, :, 16:208] - torch.round(resized)).abs().max() <= 1
    assert torch.equal(pixels[:, :, 15], pixels[:, :, 17])      # reflect-101 about row 16
    assert torch.equal(pixels[:, :, 0], pixels[:, :, 32])
    assert torch.equal(pixels[:, :, 208], pixels[:, :, 206])    # and about row 207


def test_uint8_and_float_inputs_agree(frames):
    x = pairs_of(frames, 4, 1)
    aug = PairAugment("tight_erase", p_erase=0.5)
    a = aug(x, torch.Generator().manual_seed(8))
    b = aug(x.float() / 255, torch.Generator().manual_seed(8))
    assert torch.allclose(a, b, atol=1e-4)


def test_draws_follow_the_policy_probabilities():
    aug = PairAugment("tight_erase")
    n = 20000
    params = aug.make_params(n, 224, 224, torch.Generator().manual_seed(9))
    assert abs(params.flip.float().mean() - 0.5) < 0.02
    assert abs(params.erase.float().mean() - 0.2) < 0.02
    # stage 1 Rotate: sub-policies 0 (p 0.6), 5 (0.8), 11... expected rate over the policy
    policy = aug.config.policy
    for stage in (0, 1):
        for name in ("Rotate", "Equalize", "Color"):
            expected = 0.5 * sum(s[stage][1] for s in policy if s[stage][0] == name) / len(policy)
            got = len(params.aa_ops[stage].get(name, ([],))[0]) / n
            assert abs(got - expected) < 4 * np.sqrt(expected / n) + 1e-3, (stage, name, got, expected)


def test_hash_noise_is_standard_normal_and_seeded():
    z = hash_normal(torch.tensor([1, 2]), (3, 100, 100), "cpu")
    assert z.shape == (2, 3, 100, 100)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert torch.equal(z[0], hash_normal(torch.tensor([1]), (3, 100, 100), "cpu")[0])
    assert not torch.equal(z[0], z[1])


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(2, 3, 1, 3, 64, 64, dtype=torch.uint8), r"\(B, 2, T, 3, H, W\)"),
    (torch.zeros(2, 2, 3, 64, 64, dtype=torch.uint8), r"\(B, 2, T, 3, H, W\)"),
    (torch.zeros(2, 2, 1, 3, 64, 64, dtype=torch.int32), "uint8"),
])
def test_bad_batches_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        PairAugment("tight_erase")(bad)


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="one of"):
        PairAugment("huge")
    with pytest.raises(ValueError, match="p_flip"):
        AugmentConfig(p_flip=2)
    with pytest.raises(ValueError, match="crop"):
        AugmentConfig(crop=(224,))
    with pytest.raises(ValueError, match="erase_area"):
        AugmentConfig(erase_area=(0.5, 0.1))
    with pytest.raises(ValueError, match="smaller than the crop"):
        PairAugment("tight_erase", smallest_max_size=100)(torch.zeros(1, 2, 1, 3, 64, 64, dtype=torch.uint8))


def test_device_resize_is_the_cpu_uint8_resize_pixel_for_pixel(frames):
    """The resize a CUDA device stage runs, checked here on the CPU against torch's
    CPU uint8 kernel: enlarging and shrinking, odd sizes, one-pixel edges, real frames."""
    g = np.random.default_rng(0)
    real = torch.from_numpy(frames[:4]).permute(0, 3, 1, 2).contiguous()      # 144x176
    sizes = [(256, 312), (300, 366), (72, 88), (144, 177), (143, 176), (1, 5), (288, 1)]
    sizes += [tuple(int(v) for v in g.integers(1, 400, 2)) for _ in range(40)]
    for height, width in sizes:
        assert torch.equal(_resize_uint8_exact(real, height, width),
                           _resize_uint8(real, height, width)), (height, width)
    for _ in range(40):
        h, w, oh, ow = (int(v) for v in g.integers(1, 300, 4))
        x = torch.from_numpy(g.integers(0, 256, (2, 3, h, w), dtype=np.uint8))
        assert torch.equal(_resize_uint8_exact(x, oh, ow), _resize_uint8(x, oh, ow)), (h, w, oh, ow)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_resize_matches_cpu(frames):
    x = torch.from_numpy(frames[:8]).permute(0, 3, 1, 2).contiguous()
    for height, width in ((256, 312), (300, 366), (72, 88)):
        assert torch.equal(_resize_uint8(x.cuda(), height, width).cpu(),
                           _resize_uint8(x, height, width))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu_for_the_same_draws(frames):
    aug = PairAugment("tight_erase", p_autoaugment=1.0, p_erase=0.5)
    x = pairs_of(frames, 16, 1)
    params = aug.make_params(16, 144, 176, torch.Generator().manual_seed(10))
    cpu = aug.apply(x, params)
    gpu = aug.apply(x.cuda(), params).cpu()
    # the same integer arithmetic; interpolation may round a level differently
    diff = (cpu - gpu).abs() * 255 * max(IMAGENET_STD)
    assert diff.mean() < 0.05 and (diff > 1.01).float().mean() < 1e-3


@pytest.mark.parametrize("preset", ["tight_erase", "tight"])
def test_center_view_is_centred_and_draws_nothing(frames, preset):
    """The validation/inference view: mirroring the input mirrors the output only when
    the crop sits in the middle (carphone's 144x176 at 224 high leaves an even margin
    of 82 columns; large_crop's 43 is odd, so it cannot be mirror-exact)."""
    aug = PairAugment(preset)
    x = pairs_of(frames, batch=2, t=2)
    out = aug.center(x)
    assert out.shape == (2, 2, 2, 3, 224, 192)
    assert torch.equal(out, aug.center(x))
    assert torch.allclose(aug.center(x.flip(-1)), out.flip(-1), atol=1e-5)
    # and it is the random chain with every random step switched off and the crop centred
    params = aug.make_params(2, x.shape[-2], x.shape[-1], torch.Generator().manual_seed(0))
    assert not torch.allclose(aug.apply(x, params), out)


def test_center_view_of_single_clips_matches_pairs(frames):
    aug = PairAugment("whole_face")
    x = pairs_of(frames, batch=2, t=3)
    assert torch.equal(aug.center(x[:, 0]), aug.center(x)[:, 0])
