"""The README's main command, `python -m dfdf_train demo`, in its quick setting."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_quick_demo_runs_every_step(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "dfdf_train", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nquick demo: {figures}")
    assert figures["train_pairs"] > 0 and figures["videos"] == 4
    assert 0 < figures["log_loss"] < 5
    assert set(figures["per_model"]) >= {"model:large_crop", "model:re", "model:sequence"}
    for recipe in ("large_crop", "re", "sequence"):
        assert os.path.isfile(out / "runs" / recipe / "last.pt")
    assert "constant 0.5" in done.stdout
    # it ends with a small robustness table, plot included
    assert list(figures["robustness_auc"]) == ["original", "h264:23:1", "h264:40:1"]
    assert "| h264:40:1 | h264 | 40 |" in done.stdout
    assert os.path.getsize(out / "robustness" / "robustness.png") > 10000
    # progress was shown throughout
    for step in ("1/5", "2/5", "3/5", "4/5", "5/5", "train sequence:", "predict:", "robustness:"):
        assert step in done.stderr
