#!/usr/bin/python3
"""Makes the files of examples/own-model/torchvision-resnet18.sh with Debian's python3-torch and
python3-torchvision (/usr/bin/python3), only to create them: the project never runs Python.

  /usr/bin/python3 examples/own-model/make_resnet18.py OUT_DIR [N [Q]]

Writes to OUT_DIR:
  resnet18.pt            torchvision.models.resnet18(weights=None, num_classes=10), torch.jit.trace
                         on a 3x64x64 input, saved
  resnet18.onnx          the same network, torch.onnx.export (opset 13, dynamic batch)
  data.safetensors       `inputs` [N,3,64,64] float32: the first N Fashion-MNIST test images,
                         resized 28x28 -> 64x64 (bilinear), normalised ((x/255 - 0.286)/0.353) and
                         repeated over 3 channels; `labels` [N] int64 (the true Fashion-MNIST classes)
  reference.safetensors  `inputs` [Q,3,64,64]: the next Q Fashion-MNIST test images (held out: not in
                         data.safetensors, so no parity model trains on them), prepared the same
                         way, and `outputs` [Q,10]: PyTorch's own forward of the model on them
  meta.json              versions, shapes, F's accuracy and its answers per class

The weights are torchvision's random initialisation (seeded), except the last layer (fc): with
random weights everywhere, ResNet-18 answers the same class for every input (measured: 256 of
256 images in class 5), so top-1 agreement of a reconstruction with F would say nothing. The fc
layer is therefore fitted (a linear probe: logistic regression on the random network's
512 pooled features of 2000 Fashion-MNIST *training* images, disjoint from the data file), which
gives a 10-class classifier whose answers spread over the classes. The convolutions stay random.
Seeded: the same torch version makes the same files.
"""
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

FMNIST = "/usr/share/datasets/fashion-mnist"
SIZE = 64


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


def idx(name, offset):
    with gzip.open(os.path.join(FMNIST, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def images(name, n):
    raw = idx(name, 16).reshape(-1, 28, 28)[:n]
    x = torch.from_numpy(raw.astype(np.float32) / 255.0)[:, None]
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return ((x - 0.286) / 0.353).expand(-1, 3, -1, -1).contiguous()


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    q = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(18)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()

    # linear probe: fit fc on the random network's pooled features of 2000 training images
    probe_x = images("train-images-idx3-ubyte.gz", 2000)
    probe_y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz", 8)[:2000].astype(np.int64))
    trunk = torch.nn.Sequential(*list(model.children())[:-1], torch.nn.Flatten())
    with torch.no_grad():
        feats = torch.cat([trunk(probe_x[i : i + 100]) for i in range(0, len(probe_x), 100)])
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    w = torch.zeros(10, 512, requires_grad=True)
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(((feats - mu) / sd) @ w.t() + b, probe_y) + 1e-3 * (w * w).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():  # fold the standardisation into fc: fc(f) = ((f - mu)/sd) W^T + b
        model.fc.weight.copy_(w / sd)
        model.fc.bias.copy_(b - (w * (mu / sd)).sum(1))
        probe_acc = float((model.fc(feats).argmax(1) == probe_y).float().mean())

    example = torch.randn(1, 3, SIZE, SIZE)
    traced = torch.jit.trace(model, example)
    traced.save(os.path.join(out, "resnet18.pt"))
    torch.onnx.export(model, example, os.path.join(out, "resnet18.onnx"), input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)

    x = images("t10k-images-idx3-ubyte.gz", n + q)
    y = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz", 8)[: n + q].astype(np.int64))
    with torch.no_grad():
        outputs = torch.cat([traced(x[i : i + 100]) for i in range(0, n + q, 100)])
    save_safetensors(os.path.join(out, "data.safetensors"), {"inputs": x[:n], "labels": y[:n]})
    save_safetensors(os.path.join(out, "reference.safetensors"), {"inputs": x[n:], "outputs": outputs[n:]})
    meta = {
        "torch": torch.__version__, "torchvision": torchvision.__version__, "input_shape": [3, SIZE, SIZE], "n": n,
        "parameters": sum(p.numel() for p in model.parameters()),
        "probe_train_accuracy": round(probe_acc, 4),
        "queries": q,
        "f_accuracy_on_data": round(float((outputs[:n].argmax(1) == y[:n]).float().mean()), 4),
        "f_answers_per_class": torch.bincount(outputs[:n].argmax(1), minlength=10).tolist(),
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
