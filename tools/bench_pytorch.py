#!/usr/bin/env python3
"""PyTorch's training step (forward, latitude-weighted MSE, backward, Adam) for PyRain's ConvLSTM on the
shapes `swiftrain bench step` uses, so the two can be timed side by side on the same CPU.

    pip install torch            # not needed by SwiftRain itself
    python3 tools/bench_pytorch.py --hidden 32 --head 16 --batch 32 --threads 2 --steps 5

prints the median seconds per step as JSON. --bf16 runs the step under torch.autocast("cpu", bfloat16), which
is what Lightning's `precision="bf16-mixed"` does; --compile wraps the model in torch.compile (inductor).
With --serve it warms up, prints one line
`ready <torch version> <threads> <backend>`, then runs one step for each `step` line read from standard
input and answers with its seconds: `bench step --pytorch` alternates its own steps with these.
"""
import argparse
import contextlib
import json
import statistics
import sys
import time

import torch

from pyrain_model import forecaster, latitude_weights


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in [("cin", 16), ("hidden", 32), ("head", 16), ("height", 32), ("width", 64),
                          ("batch", 32), ("seq", 5), ("threads", 2), ("steps", 5)]:
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--serve", action="store_true", help="answer `step` lines on standard input")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (Lightning's precision='bf16-mixed')")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (inductor)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = forecaster(a.cin, a.hidden, a.head, a.height, a.width, relu=True)
    opt = torch.optim.Adam(model.parameters(), lr=5e-5)
    x = torch.rand(a.batch, a.seq, a.cin, a.height, a.width) * 2 - 1
    target = torch.rand(a.batch, 1, a.height, a.width)
    w = latitude_weights(a.height)
    run = torch.compile(model) if a.compile else model
    # Lightning's bf16-mixed: autocast around forward and loss; the loss is taken in fp32.
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with amp():
            y = run(x)
        loss = (w * (y.float() - target) ** 2).mean()
        loss.backward()
        opt.step()
        return time.perf_counter() - t0

    step()  # warm-up: allocations, oneDNN primitive creation (and compilation)
    if a.compile:
        step()  # torch.compile may recompile once the parameters have gradients
    if a.serve:
        backend = "oneDNN" if torch.backends.mkldnn.is_available() else "native"
        backend += ",bf16-autocast" if a.bf16 else ""
        print(f"ready {torch.__version__} {torch.get_num_threads()} {backend}", flush=True)
        for line in sys.stdin:
            if line.strip() != "step":
                break
            print(f"{step():.6f}", flush=True)
        return
    times = [step() for _ in range(a.steps)]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch,
                      "hidden": a.hidden, "seconds_per_step": statistics.median(times),
                      "samples_per_second": a.batch / statistics.median(times)}))


if __name__ == "__main__":
    main()
