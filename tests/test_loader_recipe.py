"""The recipe path gives, for the same seed, the batches it has always given.

tests/recipe_batches.json holds fingerprints of one epoch of frame-mode and
sequence-mode batches (re-encoding on, two workers; and the CPU device stage),
recorded from the loader as it was before its stages and seams were opened up;
tests/recipe_batches.py says how each fingerprint is taken and why floating-point
outputs are compared to a tolerance.
"""
import json
import os

import numpy as np
import pytest

from recipe_batches import model_batches, worker_batches, write_shards

GOLDEN = os.path.join(os.path.dirname(__file__), "recipe_batches.json")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("recipe_shards"))


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN) as f:
        return json.load(f)


@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_worker_batches_are_the_recorded_ones(shards, golden, mode):
    got = worker_batches(shards, mode)
    assert [[list(k), h] for k, h in got] == golden[mode]["workers"]


@pytest.mark.parametrize("mode", ["frame", "sequence"])
def test_model_batches_are_the_recorded_ones(shards, golden, mode):
    got = model_batches(shards, mode)
    want = golden[mode]["model"]
    assert len(got) == len(want)
    for (y, means), (y0, means0) in zip(got, want):
        np.testing.assert_allclose(y, y0, atol=2e-5)
        np.testing.assert_allclose(means, means0, atol=2e-3)
