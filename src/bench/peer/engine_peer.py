#!/usr/bin/env python3
"""PyTorch peer of the engine benchmark (src/bench/engine.ts).

Runs the same workloads as our engine with the same shapes, models, losses, optimiser
and thread count, so that `coded bench engine` can compare the two in one invocation.

Standalone:  engine_peer.py [--json] [--device cpu|cuda] [--threads N] [--quick]
             [--workloads W1,W2,...]   runs every workload and prints a table or JSON.
Served:      engine_peer.py --serve [--device ...] [--threads N]
             reads one JSON command per line on stdin and answers one JSON line on stdout:
               {"cmd": "setup", "workload": "W1"}          -> {"ok": true, ...}
               {"cmd": "run", "iters": n, "cap": s|null}   -> {"ok": true, "steps": k, "seconds": t}
                 (throughput workloads: n steps timed together, stopping after cap seconds)
               {"cmd": "samples", "iters": n, "cap": s|null} -> {"ok": true, "ms": [...]}
                 (latency workloads: up to n runs, each timed)
               {"cmd": "teardown"} / {"cmd": "quit"}
             The benchmark driver uses this to interleave our measurements with PyTorch's.

Needs PyTorch: Debian `apt-get install python3-torch` (the same libtorch our addon links).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover - reported to the driver
    sys.stderr.write(
        f"engine_peer.py: cannot import torch ({e}). Install PyTorch for this interpreter "
        f"({sys.executable}), e.g. `apt-get install python3-torch` on Debian.\n")
    sys.exit(3)


# ---------------------------------------------------------------------------
# models (the same architectures as src/models)

class BaseMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc2 = nn.Linear(200, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def conv_encoder(k=2, hidden=40, out_channels=1, dilations=(1, 1, 2, 4, 8, 1)):
    layers, c = [], k
    for d in dilations:
        layers += [nn.Conv2d(c, hidden, 3, padding=d, dilation=d), nn.ReLU()]  # 'same' for 3x3
        c = hidden
    layers.append(nn.Conv2d(c, out_channels, 1))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):  # kuangliu/pytorch-cifar
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, num_blocks=(2, 2, 2, 2), in_channels=3, num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        planes = [64, 128, 256, 512]
        self.layers = nn.ModuleList()
        for s, n in enumerate(num_blocks):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(self.in_planes, planes[s], 2 if (i == 0 and s > 0) else 1))
                self.in_planes = planes[s]
            self.layers.append(nn.Sequential(*blocks))
        self.linear = nn.Linear(self.in_planes, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        for layer in self.layers:
            out = layer(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# ---------------------------------------------------------------------------
# workloads: setup() builds model and data; step() does one unit of work.

class Workload:
    items = 1
    latency = False

    def __init__(self, device):
        self.device = device


class W1(Workload):
    """Base-MLP train step, batch 64: forward, cross-entropy, backward, Adam step."""
    items = 64

    def setup(self):
        self.model = BaseMLP().to(self.device).train()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, weight_decay=1e-5)
        self.x = torch.randn(64, 784, device=self.device)
        self.y = torch.randint(0, 10, (64,), device=self.device)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()


class W2(Workload):
    """ConvEncoder (k=2, 40 hidden) forward + backward w.r.t. weights and input, batch 32."""
    items = 32

    def setup(self):
        self.model = conv_encoder().to(self.device).train()
        self.x = torch.randn(32, 2, 28, 28, device=self.device)
        self.target = torch.randn(32, 1, 28, 28, device=self.device)

    def step(self):
        for p in self.model.parameters():
            p.grad = None
        x = self.x.detach().requires_grad_(True)
        loss = F.mse_loss(self.model(x), self.target)
        loss.backward()


class W3(Workload):
    """ResNet-18 (CIFAR) forward + backward, batch 32, train mode."""
    items = 32

    def setup(self):
        self.model = ResNet().to(self.device).train()
        self.x = torch.randn(32, 3, 32, 32, device=self.device)
        self.y = torch.randint(0, 10, (32,), device=self.device)

    def step(self):
        for p in self.model.parameters():
            p.grad = None
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()


class W4(Workload):
    """ResNet-18 (CIFAR) batch-1 inference latency, eval mode, no grad."""
    latency = True

    def setup(self):
        self.model = ResNet().to(self.device).eval()
        self.x = torch.randn(1, 3, 32, 32, device=self.device)

    def step(self):
        with torch.no_grad():
            self.model(self.x)


WORKLOADS = {"W1": W1, "W2": W2, "W3": W3, "W4": W4}


class Runner:
    def __init__(self, device):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.w = None

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def setup(self, name):
        torch.manual_seed(0)
        self.w = WORKLOADS[name](self.device)
        self.w.setup()
        self.sync()

    def run(self, iters, cap=None):
        """(steps, seconds) for `iters` steps timed together, stopping early after `cap` seconds."""
        cap = float("inf") if cap is None else cap
        self.sync()
        t0 = time.perf_counter()
        steps = 0
        while steps < iters:
            self.w.step()
            steps += 1
            if time.perf_counter() - t0 > cap:
                break
        self.sync()
        return steps, time.perf_counter() - t0

    def samples(self, iters, cap=None):
        """Milliseconds of each of up to `iters` steps, stopping early after `cap` seconds."""
        cap = float("inf") if cap is None else cap
        start = time.perf_counter()
        out = []
        for _ in range(iters):
            if time.perf_counter() - start > cap:
                break
            self.sync()
            t0 = time.perf_counter()
            self.w.step()
            self.sync()
            out.append((time.perf_counter() - t0) * 1e3)
        return out

    def teardown(self):
        self.w = None


def configure(args):
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("engine_peer.py: --device cuda but this PyTorch has no CUDA device")
    return threads


def serve(args):
    threads = configure(args)
    runner = Runner(args.device)
    out = sys.stdout
    out.write(json.dumps({"ok": True, "hello": "engine_peer", "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "device": args.device,
                          "gpu": torch.cuda.get_device_name() if runner.cuda else None}) + "\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "setup":
                runner.setup(msg["workload"])
                reply = {"ok": True}
            elif cmd == "run":
                steps, seconds = runner.run(int(msg["iters"]), msg.get("cap"))
                reply = {"ok": True, "steps": steps, "seconds": seconds}
            elif cmd == "samples":
                reply = {"ok": True, "ms": runner.samples(int(msg["iters"]), msg.get("cap"))}
            elif cmd == "teardown":
                runner.teardown()
                reply = {"ok": True}
            elif cmd == "quit":
                out.write(json.dumps({"ok": True}) + "\n")
                out.flush()
                return
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        except Exception as e:  # report, keep serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    _ = threads


def standalone(args):
    threads = configure(args)
    runner = Runner(args.device)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    reps = 3 if args.quick else 7
    target = 0.2 if args.quick else 1.5
    results = []
    for name in names:
        runner.setup(name)
        w = runner.w
        runner.run(1)  # warm-up
        n = 1
        while True:  # calibration: double until a run lasts target / 8
            steps, seconds = runner.run(n)
            if seconds >= target / 8 or n >= 1024:
                break
            n *= 2
        iters = max(1, min(2000, round(target * steps / max(seconds, 1e-9))))
        runner.run(max(1, iters // 4), target)
        if w.latency:
            ms = []
            for _ in range(reps):
                ms += runner.samples(iters, 3 * target)
            results.append({"name": name, "pytorch": statistics.median(ms), "unit": "ms (median latency)"})
        else:
            rates = []
            for _ in range(reps):
                steps, seconds = runner.run(iters, 3 * target)
                rates.append(steps * w.items / seconds)
            results.append({"name": name, "pytorch": statistics.median(rates), "unit": "items/s"})
        runner.teardown()
    report = {"workloads": results, "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "threads": threads, "device": args.device, "torch": torch.__version__}
    if args.json:
        print(json.dumps(report))
    else:
        for r in results:
            print(f"{r['name']:4} {r['pytorch']:12.2f} {r['unit']}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--serve", action="store_true")
    p.add_argument("--workloads", default="W1,W2,W3,W4")
    args = p.parse_args()
    if args.serve:
        serve(args)
    else:
        standalone(args)


if __name__ == "__main__":
    main()
