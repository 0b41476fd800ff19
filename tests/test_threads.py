"""Thread settings: the cores a process may use, and how commands divide them."""
import os
import subprocess
import sys

import pytest

from dfaug.threads import available_cores, split_cores
from dfdf_train.train import TrainConfig, cpu_plan


def test_available_cores_follow_the_cpu_affinity():
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from dfaug.threads import available_cores; print(available_cores())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_workers_and_the_main_process_share_the_cores():
    assert split_cores(4, None) == (2, 2)            # half each by default
    assert split_cores(4, 3) == (1, 3)
    assert split_cores(4, 0) == (4, 0)               # loading in-process: all to the model
    assert split_cores(1, None, default_workers=0) == (1, 0)
    assert split_cores(2, 5) == (1, 5)               # asked for: allowed, logged
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        split_cores(0, 1)
    with pytest.raises(ValueError, match="workers must be >= 0"):
        split_cores(2, -1)


@pytest.mark.parametrize("threads, workers, cuda, expected", [
    (2, None, False, (1, 1)),    # a 2-core CPU run: one worker, one training thread
    (1, None, False, (1, 0)),    # one core: load in-process
    (8, 0, False, (8, 0)),
    (16, None, True, (1, 15)),   # a GPU run: every core but the driving one loads
])
def test_train_divides_its_threads(threads, workers, cuda, expected):
    cfg = TrainConfig(data=["x"], out="y", threads=threads, workers=workers)
    assert cpu_plan(cfg, cuda) == expected


def test_train_shares_the_cores_among_a_nodes_torchrun_processes(monkeypatch):
    import dfaug.threads
    monkeypatch.setattr(dfaug.threads, "available_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert cpu_plan(TrainConfig(data=["x"], out="y"), cuda=False) == (2, 2)
    assert cpu_plan(TrainConfig(data=["x"], out="y"), cuda=True) == (1, 3)
