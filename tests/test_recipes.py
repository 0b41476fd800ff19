"""The recipe registry: one entry declares a model; checkpoints carry their entry."""
import subprocess
import sys

import pytest
import torch

from dfdf_train import recipes
from dfdf_train.models import FrameModel, SequenceModel, build_model
from dfdf_train.predict import load_models, parse_models
from dfdf_train.recipes import RECIPES, Recipe
from dfdf_train.train import TrainConfig, train
from test_predict import checkpoints  # noqa: F401  (a fixture: three small trained models)
from test_train import shards, small  # noqa: F401  (fixtures and the small run's settings)


def test_the_entries_say_what_each_model_is():
    assert list(RECIPES) == ["large_crop", "re", "sequence"]
    assert {n: (r.network, r.mode, r.augment, r.prediction) for n, r in RECIPES.items()} == {
        "large_crop": ("frame", "frame", "whole_face", "frames"),
        "re": ("frame", "frame", "tight_erase", "frames"),
        "sequence": ("sequence", "sequence", "tight", "windows")}
    for r in RECIPES.values():  # the recipe's schedule and sizes
        assert (r.schedule.lr, r.schedule.batch_size, r.schedule.max_iters) == (0.005, 8, 100_000)
        assert r.loader_size() == (288, 224)
        assert r.augment_for().config.crop == (224, 192)
        assert Recipe.from_dict(r.as_dict()) == r
    cfg = TrainConfig(recipe="sequence")
    assert (cfg.lr, cfg.momentum, cfg.warmup_iters, cfg.optimizer) == (0.005, 0.9, 100, "sgd")
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipes.get("b7")


def test_a_fourth_model_is_one_entry(monkeypatch, shards, tmp_path):  # noqa: F811
    """Train, predict by the checkpoint alone, and the command line: nothing else edited."""
    extra = Recipe("tight_frames", "frames, the tighter crop, no erasing", network="frame",
                   mode="frame", augment="tight")
    monkeypatch.setitem(RECIPES, "tight_frames", extra)
    assert isinstance(build_model("tight_frames", size="b0"), FrameModel)
    out = tmp_path / "run"
    train(small(out, shards[0], recipe="tight_frames", max_iters=2, warmup_iters=0))
    state = torch.load(out / "last.pt", weights_only=False)
    assert state["recipe"] == extra.as_dict() and state["format"] == 2
    assert parse_models([str(out / "last.pt")]) == {"tight_frames": str(out / "last.pt")}
    loaded = load_models({"tight_frames": str(out / "last.pt")}, "cpu")["tight_frames"]
    assert loaded.recipe == extra and loaded.augment.config.p_erase == 0
    from dfdf_train.cli import build_parser
    args = build_parser().parse_args(["train", "--recipe", "tight_frames", "--data", "x",
                                      "--out", "o"])
    assert args.recipe == "tight_frames"


def test_a_checkpoint_needs_nothing_of_the_registry_or_of_train(checkpoints, monkeypatch):  # noqa: F811
    # its own entry builds the model even where this registry lacks it
    monkeypatch.delitem(RECIPES, "sequence")
    model = load_models({"sequence": checkpoints["sequence"]}, "cpu")["sequence"]
    assert isinstance(model.model, SequenceModel) and model.recipe.prediction == "windows"
    done = subprocess.run([sys.executable, "-c", "import sys, dfdf_train.predict, "
                           "dfdf_train.robustness; print('dfdf_train.train' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_older_checkpoints_load_by_name_or_say_what_to_do(checkpoints, tmp_path):  # noqa: F811
    state = torch.load(checkpoints["re"], weights_only=False)
    del state["recipe"], state["format"]  # as the settings-only checkpoints were saved
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert load_models({"re": str(old)}, "cpu")["re"].recipe == RECIPES["re"]
    state["config"]["recipe"] = "gone"
    torch.save(state, old)
    with pytest.raises(ValueError, match="holds no recipe entry .* train it again"):
        parse_models([str(old)])
