"""AutoAugment's ImageNet policy as batched torch kernels.

The ops follow timm's ``auto_augment`` (PIL-based, one image at a time) value for
value: the same level-to-argument mappings, the same PIL arithmetic (integer luma,
truncating blends, histogram LUTs), on float tensors holding 0..255 values, rounded
back to integers after every op as PIL's uint8 images are. Each kernel takes a batch
of images (N, C, H, W) and one argument per image, so one call serves every pair
that drew the op. Ops that depend on the image's own statistics (equalize,
autocontrast, contrast) compute them per image.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LEVEL_MAX = 10.0

# timm's auto_augment_policy_original: (op, probability, magnitude) pairs.
ORIGINAL_POLICY = (
    (("PosterizeOriginal", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
    (("PosterizeOriginal", 0.6, 7), ("PosterizeOriginal", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)),
    (("PosterizeOriginal", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, 8), ("PosterizeOriginal", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)),
    (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)


# ------------------------------------------------------------ level -> argument
# (magnitude in [0, 10], sign in {-1, +1}, translate_const) -> the op's argument.
# These are timm's _*_level_to_arg functions; posterize and solarize truncate as
# Python's int() does.

def _rotate_arg(m, sign, _t):
    return m / LEVEL_MAX * 30.0 * sign


def _shear_arg(m, sign, _t):
    return m / LEVEL_MAX * 0.3 * sign


def _translate_abs_arg(m, sign, translate_const):
    return m / LEVEL_MAX * float(translate_const) * sign


def _enhance_arg(m, _sign, _t):
    return m / LEVEL_MAX * 1.8 + 0.1


def _posterize_original_arg(m, _sign, _t):
    return torch.floor(m / LEVEL_MAX * 4) + 4


def _solarize_arg(m, _sign, _t):
    return torch.clamp(torch.floor(m / LEVEL_MAX * 256), max=256)


def _no_arg(m, _sign, _t):
    return torch.zeros_like(m)


# ------------------------------------------------------------ helpers


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer in 0..255, as PIL stores its results."""
    return torch.clamp(torch.floor(x + 0.5), 0, 255)


def _truncate(x: torch.Tensor) -> torch.Tensor:
    """PIL's blend: clip to 0..255, then truncate to an integer."""
    return torch.floor(torch.clamp(x, 0, 255))


