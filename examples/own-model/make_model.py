#!/usr/bin/python3
"""Makes the example's model files with Debian's python3-torch (/usr/bin/python3), only to
create them: the project never runs Python.

  /usr/bin/python3 examples/own-model/make_model.py [OUT_DIR]

Writes to OUT_DIR (default: this folder):
  small_cnn.pt          a small CNN (3x32x32 -> 10 logits) traced with torch.jit.trace
  small_cnn.onnx        the same network exported with torch.onnx.export (opset 13)
  reference.safetensors `inputs` [4,3,32,32] and PyTorch's `outputs` [4,10] for them
  data.safetensors      a tensors file for `coded train parity --data`: `inputs`
                        [128,3,32,32] (seeded per-channel levels + noise) and `labels` [128] (int64, F's argmax)
Seeded: the same torch version makes the same files.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes))

    def forward(self, x):
        return self.head(self.features(x))


def save_safetensors(path, tensors):
    """A minimal safetensors writer (no dependency beyond torch): header JSON, then the data."""
    names = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(13)
    model = SmallCNN()
    # non-trivial batch-norm statistics, so eval mode differs from train mode
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    model.eval()
    example = torch.randn(1, 3, 32, 32)
    traced = torch.jit.trace(model, example)
    traced.save(os.path.join(out, "small_cnn.pt"))

    inputs = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        outputs = traced(inputs)
    save_safetensors(os.path.join(out, "reference.safetensors"), {"inputs": inputs, "outputs": outputs})

    # per-channel levels plus a little noise: F's answers spread over several classes (on plain
    # noise this randomly initialised F answers one class almost always)
    data = (10 * torch.randn(128, 3, 1, 1)).expand(128, 3, 32, 32) + 0.1 * torch.randn(128, 3, 32, 32)
    with torch.no_grad():
        labels = traced(data).argmax(1)
    save_safetensors(os.path.join(out, "data.safetensors"), {"inputs": data, "labels": labels})

    try:
        torch.onnx.export(model, example, os.path.join(out, "small_cnn.onnx"), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
    except Exception as e:  # ONNX export needs torch's onnx support
        print(f"ONNX export failed: {e}", file=sys.stderr)
    print(json.dumps({"torch": torch.__version__, "out": out}))


if __name__ == "__main__":
    main()
