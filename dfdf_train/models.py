"""The recipe's three models on timm's EfficientNet (docs/recipe.md "Models").

``large_crop`` and ``re`` are frame models: ``tf_efficientnet_b7`` with one logit.
``sequence`` is the same network with a temporal convolution in every block that
has an expansion convolution (51 of B7's 55): the 1x1 expansion becomes a Conv3d
with kernel (3, 1, 1), each temporal tap initialised to the 2-D weight / 3. The taps
sum to the 2-D weight, so training starts from the frame model: on a clip of
identical frames, frames far enough from the clip's zero-padded ends (one frame per
temporal layer) get exactly the frame model's output.
``small_*`` variants use ``tf_efficientnet_b0`` through the same code, for tests and
the demo. Weights come only from a local file unless the user names a hub download.
"""
from __future__ import annotations

import os
from typing import Optional

import timm
import torch
from timm.models._efficientnet_blocks import InvertedResidual
from torch import nn

from . import recipes

BACKBONES = {"b7": "tf_efficientnet_b7", "b0": "tf_efficientnet_b0"}
HUB_TAG = "ns_jft_in1k"  # Noisy Student weights, as the recipe used


class TemporalConv(nn.Module):
    """A 1x1 convolution over (B*T, C, H, W) that also mixes each frame with its two
    neighbours in time: Conv3d (3, 1, 1), zero padding at the clip's ends."""

    def __init__(self, conv2d: nn.Conv2d, clip: "_ClipLength"):
        super().__init__()
        self.clip = clip
        self.conv = nn.Conv3d(conv2d.in_channels, conv2d.out_channels, (3, 1, 1),
                              padding=(1, 0, 0), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(conv2d.weight.unsqueeze(2).repeat(1, 1, 3, 1, 1) / 3)

    def forward(self, x):
        t = self.clip.length
        bt, c, h, w = x.shape
        x = x.view(bt // t, t, c, h, w).transpose(1, 2)          # (B, C, T, H, W)
        x = self.conv(x)
        return x.transpose(1, 2).reshape(bt, -1, h, w)


class _ClipLength:
    """The T of the batch being run, shared by every TemporalConv of one model."""

    length = 1


class SequenceModel(nn.Module):
    """(B, T, 3, H, W) -> one logit per frame (B, T); no temporal pooling."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.clip = _ClipLength()
        self.backbone = backbone
        self.temporal_blocks = 0
        for block in (b for stage in backbone.blocks for b in stage):
            if isinstance(block, InvertedResidual):
                block.conv_pw = TemporalConv(block.conv_pw, self.clip)
                self.temporal_blocks += 1

    def forward(self, x):
        if x.dim() != 5:
            raise ValueError(f"the sequence model takes (B, T, 3, H, W), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        self.clip.length = t
        return self.backbone(x.flatten(0, 1)).view(b, t)


class FrameModel(nn.Module):
    """(B, 3, H, W) -> one logit per image (B,)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x).squeeze(1)


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last for every 2-D convolution; the sequence model's Conv3d weights are
    5-D, which ``model.to(memory_format=torch.channels_last)`` refuses."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)
    return model


def build_model(name: str, pretrained: Optional[str] = None, *, size: str = "b7",
                network: Optional[str] = None) -> nn.Module:
    """One of the recipe's models: ``name`` an entry of :data:`dfdf_train.recipes.RECIPES`
    (its ``network`` says which; ``network`` given instead, e.g. from a checkpoint's own
    entry, wins), ``size`` "b7" (the recipe) or "b0".

    ``pretrained``: None (random init), a local file (a timm/PyTorch state dict, .pth/.pt,
    or .safetensors of tf_efficientnet_b7.ns_jft_in1k; the classifier is replaced), or
    ``"hub"`` to download the Noisy Student weights through timm (the only download).
    """
    network = network or recipes.get(name, "name").network
    if size not in BACKBONES:
        raise ValueError(f"size must be one of {sorted(BACKBONES)}, got {size!r}")
    arch = BACKBONES[size]
    hub = pretrained == "hub"
    backbone = timm.create_model(f"{arch}.{HUB_TAG}" if hub and size == "b7" else arch,
                                 pretrained=hub, num_classes=1)
    if pretrained is not None and not hub:
        load_backbone_weights(backbone, pretrained)
    # timm initialises a classifier uniformly in +-1/sqrt(outputs): with one output
    # that is +-1 per feature, and B7's 2560 pooled features start the logits at 10-20
    # (measured in train mode) and the first losses in the tens. N(0, 0.1) starts them
    # of order 1. Measured on B0 from scratch (tests' carphone pairs, 100 iterations):
    # validation log-loss 0.64 with 0.1, 0.69 with 0.01 (too little gradient reaches
    # the backbone), 0.69 with timm's init.
    head = backbone.get_classifier()
    nn.init.normal_(head.weight, std=0.1)
    nn.init.zeros_(head.bias)
    return SequenceModel(backbone) if network == "sequence" else FrameModel(backbone)


def load_backbone_weights(backbone: nn.Module, path: str) -> None:
    """Load a local ImageNet checkpoint into ``backbone``, all but the classifier."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"pretrained weights {path!r} not found. Get tf_efficientnet_b7.ns_jft_in1k "
            "(e.g. huggingface.co/timm/tf_efficientnet_b7.ns_jft_in1k, model.safetensors) "
            "and pass its path, or pass pretrained='hub' to let timm download it")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    own = {k: v for k, v in backbone.state_dict().items() if not k.startswith("classifier.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not fit {type(backbone).__name__}: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong)} of another shape (e.g. {wrong[:3]}); is it a checkpoint of the "
            "same EfficientNet size?")
    backbone.load_state_dict(state, strict=False)
