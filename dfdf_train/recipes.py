"""The recipe's models, each declared once (docs/recipe.md "Models", "Training").

An entry says everything a model of the recipe is: its network, how the loader feeds it
(mode, dfaug augmentation preset, input sizes, frames, mixup), how `predict` runs it,
and its training schedule. `train`, `predict`, `evaluate`, `demo` and the command line
all read :data:`RECIPES`; a checkpoint carries its entry (:meth:`Recipe.as_dict`), so
`predict` needs nothing else to run it. Adding a model to the recipe is one entry here
(and its test).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

NETWORKS = ("frame", "sequence")   # dfdf_train.models: one logit per image / per frame of a clip
PREDICTIONS = ("frames", "windows")


@dataclass(frozen=True)
class Schedule:
    """Training defaults: SGD with Nesterov momentum, the first ``warmup_iters``
    iterations on the classifier alone, then a linear decay to ``max_iters``."""

    optimizer: str = "sgd"
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    max_iters: int = 100_000
    batch_size: int = 8


@dataclass(frozen=True)
class Recipe:
    """One model of the recipe.

    ``network``: "frame" (EfficientNet, one logit per image) or "sequence" (a 3D
    convolution in every block, one logit per frame). ``mode``: the loader's
    ("frame": the recipe's 8 frames a clip as images; "sequence": 7-frame clips).
    ``augment``: the dfaug preset at ``image_size``; ``pads``: whether that view pads
    the whole face into the crop (so that other image sizes scale the padding rather
    than the resize). ``input_per_crop``: the loader's frame size against the model's
    crop (the recipe's 1.5x boxes brought to 288x224 for a 224x192 crop). ``mixup``:
    aligned-pair mixup with soft targets. ``prediction``: "frames" (every other frame
    of a face track, frame models taking turns) or "windows" (7-frame windows every
    14 frames).
    """

    name: str
    title: str
    network: str
    mode: str
    augment: str
    pads: bool = False
    image_size: tuple = (224, 192)
    input_per_crop: tuple = (288 / 224, 224 / 192)
    mixup: bool = True
    prediction: str = "frames"
    schedule: Schedule = field(default_factory=Schedule)

    def __post_init__(self):
        if self.network not in NETWORKS:
            raise ValueError(f"network must be one of {NETWORKS}, got {self.network!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")

    def loader_size(self, image_size=None, input_size=None) -> tuple:
        """The size the loader brings clips to for a model input of ``image_size``."""
        if input_size:
            return tuple(input_size)
        return tuple(round(s * r) for s, r in zip(image_size or self.image_size,
                                                  self.input_per_crop))

    def augment_for(self, image_size=None):
        """The dfaug PairAugment of this model's view, scaled to ``image_size``."""
        from dfaug import PairAugment
        h, w = image_size or self.image_size
        if (h, w) == tuple(self.image_size):
            return PairAugment(self.augment)
        extra = {"smallest_max_size": w, "pad_to": (h, w)} if self.pads \
            else {"smallest_max_size": h}
        return PairAugment(self.augment, crop=(h, w), translate_const=int(w * 0.45), **extra)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """An entry as a checkpoint saved it (unknown keys, from newer versions, are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown recipe settings {unknown}: a checkpoint of a newer "
                             "dfdf_train; upgrade to read it")
        values = dict(d)
        values["schedule"] = Schedule(**values.get("schedule", {}))
        for k in ("image_size", "input_per_crop"):
            if k in values:
                values[k] = tuple(values[k])
        return cls(**values)


RECIPES = {r.name: r for r in (
    Recipe("large_crop", "model 1: frames, the whole face box visible", network="frame",
           mode="frame", augment="whole_face", pads=True),
    Recipe("re", "model 2: frames, a tighter crop and random erasing", network="frame",
           mode="frame", augment="tight_erase"),
    Recipe("sequence", "model 3: 7-frame sequences, 3D convolutions in every block",
           network="sequence", mode="sequence", augment="tight", prediction="windows"),
)}


def get(name: str, argument: str = "recipe") -> Recipe:
    """The entry named ``name``, or a ValueError naming ``argument`` and the names."""
    if name not in RECIPES:
        raise ValueError(f"{argument} must be one of {sorted(RECIPES)}, got {name!r}")
    return RECIPES[name]
