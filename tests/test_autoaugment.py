"""Each AutoAugment kernel against timm's own (PIL) implementation, on real frames."""
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import auto_augment as timm_aa

from dfaug import autoaugment as aa

FILL = (124, 116, 104)  # ImageNet mean as timm's img_mean


@pytest.fixture(scope="module")
def images(carphone):
    """Six real face frames, 144x176, and their timm-side PIL copies."""
    frames = carphone.frames[::20]
    return frames, torch.from_numpy(frames).permute(0, 3, 1, 2).float()


def timm_op(name, frame, magnitude, interpolation=Image.BILINEAR):
    """timm's op at a fixed magnitude (no noise), with a positive sign."""
    hparams = {"img_mean": FILL, "interpolation": interpolation, "translate_const": 86}
    level = timm_aa.LEVEL_TO_ARG[name]
    args = level(magnitude, hparams) if level is not None else ()
    if name in ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"):
        args = (abs(args[0]),)
    op = timm_aa.NAME_TO_OP[name]
    kwargs = {"fillcolor": FILL, "resample": interpolation}
    return np.asarray(op(Image.fromarray(frame), *args, **kwargs)), args


def ours(name, x, magnitude, bicubic=False):
    n = len(x)
    m = torch.full((n,), float(magnitude))
    arg = aa.magnitude_arg(name, m, torch.ones(n), translate_const=86)
    out = aa.OPS[name][0](x.clone(), arg, fill=torch.tensor(FILL, dtype=torch.float32),
                          bicubic=torch.full((n,), bicubic))
    return out.permute(0, 2, 3, 1).numpy(), arg


# exact: the same LUT arithmetic as PIL
EXACT = [("Invert", 4), ("Solarize", 3), ("Solarize", 8), ("PosterizeOriginal", 5),
         ("PosterizeOriginal", 7), ("AutoContrast", 5), ("Equalize", 2)]
# float blends: PIL truncates float32 results; ours agree to 1 level
BLENDS = [("Color", 0), ("Color", 8), ("Contrast", 8), ("Contrast", 2), ("Brightness", 6),
          ("Sharpness", 7), ("Sharpness", 1)]
GEOMETRIC = ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"]


def differences(images, name, magnitude, interpolation=Image.BILINEAR):
    """|ours - timm| per frame, after checking that both derive the same argument."""
    frames, x = images
    got, arg = ours(name, x, magnitude, bicubic=interpolation == Image.BICUBIC)
    out = []
    for frame, mine in zip(frames, got):
        expected, targs = timm_op(name, frame, magnitude, interpolation)
        if targs:
            assert float(arg[0]) == pytest.approx(float(targs[0]), rel=1e-6)
        out.append((frame, expected, np.abs(mine.astype(int) - expected)))
    return out


@pytest.mark.parametrize("name, magnitude", EXACT)
def test_lut_ops_match_timm_exactly(images, name, magnitude):
    for _, _, diff in differences(images, name, magnitude):
        assert diff.max() == 0, name


@pytest.mark.parametrize("name, magnitude", BLENDS)
def test_blend_ops_match_timm_within_one_level(images, name, magnitude):
    for _, _, diff in differences(images, name, magnitude):
        assert diff.max() <= 1, name
        assert (diff > 0).mean() < 0.05, name


@pytest.mark.parametrize("name", GEOMETRIC)
@pytest.mark.parametrize("interpolation", [Image.BILINEAR, Image.BICUBIC])
def test_geometric_ops_match_timm(images, name, interpolation):
    """Same geometry; torch's bicubic (a = -0.75) and edge handling differ slightly from PIL's."""
    bicubic = interpolation == Image.BICUBIC
    for frame, expected, diff in differences(images, name, 8, interpolation):
        assert diff.mean() < MEAN_TOL[bicubic], (name, diff.mean())
        assert np.percentile(diff, 99) <= P99_TOL[bicubic], (name, np.percentile(diff, 99))
        # and it moved the picture: far from the input
        assert np.abs(frame.astype(int) - expected).mean() > 4 * diff.mean() + 1


MEAN_TOL = {False: 0.7, True: 1.1}
P99_TOL = {False: 1, True: 10}


def test_original_policy_is_timms():
    policy = timm_aa.auto_augment_policy_original({"img_mean": FILL})
    ours_ = [[(name, p, m) for name, p, m in sub] for sub in aa.ORIGINAL_POLICY]
    theirs = [[(op.name, op.prob, op.magnitude) for op in sub] for sub in policy]
    assert ours_ == theirs
    assert len(aa.ORIGINAL_POLICY) == 25


@pytest.mark.parametrize("name", sorted(aa.OPS))
def test_level_to_argument_matches_timm(name):
    level = timm_aa.LEVEL_TO_ARG[name]
    for m in (0.0, 2.5, 5.0, 7.3, 10.0):
        mine = aa.magnitude_arg(name, torch.tensor([m]), torch.ones(1), 86)
        if level is None:
            continue
        theirs = level(m, {"translate_const": 86})
        assert abs(float(mine[0])) == pytest.approx(abs(float(theirs[0])), rel=1e-6, abs=1e-6)


def test_bad_policy():
    with pytest.raises(ValueError, match="name"):
        aa.check_policy([[("Blur", 0.5, 3)]])
    with pytest.raises(ValueError, match="probability"):
        aa.check_policy([[("Invert", 1.5, 3)]])
    with pytest.raises(ValueError, match="same number"):
        aa.check_policy([[("Invert", 0.5, 3)], [("Invert", 0.5, 3), ("Equalize", 0.5, 3)]])
    with pytest.raises(ValueError, match="non-empty"):
        aa.check_policy([])
