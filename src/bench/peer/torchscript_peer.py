#!/usr/bin/python3
"""PyTorch side of the TorchScript benchmark (src/bench/torchscript.ts); Debian's
python3-torch, a benchmark peer only.

  torchscript_peer.py make DIR          trace the benchmark models into DIR/*.pt (and export DIR/*.onnx)
  torchscript_peer.py serve THREADS     read lines "FILE BATCH C H W N" (N forwards of a
                                        seed-0 randn input under no_grad), answer the seconds

The benchmark warms every case up on this side too before timing (untimed requests of about
--warmup-seconds: the JIT's profiling runs, allocator and caches) and interleaves the cases
(ABBA), so no case here is always the first one measured. Models and inputs are made once per
case and kept, so a timed request runs only the forwards.
"""
import json
import sys
import time

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (BasicBlock x [2,2,2,2], widths 64..512); CIFAR stem (3x3 conv, no max-pool)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes))

    def forward(self, x):
        return self.head(self.layers(self.stem(x)))


def make(out):
    torch.manual_seed(1)
    specs = {
        "resnet18": (ResNet18(), (3, 32, 32)),
        "base-mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 100), nn.ReLU(), nn.Linear(100, 10)), (1, 28, 28)),
    }
    for name, (m, shape) in specs.items():
        torch.jit.trace(m.eval(), torch.randn(1, *shape)).save(f"{out}/{name}.pt")
        torch.onnx.export(m.eval(), torch.randn(1, *shape), f"{out}/{name}.onnx", input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=13)
    print(json.dumps({"torch": torch.__version__}))


def serve(threads):
    torch.set_num_threads(threads)
    models = {}
    inputs = {}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        f, b, c, h, w, n = line.split()
        if f not in models:
            models[f] = torch.jit.load(f).eval()
        m = models[f]
        key = (b, c, h, w)
        if key not in inputs:
            torch.manual_seed(0)
            inputs[key] = torch.randn(int(b), int(c), int(h), int(w))
        x = inputs[key]
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(int(n)):
                m(x)
            dt = time.perf_counter() - t0
        print(json.dumps({"seconds": dt}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        serve(int(sys.argv[2]))
