import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                          capture_output=True, text=True, check=True, cwd=ROOT).stdout


def test_recompress_pair_example(tmp_path):
    out = run_example("recompress_pair.py", "--seed", "3", "--out", str(tmp_path / "pair.png"))
    assert "params: CompressionParams(" in out
    face, border = (float(x.strip().split()[-1]) for x in
                    out.split("mean |real - fake|:")[1].split("\n")[0].split(","))
    assert face > 3 * border  # the fake differs in the face, the pair stays aligned elsewhere
    assert (tmp_path / "pair.png").stat().st_size > 1000


def test_augment_pair_example(tmp_path):
    for preset in ("tight_erase", "whole_face"):
        out = run_example("augment_pair.py", "--preset", preset, "--out", str(tmp_path / "g.png"))
        assert "x (4, 7, 3, 224, 192)" in out
        assert "the 4 copies of the pair got different draws: True" in out
        face, border = (float(x.strip().split()[-1]) for x in
                        out.split("mean |real - fake|:")[1].split("\n")[0].split(","))
        assert face > 3 * border
        assert (tmp_path / "g.png").stat().st_size > 10000


def test_train_loop_example():
    out = run_example("train_loop.py", "--steps", "5", "--mode", "sequence", "--workers", "2")
    assert "step 5: x (14, 3, 224, 192)" in out          # 2 sequences of 7 frames
    assert "skipped 0" in out
    loss = float(out.split("loss ")[-1].split()[0])
    assert 0.3 < loss < 1.5                               # soft-target BCE around log(2)


def test_custom_loader_example():
    out = run_example("custom_loader.py", "--workers", "2")
    assert "counts {'skipped': 0, 'pairs': 6, 'singles': 4}" in out
    rows = [line for line in out.splitlines() if line.startswith("1. x")]
    assert rows and all("16, 3, 224, 192)" in line for line in rows)       # 16-frame windows
    per_method = out.split("rows per method/member: ")[1].splitlines()[0]
    assert sum(map(int, re.findall(r": (\d+)", per_method))) == 2 * 6 + 4  # members apart
    assert "2. own device stage: x (" in out and "std 1.000" in out
    assert "3. own frame choice: x (16, 3, 224, 192)" in out


def test_datasets_example():
    out = run_example("datasets.py", "--preprocess")
    assert "1. layout detected: ffpp" in out
    assert "3. own source: 4 groups of 4 reals, each with [1] fake(s)" in out
    assert ("4. preprocess: 6 samples (2 single clips): {'pair': 4, 'single fake': 1, "
            "'single real': 1}; 2 skipped") in out