def _luma(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, on integer values."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    return torch.floor((r * 19595 + g * 38470 + b * 7471 + 32768) / 65536).unsqueeze(1)


def _blend(degenerate: torch.Tensor, image: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _truncate(degenerate + factor.view(-1, 1, 1, 1) * (image - degenerate))


def _apply_lut(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) holding integers 0..255; lut (N, C, 256)."""
    n, c, h, w = x.shape
    idx = x.reshape(n, c, h * w).long()
    return torch.gather(lut.to(x.dtype), 2, idx).reshape(n, c, h, w)


def _histograms(x: torch.Tensor) -> torch.Tensor:
    """Per image and channel histogram of integer values: (N, C, 256), int64."""
    n, c, h, w = x.shape
    offsets = (torch.arange(n * c, device=x.device) * 256).view(n, c, 1)
    flat = (x.reshape(n, c, h * w).long() + offsets).reshape(-1)
    return torch.bincount(flat, minlength=n * c * 256).view(n, c, 256)


# ------------------------------------------------------------ ops (N, C, H, W), values 0..255


def invert(x, _arg, **_):
    return 255.0 - x


def solarize(x, thresh, **_):
    return torch.where(x < thresh.view(-1, 1, 1, 1), x, 255.0 - x)


def posterize(x, bits, **_):
    step = torch.pow(2.0, 8 - bits).view(-1, 1, 1, 1)
    return torch.floor(x / step) * step


def autocontrast(x, _arg, **_):
    """PIL ImageOps.autocontrast(cutoff=0), per image and channel."""
    flat = x.flatten(2)
    lo, hi = flat.amin(2).double(), flat.amax(2).double()  # (N, C)
    scale = 255.0 / torch.clamp(hi - lo, min=1)
    levels = torch.arange(256, device=x.device, dtype=torch.float64)
    lut = torch.clamp(torch.trunc(levels * scale[..., None] - (lo * scale)[..., None]), 0, 255)
    identity = (hi <= lo)[..., None]
    lut = torch.where(identity, levels.expand_as(lut), lut)
    return _apply_lut(x, lut)


def equalize(x, _arg, **_):
    """PIL ImageOps.equalize, per image and channel."""
    hist = _histograms(x)                                     # (N, C, 256)
    nonzero = hist > 0
    # count in the last non-empty bin
    last = 255 - torch.argmax(nonzero.flip(-1).long(), dim=-1, keepdim=True)
    step = (hist.sum(-1, keepdim=True) - torch.gather(hist, -1, last)) // 255
    cum_before = torch.cumsum(hist, -1) - hist
    safe = torch.clamp(step, min=1)
    lut = (step // 2 + cum_before) // safe
    identity = (step == 0) | (nonzero.sum(-1, keepdim=True) <= 1)
    levels = torch.arange(256, device=x.device).expand_as(lut)
    lut = torch.where(identity, levels, torch.clamp(lut, max=255))
    return _apply_lut(x, lut)


def color(x, factor, **_):
    return _blend(_luma(x).expand_as(x), x, factor)


def contrast(x, factor, **_):
    mean = torch.floor(_luma(x).mean(dim=(1, 2, 3), keepdim=True) + 0.5)
    return _blend(mean.expand_as(x), x, factor)


def brightness(x, factor, **_):
    return _blend(torch.zeros_like(x), x, factor)


# PIL's SMOOTH filter is this kernel / 13. The convolution takes the integer weights,
# so that its sums of integer pixels are exact whatever the arithmetic (GPUs may run
# float32 convolutions in TF32, which rounds 1/13), and divides once afterwards: the
# same result on every device.
_SMOOTH = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]])


def sharpness(x, factor, **_):
    """Blend with PIL's SMOOTH filter; PIL leaves the outermost pixels unfiltered."""
    c = x.shape[1]
    kernel = _SMOOTH.to(x.device, x.dtype).expand(c, 1, 3, 3)
    smooth = _quantize(F.conv2d(x, kernel, groups=c) / 13.0)
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return _blend(degenerate, x, factor)


def _affine(x, matrix, fill, bicubic):
    """Sample x at PIL-style affine input coordinates.

    ``matrix`` (N, 2, 3) maps output pixel-centre coordinates (x + 0.5, y + 0.5) to
    input coordinates, as PIL's Image.transform(AFFINE) data does. Points that fall
    outside the image take ``fill`` (C,), per image interpolation mode.
    """
    n, c, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype) + 0.5,
                            torch.arange(w, device=x.device, dtype=x.dtype) + 0.5, indexing="ij")
    ones = torch.ones_like(xs)
    coords = torch.stack([xs, ys, ones], -1).view(1, h * w, 3)
    src = coords @ matrix.to(x.dtype).transpose(1, 2)                # (N, HW, 2) input x, y
    grid = torch.stack([src[..., 0] * (2.0 / w) - 1, src[..., 1] * (2.0 / h) - 1], -1)
    grid = grid.view(n, h, w, 2)
    fill = fill.to(x.dtype).view(1, c, 1, 1)
    out = torch.empty_like(x)
    for mode, sel in (("bicubic", bicubic), ("bilinear", ~bicubic)):
        if sel.any():
            shifted = x[sel] - fill  # zero padding of (x - fill) = padding with fill
            out[sel] = F.grid_sample(shifted, grid[sel], mode=mode, padding_mode="zeros",
                                     align_corners=False) + fill
    return _quantize(out)


