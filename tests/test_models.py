import copy

import pytest
import torch

from dfdf_train.models import (FrameModel, SequenceModel, TemporalConv, _ClipLength,
                               build_model, load_backbone_weights)


def test_b7_sequence_model_has_51_temporal_convs_initialised_to_a_third():
    torch.manual_seed(0)
    frame = build_model("large_crop")                       # tf_efficientnet_b7, random init
    seq = SequenceModel(copy.deepcopy(frame.backbone))
    assert seq.temporal_blocks == 51
    blocks = [b for stage in frame.backbone.blocks for b in stage]
    temporal = [b for stage in seq.backbone.blocks for b in stage]
    assert len(blocks) == 55
    n = 0
    for before, after in zip(blocks, temporal):
        if isinstance(getattr(after, "conv_pw", None), TemporalConv):
            w3 = after.conv_pw.conv.weight                  # (out, in, 3, 1, 1)
            assert w3.shape[2:] == (3, 1, 1) and after.conv_pw.conv.bias is None
            assert after.conv_pw.conv.padding == (1, 0, 0)
            for tap in range(3):
                assert torch.allclose(w3[:, :, tap], before.conv_pw.weight / 3)
            n += 1
    assert n == 51


def test_output_shapes():
    torch.manual_seed(0)
    for name in ("large_crop", "re"):
        model = build_model(name, size="b0").eval()
        with torch.no_grad():
            assert model(torch.randn(3, 3, 224, 192)).shape == (3,)
    seq = build_model("sequence", size="b0").eval()
    with torch.no_grad():
        assert seq(torch.randn(2, 7, 3, 224, 192)).shape == (2, 7)
    b7 = build_model("re").eval()
    with torch.no_grad():
        assert b7(torch.randn(1, 3, 224, 192)).shape == (1,)
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        seq(torch.randn(2, 3, 224, 192))


def test_temporal_conv_on_identical_frames():
    """Taps of w/3 sum to w: inner frames get the 2-D output, the zero-padded ends 2/3."""
    torch.manual_seed(1)
    conv2d = torch.nn.Conv2d(8, 16, 1, bias=False)
    clip_len = _ClipLength()
    clip_len.length = 5
    temporal = TemporalConv(conv2d, clip_len)
    x = torch.randn(1, 8, 6, 6).expand(5, 8, 6, 6).contiguous()     # (B*T, C, H, W), B = 1
    with torch.no_grad():
        expected, out = conv2d(x[:1]), temporal(x)
    assert torch.allclose(out[1:4], expected.expand(3, -1, -1, -1), atol=1e-6)
    assert torch.allclose(out[0], expected[0] * 2 / 3, atol=1e-6)
    assert torch.allclose(out[4], expected[0] * 2 / 3, atol=1e-6)


def test_static_clip_far_from_its_ends_sees_the_frame_model():
    """Each temporal layer reaches one frame further, so a frame at least as many
    frames from both ends as there are temporal layers (15 in B0) gets exactly the
    frame model's output on a clip of identical frames."""
    torch.manual_seed(1)
    frame = build_model("re", size="b0").eval()
    seq = SequenceModel(copy.deepcopy(frame.backbone)).eval()
    assert seq.temporal_blocks == 15
    image = torch.randn(1, 3, 64, 64)
    clip = image.unsqueeze(1).expand(1, 31, 3, 64, 64).contiguous()
    with torch.no_grad():
        expected = frame.backbone.forward_features(image)
        seq.clip.length = 31
        features = seq.backbone.forward_features(clip.flatten(0, 1))
    scale = expected.abs().mean()
    assert (features[15] - expected[0]).abs().mean() < 1e-4 * scale
    assert (features[0] - expected[0]).abs().mean() > 0.05 * scale


def test_local_weights_load_and_bad_files_raise(tmp_path):
    torch.manual_seed(2)
    source = build_model("re", size="b0")
    path = tmp_path / "b0.pth"
    torch.save(source.backbone.state_dict(), path)
    model = build_model("sequence", pretrained=str(path), size="b0")
    stem = model.backbone.conv_stem.weight
    assert torch.equal(stem, source.backbone.conv_stem.weight)
    with pytest.raises(FileNotFoundError, match="ns_jft_in1k"):
        build_model("re", pretrained=str(tmp_path / "missing.pth"), size="b0")
    with pytest.raises(ValueError, match="does not fit"):
        build_model("re", pretrained=str(path))             # b0 weights into b7
    with pytest.raises(ValueError, match="name must be one of"):
        build_model("huge")
    with pytest.raises(ValueError, match="size must be one of"):
        build_model("re", size="b9")
    assert isinstance(build_model("large_crop", size="b0"), FrameModel)
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone_weights(build_model("re").backbone, str(path))


def test_the_classifier_starts_with_logits_of_order_one(carphone):
    """timm's own init of a one-output head starts B7's logits at 10-20 (train mode)."""
    torch.manual_seed(0)
    model = build_model("re", size="b7").train()
    x = torch.from_numpy(carphone.frames[:8:2]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = model(torch.nn.functional.interpolate((x - 0.45) / 0.225, size=(224, 192)))
    assert logits.abs().max() < 4
