"""Fingerprints of the recipe path's batches, to hold the loader to the batches it has
always given for the same seed (tests/test_loader_recipe.py).

The worker output (uint8 pairs after reading, re-encoding, picking frames and fitting)
is hashed: those bytes come from integer code and x264 with a fixed instruction set.
The device stage's output is floating point, whose last bits may differ between CPUs'
kernels, so it is fingerprinted to a tolerance: the soft targets and every row's mean,
which a single changed random draw moves far more than rounding does.
"""
import hashlib

import numpy as np
import torch

from dfaug import CompressionSampler, PairShardWriter
from dfaug.loader import PairDataset, PairLoader
from pairs import real_pairs

SEED = 7


def write_shards(folder) -> str:
    with PairShardWriter(str(folder / "pairs-%03d.tar"), max_pairs=2) as writer:
        for key, real, fake, meta in real_pairs(n_carphone=6, n_bikes=2):
            writer.write(key, real, fake, meta)
    return str(folder / "*.tar")


def worker_batches(shards, mode: str) -> list:
    """[(keys, sha1 of the uint8 pairs)] of one epoch, two workers, re-encoding on."""
    ds = PairDataset(shards, mode=mode, batch_size=3, size=(96, 80), seed=SEED,
                     compression=CompressionSampler(p_skip=0.25), augment=None)
    ds.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         collate_fn=lambda b: b)
    return [(list(b.keys), hashlib.sha1(b.data.pairs.numpy().tobytes()).hexdigest())
            for b in loader if b.data is not None]


def model_batches(shards, mode: str) -> list:
    """[(soft targets, each row's mean)] of one epoch through the CPU device stage."""
    preset = "tight" if mode == "sequence" else "tight_erase"
    loader = PairLoader(shards, augment=preset, mode=mode, batch_size=3, num_workers=0,
                        size=(96, 80), seed=SEED, device="cpu",
                        compression=CompressionSampler(p_skip=0.25))
    loader.set_epoch(1)
    out = []
    for x, y in loader:
        means = x.flatten(1).double().mean(1)
        out.append((np.round(y.numpy().astype(np.float64), 5).tolist(),
                    np.round(means.numpy(), 4).tolist()))
    return out


if __name__ == "__main__":  # print the fingerprints of the code as it is
    import pathlib
    import pprint
    import sys
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        shards = write_shards(pathlib.Path(d))
        result = {mode: {"workers": worker_batches(shards, mode), "model": model_batches(shards, mode)}
                  for mode in ("frame", "sequence")}
    pprint.pprint(result, stream=sys.stdout, width=100, compact=True)
