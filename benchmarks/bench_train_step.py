"""Images/s of one training step of each recipe model: fp32 against AMP + channels_last.

A step is what ``dfdf_train.train`` runs per iteration: forward, soft-target BCE,
backward, SGD Nesterov update. Inputs are the loader's shapes (frame models: 8 pairs
x 8 frames = 64 images of 224x192; sequence model: 8 sequences of 7 frames), random
values already on the device, so only the model is timed. Both settings run in the same
process, one after the other per model, with warm-up steps first; CUDA timings are
synchronised.

On a GPU the recipe's B7 is timed (fp32 is the recipe's setting). Without one, the B0
variant runs on the CPU with a smaller batch (AMP here is bf16 autocast on the CPU,
which is rarely faster: the CPU figure shows the code path works, not the GPU gain).

    python benchmarks/bench_train_step.py                # B7 on CUDA, B0 on CPU
    python benchmarks/bench_train_step.py --size b7 --pairs 8 --steps 20
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

from dfdf_train.models import build_model, to_channels_last

sys.path.insert(0, os.path.dirname(__file__))
from bench_recompress import cpu_model  # noqa: E402  (benchmarks/ is not a package)


def time_steps(name: str, size: str, pairs: int, image: tuple, device: torch.device,
               amp: bool, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = build_model(name, size=size).to(device)
    amp_dtype = None
    if amp:
        amp_dtype = torch.bfloat16 if device.type == "cpu" or torch.cuda.is_bf16_supported() \
            else torch.float16
        model = to_channels_last(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9, nesterov=True,
                          weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    if name == "sequence":
        x = torch.randn(pairs, 7, 3, *image, device=device)
        y = torch.rand(pairs, 7, device=device)
    else:
        x = torch.randn(pairs * 8, 3, *image, device=device)
        y = torch.rand(pairs * 8, device=device)
    if amp:
        x = (x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else
             x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape))
    model.train()

    def step():
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp):
            logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return y.numel() * steps / (time.perf_counter() - start)


def main():
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["large_crop", "re", "sequence"])
    ap.add_argument("--size", default="b7" if cuda else "b0", choices=["b7", "b0"])
    ap.add_argument("--pairs", type=int, default=8 if cuda else 1,
                    help="pairs per batch (x 8 images, or one 7-frame sequence each)")
    ap.add_argument("--image", type=int, nargs=2, default=[224, 192], metavar=("H", "W"))
    ap.add_argument("--steps", type=int, default=20 if cuda else 5)
    ap.add_argument("--warmup", type=int, default=5 if cuda else 2)
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    results = {}
    for name in args.models:
        fp32 = time_steps(name, args.size, args.pairs, tuple(args.image), device, False,
                          args.steps, args.warmup)
        amp = time_steps(name, args.size, args.pairs, tuple(args.image), device, True,
                         args.steps, args.warmup)
        results[name] = {"fp32_images_per_s": round(fp32, 2), "amp_cl_images_per_s": round(amp, 2),
                         "speedup": round(amp / fp32, 3)}
        print(f"{name}: fp32 {fp32:.1f} img/s, AMP+channels_last {amp:.1f} img/s "
              f"({amp / fp32:.2f}x)", file=sys.stderr)
    machine = {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)),
               "threads": torch.get_num_threads(), "torch": torch.__version__,
               "python": platform.python_version()}
    if device.type == "cuda":
        machine.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                       cudnn=torch.backends.cudnn.version())
    print(json.dumps({"bench": "train_step", "device": device.type, "size": args.size,
                      "pairs": args.pairs, "image": args.image, "steps": args.steps,
                      "results": results, "machine": machine}))


if __name__ == "__main__":
    main()
