"""The device stage: the recipe's image augmentations, identical across a pair and a clip.

``PairAugment`` takes a batch (B, 2, T, C, H, W) (member 0 real, member 1 fake; T
frames per clip) on any device and returns normalised float (B, 2, T, C, h, w).
Parameters are drawn once per pair in :meth:`PairAugment.make_params`, on the CPU
from a ``torch.Generator``, and applied by pure batched functions to all 2*T images
of the pair, so real, fake and every frame get the same flip, crop, AutoAugment
sub-policy and magnitudes, interpolation, erasing box and erasing noise.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Optional, Union

import torch
import torch.nn.functional as F

from . import autoaugment as aa

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AugmentConfig:
    """Settings of :class:`PairAugment` (docs/recipe.md "Image augmentations").

    Chain: SmallestMaxSize(``smallest_max_size``, bilinear) -> PadIfNeeded(``pad_to``,
    reflect-101) -> HorizontalFlip(``p_flip``) -> RandomCrop(``crop`` = (H, W)) ->
    AutoAugment(``p_autoaugment``; ``policy``, magnitude noise ``magnitude_std``,
    ``translate_const``, fill = ImageNet mean, bilinear or bicubic at random) ->
    Normalize(``mean``, ``std``) -> RandomErasing(``p_erase``, one box of
    ``erase_area`` of the image and aspect ``erase_aspect``, per-pixel N(0, 1) noise).
    """

    smallest_max_size: int = 224
    pad_to: Optional[tuple] = None
    crop: tuple = (224, 192)
    p_flip: float = 0.5
    p_autoaugment: float = 0.5
    policy: tuple = aa.ORIGINAL_POLICY
    magnitude_std: float = 0.5
    translate_const: int = int(192 * 0.45)
    p_erase: float = 0.0
    erase_area: tuple = (0.02, 1 / 3)
    erase_aspect: tuple = (0.3, 1 / 0.3)
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def __post_init__(self):
        def positive_int(name, v):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        positive_int("smallest_max_size", self.smallest_max_size)
        for name in ("crop", "pad_to"):
            v = getattr(self, name)
            if v is None and name == "pad_to":
                continue
            if not (isinstance(v, (tuple, list)) and len(v) == 2):
                raise ValueError(f"{name} must be (height, width), got {v!r}")
            for x in v:
                positive_int(name, x)
            object.__setattr__(self, name, tuple(v))
        for name in ("p_flip", "p_autoaugment", "p_erase"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 <= v <= 1):
                raise ValueError(f"{name} must be a probability in [0, 1], got {v!r}")
        if not (isinstance(self.magnitude_std, (int, float)) and self.magnitude_std >= 0):
            raise ValueError(f"magnitude_std must be >= 0, got {self.magnitude_std!r}")
        lo, hi = self.erase_area
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"erase_area must satisfy 0 < low <= high <= 1, got {self.erase_area!r}")
        lo, hi = self.erase_aspect
        if not 0 < lo <= hi:
            raise ValueError(f"erase_aspect must satisfy 0 < low <= high, got {self.erase_aspect!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std must have 3 values, std positive")
        object.__setattr__(self, "policy", aa.check_policy(self.policy))

    @property
    def fill(self) -> tuple:
        """AutoAugment's fill colour: the mean in 0..255 integers, as timm's img_mean."""
        return tuple(round(255 * m) for m in self.mean)


PRESETS = {
    # the whole face box visible: shorter side to 192, padded to 224x192; no erasing
    "whole_face": AugmentConfig(smallest_max_size=192, pad_to=(224, 192)),
    # a tighter crop (shorter side to 224, cropped to 224x192) and random erasing
    "tight_erase": AugmentConfig(smallest_max_size=224, p_erase=0.2),
    # the tighter crop alone
    "tight": AugmentConfig(smallest_max_size=224),
}


@dataclass
class PairParams:
    """One draw per pair (B pairs); CPU tensors, moved to the data's device on apply."""

    flip: torch.Tensor          # (B,) bool
    crop_y: torch.Tensor        # (B,) int64, offset after resize and pad
    crop_x: torch.Tensor
    aa_ops: list = field(default_factory=list)  # per stage: dict name -> (pair idx, arg, bicubic)
    erase: torch.Tensor = None  # (B,) bool
    erase_box: torch.Tensor = None  # (B, 4) int64: top, left, height, width
    erase_seed: torch.Tensor = None  # (B,) int64: the noise of the pair


