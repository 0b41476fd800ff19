import pytest
import torch
from scipy import stats

from dfaug import aligned_mixup, mix_pairs, sample_mixup_t


def test_aligned_mixup_is_the_formula():
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(5, 3, 8, 8, generator=g), torch.randn(5, 3, 8, 8, generator=g)
    t = torch.tensor([0.0, 1.0, 0.5, 0.25, 0.9])
    out = aligned_mixup(real, fake, t)
    for i in range(5):
        assert torch.allclose(out[i], (1 - t[i]) * real[i] + t[i] * fake[i], atol=1e-6)
    assert torch.equal(out[0], real[0]) and torch.allclose(out[1], fake[1])


def test_t_is_beta_half_half_and_seeded():
    t = sample_mixup_t(20000, torch.Generator().manual_seed(1))
    assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1
    assert stats.kstest(t.numpy(), stats.beta(0.5, 0.5).cdf).pvalue > 1e-3
    assert torch.equal(t[:10], sample_mixup_t(10, torch.Generator().manual_seed(1)))
    other = sample_mixup_t(20000, torch.Generator().manual_seed(2), alpha=2.0)
    assert stats.kstest(other.numpy(), stats.beta(2, 2).cdf).pvalue > 1e-3


def test_frame_mode_one_t_per_image():
    g = torch.Generator().manual_seed(3)
    batch = torch.randn(4, 2, 1, 3, 16, 16, generator=g)
    x, y = mix_pairs(batch, torch.Generator().manual_seed(4), mode="frame")
    assert x.shape == (4, 3, 16, 16) and y.shape == (4,)
    assert len(set(y.tolist())) == 4
    expected = (1 - y.view(-1, 1, 1, 1)) * batch[:, 0, 0] + y.view(-1, 1, 1, 1) * batch[:, 1, 0]
    assert torch.allclose(x, expected, atol=1e-6)


def test_sequence_mode_one_t_per_sequence():
    batch = torch.randn(3, 2, 7, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    x, y = mix_pairs(batch, torch.Generator().manual_seed(6), mode="sequence")
    assert x.shape == (3, 7, 3, 8, 8) and y.shape == (3, 7)
    assert torch.equal(y, y[:, :1].expand_as(y))
    t = y[:, 0].view(3, 1, 1, 1, 1)
    assert torch.allclose(x, (1 - t) * batch[:, 0] + t * batch[:, 1], atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="same shape"):
        aligned_mixup(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="one value per sample"):
        aligned_mixup(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="alpha"):
        sample_mixup_t(3, alpha=0)
    with pytest.raises(ValueError, match="mode"):
        mix_pairs(torch.zeros(1, 2, 1, 3, 4, 4), mode="video")
    with pytest.raises(ValueError, match=r"\(B, 2, T, C, H, W\)"):
        mix_pairs(torch.zeros(1, 3, 1, 3, 4, 4))