def rotate(x, degrees, *, fill, bicubic, **_):
    """PIL Image.rotate(degrees) about the centre, counter-clockwise."""
    n, _, h, w = x.shape
    a = -torch.deg2rad(degrees.to(torch.float64))
    cos, sin = torch.cos(a), torch.sin(a)
    cx, cy = w / 2.0, h / 2.0
    matrix = torch.stack([
        torch.stack([cos, sin, cx - cos * cx - sin * cy], -1),
        torch.stack([-sin, cos, cy + sin * cx - cos * cy], -1)], 1)
    return _affine(x, matrix, fill, bicubic)


def _matrix(n, device, a=1.0, b=0.0, c=0.0, d=0.0, e=1.0, f=0.0):
    def full(v):
        return v if torch.is_tensor(v) else torch.full((n,), float(v), device=device)
    return torch.stack([torch.stack([full(a), full(b), full(c)], -1),
                        torch.stack([full(d), full(e), full(f)], -1)], 1)


def shear_x(x, factor, *, fill, bicubic, **_):
    return _affine(x, _matrix(len(x), x.device, b=factor), fill, bicubic)


def shear_y(x, factor, *, fill, bicubic, **_):
    return _affine(x, _matrix(len(x), x.device, d=factor), fill, bicubic)


def translate_x(x, pixels, *, fill, bicubic, **_):
    return _affine(x, _matrix(len(x), x.device, c=pixels), fill, bicubic)


def translate_y(x, pixels, *, fill, bicubic, **_):
    return _affine(x, _matrix(len(x), x.device, f=pixels), fill, bicubic)


# name -> (kernel, level-to-argument, uses the interpolation draw)
OPS: dict[str, tuple[Callable, Callable, bool]] = {
    "AutoContrast": (autocontrast, _no_arg, False),
    "Equalize": (equalize, _no_arg, False),
    "Invert": (invert, _no_arg, False),
    "Rotate": (rotate, _rotate_arg, True),
    "PosterizeOriginal": (posterize, _posterize_original_arg, False),
    "Solarize": (solarize, _solarize_arg, False),
    "Color": (color, _enhance_arg, False),
    "Contrast": (contrast, _enhance_arg, False),
    "Brightness": (brightness, _enhance_arg, False),
    "Sharpness": (sharpness, _enhance_arg, False),
    "ShearX": (shear_x, _shear_arg, True),
    "ShearY": (shear_y, _shear_arg, True),
    "TranslateX": (translate_x, _translate_abs_arg, True),
    "TranslateY": (translate_y, _translate_abs_arg, True),
}


def check_policy(policy) -> tuple:
    """Validate a policy: sub-policies of (op name, probability, magnitude)."""
    policy = tuple(tuple(tuple(op) for op in sub) for sub in policy)
    if not policy or any(len(sub) == 0 for sub in policy):
        raise ValueError("policy must be a non-empty list of non-empty sub-policies")
    lengths = {len(sub) for sub in policy}
    if len(lengths) != 1:
        raise ValueError(f"every sub-policy must have the same number of ops, got {sorted(lengths)}")
    for sub in policy:
        for op in sub:
            if len(op) != 3 or op[0] not in OPS:
                raise ValueError(f"policy ops must be (name, probability, magnitude) with name in "
                                 f"{sorted(OPS)}, got {op!r}")
            if not 0 <= op[1] <= 1 or not 0 <= op[2] <= LEVEL_MAX:
                raise ValueError(f"op {op!r}: probability must be in [0, 1], magnitude in [0, 10]")
    return policy


def magnitude_arg(name: str, magnitude: torch.Tensor, sign: torch.Tensor,
                  translate_const: float) -> torch.Tensor:
    """The op's argument from a (noisy, clipped) magnitude, as timm computes it."""
    return OPS[name][1](magnitude, sign, translate_const)


def clip_magnitude(m: torch.Tensor) -> torch.Tensor:
    return torch.clamp(m, 0.0, LEVEL_MAX)


__all__ = ["ORIGINAL_POLICY", "OPS", "check_policy", "magnitude_arg", "clip_magnitude"]