class PairAugment:
    """Augment batches of aligned pairs identically per pair (see module docstring).

    ``config``: a preset name (``"whole_face"``, ``"tight_erase"``, ``"tight"``) or an
    :class:`AugmentConfig`; keyword arguments override its fields.
    Call: ``aug(x, generator)`` with x (B, 2, T, C, H, W), uint8 (0..255) or float
    (0..1), on any device. Returns float32 (B, 2, T, C, crop_h, crop_w), normalised.
    """

    def __init__(self, config: Union[str, AugmentConfig] = "tight_erase", **overrides):
        if isinstance(config, str):
            if config not in PRESETS:
                raise ValueError(f"config must be one of {sorted(PRESETS)} or an AugmentConfig, "
                                 f"got {config!r}")
            config = PRESETS[config]
        if not isinstance(config, AugmentConfig):
            raise TypeError(f"config must be a preset name or AugmentConfig, got {type(config).__name__}")
        self.config = replace(config, **overrides) if overrides else config

    def __repr__(self):
        return f"PairAugment({self.config})"

    # ---------------------------------------------------------------- draws

    def geometry(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(resized h, w, padded h, w) for input frames of ``height`` x ``width``."""
        s = self.config.smallest_max_size / min(height, width)
        rh, rw = max(1, round(height * s)), max(1, round(width * s))
        ph, pw = rh, rw
        if self.config.pad_to is not None:
            ph, pw = max(rh, self.config.pad_to[0]), max(rw, self.config.pad_to[1])
        ch, cw = self.config.crop
        if ph < ch or pw < cw:
            raise ValueError(f"frames of {height}x{width} become {ph}x{pw} after resize and pad, "
                             f"smaller than the crop {ch}x{cw}; set pad_to or a larger smallest_max_size")
        return rh, rw, ph, pw

    def make_params(self, batch: int, height: int, width: int,
                    generator: Optional[torch.Generator] = None) -> PairParams:
        """Draw every random value of ``batch`` pairs of ``height`` x ``width`` frames."""
        cfg = self.config
        g = generator

        def rand(*shape):
            return torch.rand(*shape, generator=g)

        _, _, ph, pw = self.geometry(height, width)
        ch, cw = cfg.crop
        flip = rand(batch) < cfg.p_flip
        crop_y = torch.floor(rand(batch) * (ph - ch + 1)).long()
        crop_x = torch.floor(rand(batch) * (pw - cw + 1)).long()

        apply_aa = rand(batch) < cfg.p_autoaugment
        sub = torch.floor(rand(batch) * len(cfg.policy)).long().clamp(max=len(cfg.policy) - 1)
        n_stages = len(cfg.policy[0])
        stages = []
        for stage in range(n_stages):
            u_apply, noise, u_sign, u_interp = rand(batch), torch.randn(batch, generator=g), \
                rand(batch), rand(batch)
            ops = {}
            for name in sorted({s[stage][0] for s in cfg.policy}):
                prob = torch.tensor([s[stage][1] if s[stage][0] == name else 0.0 for s in cfg.policy])
                mag = torch.tensor([float(s[stage][2]) for s in cfg.policy])
                chosen = apply_aa & (u_apply < prob[sub])
                idx = torch.nonzero(chosen).flatten()
                if idx.numel() == 0:
                    continue
                m = aa.clip_magnitude(mag[sub[idx]] + cfg.magnitude_std * noise[idx])
                sign = torch.where(u_sign[idx] < 0.5, 1.0, -1.0)
                arg = aa.magnitude_arg(name, m, sign, cfg.translate_const)
                ops[name] = (idx, arg, u_interp[idx] < 0.5)
            stages.append(ops)

        erase = rand(batch) < cfg.p_erase
        box = self._erase_boxes(batch, ch, cw, g)
        erase = erase & (box[:, 2] > 0)
        seed = torch.randint(0, 2 ** 31 - 1, (batch,), generator=g)
        return PairParams(flip, crop_y, crop_x, stages, erase, box, seed)

    def _erase_boxes(self, batch, h, w, g, attempts=10):
        """timm RandomErasing's box: up to 10 tries of area and log-uniform aspect."""
        cfg = self.config
        area = h * w * (cfg.erase_area[0] + torch.rand(batch, attempts, generator=g)
                        * (cfg.erase_area[1] - cfg.erase_area[0]))
        log_lo, log_hi = math.log(cfg.erase_aspect[0]), math.log(cfg.erase_aspect[1])
        aspect = torch.exp(log_lo + torch.rand(batch, attempts, generator=g) * (log_hi - log_lo))
        bh = torch.round(torch.sqrt(area * aspect)).long()
        bw = torch.round(torch.sqrt(area / aspect)).long()
        ok = (bh < h) & (bw < w)
        first = torch.argmax(ok.long(), dim=1)
        found = ok.any(dim=1)
        bh = torch.where(found, bh.gather(1, first[:, None]).squeeze(1), 0)
        bw = torch.where(found, bw.gather(1, first[:, None]).squeeze(1), 0)
        top = torch.floor(torch.rand(batch, generator=g) * (h - bh + 1)).long()
        left = torch.floor(torch.rand(batch, generator=g) * (w - bw + 1)).long()
        return torch.stack([top, left, bh, bw], 1)

    def center_params(self, batch: int, height: int, width: int) -> PairParams:
        """The deterministic view for validation and inference: resize, pad and a
        centred crop; no flip, AutoAugment or erasing (the recipe's CenterCrop)."""
        _, _, ph, pw = self.geometry(height, width)
        ch, cw = self.config.crop
        zeros = torch.zeros(batch, dtype=torch.long)
        return PairParams(flip=zeros.bool(), crop_y=zeros + (ph - ch) // 2,
                          crop_x=zeros + (pw - cw) // 2, aa_ops=[], erase=zeros.bool(),
                          erase_box=torch.zeros(batch, 4, dtype=torch.long), erase_seed=zeros)

    def center(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`apply` with :meth:`center_params`: pairs (B, 2, T, C, H, W) or single
        clips (B, T, C, H, W) in, normalised crops of the same layout out."""
        single = torch.is_tensor(x) and x.dim() == 5
        x = x.unsqueeze(1) if single else x
        _check_batch(x)
        out = self.apply(x, self.center_params(x.shape[0], x.shape[-2], x.shape[-1]))
        return out.squeeze(1) if single else out

    # ---------------------------------------------------------------- apply

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _check_batch(x)
        params = self.make_params(x.shape[0], x.shape[-2], x.shape[-1], generator)
        return self.apply(x, params)

    def apply(self, x: torch.Tensor, params: PairParams) -> torch.Tensor:
        """Apply drawn parameters to x (B, 2, T, C, H, W): pure, batched, on x's device."""
        _check_batch(x)
        cfg = self.config
        b, m, t, c, h, w = x.shape
        dev = x.device
        per_pair = m * t
        imgs = x.reshape(b * per_pair, c, h, w)
        if imgs.dtype != torch.uint8:  # float 0..1 -> the recipe's uint8 pictures
            imgs = aa._quantize(imgs.float() * 255.0).to(torch.uint8)

        def expand(v):  # one value per pair -> one per image
            return v.to(dev).repeat_interleave(per_pair, 0)

        rh, rw, ph, pw = self.geometry(h, w)
        if (rh, rw) != (h, w):
            imgs = _resize_uint8(imgs, rh, rw)
        if (ph, pw) != (rh, rw):  # PadIfNeeded, centred, reflect-101 (cv2's default)
            top, left = (ph - rh) // 2, (pw - rw) // 2
            imgs = imgs.index_select(2, _reflect101(torch.arange(ph, device=dev) - top, rh))
            imgs = imgs.index_select(3, _reflect101(torch.arange(pw, device=dev) - left, rw))
        # HorizontalFlip + RandomCrop: slices of the pair's images, converted to float
        # while copied. One small copy per pair beats a gather over every pixel.
        # Mirroring the crop instead of the image before cropping gives the same
        # distribution: crop offset x of the mirrored image is offset pw - cw - x here.
        ch, cw = cfg.crop
        out = torch.empty((len(imgs), c, ch, cw), dtype=torch.float32, device=dev)
        for pair, (y, x0, flip) in enumerate(zip(params.crop_y.tolist(), params.crop_x.tolist(),
                                                 params.flip.tolist())):
            crop = imgs[pair * per_pair:(pair + 1) * per_pair, :, y:y + ch, x0:x0 + cw]
            out[pair * per_pair:(pair + 1) * per_pair] = crop.flip(-1) if flip else crop
        imgs = out

        fill = torch.tensor(cfg.fill, dtype=imgs.dtype, device=dev)
        for ops in params.aa_ops:
            for name, (pairs, arg, bicubic) in ops.items():
                idx = (pairs.to(dev)[:, None] * per_pair + torch.arange(per_pair, device=dev)).flatten()
                kernel = aa.OPS[name][0]
                imgs[idx] = kernel(imgs[idx], expand(arg).to(imgs.dtype),
                                   fill=fill, bicubic=expand(bicubic))

        scale = torch.tensor([1 / (255.0 * sd) for sd in cfg.std], device=dev).view(1, c, 1, 1)
        shift = torch.tensor([mu / sd for mu, sd in zip(cfg.mean, cfg.std)],
                             device=dev).view(1, c, 1, 1)
        imgs = imgs.mul_(scale).sub_(shift)  # (x / 255 - mean) / std

        if params.erase.any():
            imgs = _erase(imgs, params, per_pair)
        return imgs.view(b, m, t, c, ch, cw)


def _reflect101(index: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect integer indices into [0, size) without repeating the edge (cv2 REFLECT_101)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index >= size, period - index, index)


def _resize_uint8(imgs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (half-pixel centres, no antialias: cv2's INTER_LINEAR) of uint8 images.

    On the CPU torch has a vectorised uint8 kernel for channels-last images, several
    times faster than converting to float. Elsewhere the same integer arithmetic is
    done with plain tensor ops (:func:`_resize_uint8_exact`), so a CUDA device stage
    gives exactly the CPU's pixels: a float resize rounds 15% of them a level apart,
    and Posterize, Solarize and Equalize turn such a level into tens of levels.
    """
    if imgs.device.type == "cpu":
        imgs = imgs.contiguous(memory_format=torch.channels_last)
        return F.interpolate(imgs, size=(height, width), mode="bilinear", align_corners=False,
                             antialias=False)
    return _resize_uint8_exact(imgs, height, width)


@functools.lru_cache(maxsize=64)
def _bilinear_taps(in_size: int, out_size: int, device: torch.device):
    """Torch's CPU uint8 bilinear taps for one axis (UpSampleKernel.cpp, antialias off),
    on ``device``: the two input indices per output index, their integer weights
    (out, 2) and the weights' precision. Cached, so a batch copies nothing to the GPU.

    Weights are computed in double, then scaled by 2**precision (the largest that keeps
    them in int16) and rounded; at the last input pixel both weights go to it.
    """
    real = ((torch.arange(out_size, dtype=torch.float64) + 0.5) * (in_size / out_size)
            - 0.5).clamp(min=0)
    first = real.float().floor().long().clamp(max=in_size - 1)  # torch floors in float32
    lam = (real - first).clamp(0, 1)
    inside = first + 1 < in_size
    weights = torch.stack([torch.where(inside, 1 - lam, 1.0), torch.where(inside, lam, 0.0)], 1)
    w_max = float(weights.max())
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    second = (first + 1).clamp(max=in_size - 1)
    weights = torch.floor(0.5 + weights * (1 << precision)).int()
    return first.to(device), second.to(device), weights.to(device), precision


def _resize_axis(x: torch.Tensor, dim: int, out_size: int) -> torch.Tensor:
    """One separable pass of :func:`_resize_uint8_exact` on int32 values 0..255."""
    first, second, weights, precision = _bilinear_taps(x.shape[dim], out_size, x.device)
    shape = [1] * x.dim()
    shape[dim] = out_size
    acc = (x.index_select(dim, first) * weights[:, 0].view(shape)
           + x.index_select(dim, second) * weights[:, 1].view(shape))
    return ((acc + (1 << (precision - 1))) >> precision).clamp_(0, 255)


def _resize_uint8_exact(imgs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Torch's CPU uint8 bilinear resize, pixel for pixel, on any device: int16-range
    weights in int32 arithmetic, the width first, each pass rounded to 0..255."""
    x = imgs.to(torch.int32)
    if x.shape[-1] != width:
        x = _resize_axis(x, x.dim() - 1, width)
    if x.shape[-2] != height:
        x = _resize_axis(x, x.dim() - 2, height)
    return x.to(torch.uint8)


def _check_batch(x):
    if not torch.is_tensor(x) or x.dim() != 6 or x.shape[1] not in (1, 2) or x.shape[3] != 3:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"x must be a tensor (B, 2, T, 3, H, W) or (B, 1, T, 3, H, W), got {shape}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"x must be uint8 (0..255) or float (0..1), got {x.dtype}")


def hash_normal(seed: torch.Tensor, shape: tuple, device) -> torch.Tensor:
    """N(0, 1) noise that is a pure function of (seed, position): the same on every device.

    A counter-based generator (lowbias32 integer hash + Box-Muller) in plain torch
    integer ops, so the erasing noise of a pair is identical on CPU and CUDA and for
    both members and every frame, without drawing full-size noise on the host.
    """
    n = int(torch.tensor(shape).prod())
    counter = torch.arange(2 * n, device=device, dtype=torch.int64)
    mask = 0xFFFFFFFF
    v = (counter[None] + seed.to(device, torch.int64)[:, None] * 0x9E3779B1) & mask
    v = v ^ (v >> 16)
    v = (v * 0x7FEB352D) & mask
    v = v ^ (v >> 15)
    v = (v * 0x846CA68B) & mask
    v = v ^ (v >> 16)
    u = (v.to(torch.float64) + 0.5) / 4294967296.0
    u1, u2 = u[:, :n], u[:, n:]
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
    return z.to(torch.float32).view(len(seed), *shape)


def _erase(imgs, params: PairParams, per_pair: int):
    """Random erasing: every image of an erased pair gets the pair's box and noise.

    The noise is drawn for the box only, from the pair's seed; erased pairs are few
    (p = 0.2), so a loop over them costs less than full-size noise for all.
    """
    c = imgs.shape[1]
    for pair in torch.nonzero(params.erase).flatten().tolist():
        top, left, bh, bw = params.erase_box[pair].tolist()
        noise = hash_normal(params.erase_seed[pair:pair + 1], (c, bh, bw), imgs.device)[0]
        first = pair * per_pair
        imgs[first:first + per_pair, :, top:top + bh, left:left + bw] = noise
    return imgs
