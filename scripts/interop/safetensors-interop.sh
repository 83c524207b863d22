#!/usr/bin/env bash
# Checks our safetensors reader/writer against the Python library, both ways:
#   TS writer -> safetensors.torch.load_file + safe_open().metadata()
#   safetensors.torch.save_file -> our parser
# Usage (repo root, after `npx tsc -p .`): [NODE=node] [PYTHON=python3] bash scripts/interop/safetensors-interop.sh
# Needs python torch + safetensors, and the addon (build/Release, or CODED_ADDON=path).
# Prints one summary line; exit 0 only if everything matches.
set -uo pipefail
cd "$(dirname "$0")/../.."
NODE=${NODE:-node}
PYTHON=${PYTHON:-python3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "safetensors interop: FAIL: ${1:-see the error above}"; exit 1; }
[ -f dist/src/index.js ] || fail "dist/src/index.js is missing: run npx tsc -p . first"

ts_write=$("$NODE" scripts/interop/write-sample.mjs write "$dir/ts.safetensors" "$dir/ts.json") || fail "$ts_write"

py=$("$PYTHON" - "$dir" <<'PY'
import json, sys
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

d = sys.argv[1]
DT = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8, "BOOL": torch.bool}

def fail(msg):
    print(msg)
    sys.exit(1)

def same(a, b):  # dtype, shape and values exactly, NaN matching NaN
    return a.dtype == b.dtype and a.shape == b.shape and bool(((a == b) | ((a != a) & (b != b))).all())

# (b) the file our TS writer made
exp = json.load(open(f"{d}/ts.json"))
got = load_file(f"{d}/ts.safetensors")
if set(got) != set(exp["tensors"]):
    fail(f"names {sorted(got)} != {sorted(exp['tensors'])}")
for name, e in exp["tensors"].items():
    want = torch.tensor(e["values"], dtype=DT[e["dtype"]]).reshape(e["shape"])
    if not same(got[name], want):
        fail(f"{name}: python read {got[name].dtype} {list(got[name].shape)} {got[name].tolist()}, expected {want.dtype} {e['shape']} {want.tolist()}")
with safe_open(f"{d}/ts.safetensors", framework="pt") as f:
    if f.metadata() != exp["metadata"]:
        fail(f"metadata {f.metadata()!r} != {exp['metadata']!r}")

# (c) a file from Python for our parser, with the values it holds as JSON
out = {
    "f32": torch.arange(12, dtype=torch.float32).reshape(3, 4) / 7 - 0.5,
    "f64": torch.tensor([3.141592653589793, -1e-300, 1e300], dtype=torch.float64),
    "i32": torch.tensor([[-2**31, 2**31 - 1], [0, -7]], dtype=torch.int32),
    "i64": torch.tensor([-2**63, 2**63 - 1, 2**53 + 1], dtype=torch.int64),
    "u8": torch.arange(256, dtype=torch.uint8).reshape(16, 16),
    "mask": torch.tensor([True, False, True]),
    "scalar": torch.tensor(7.25),
    "empty": torch.zeros(0, 4),
    "layer.0.wéight": torch.tensor([[0.1], [-0.2]], dtype=torch.float64),
}
meta = {"format": "pt", "source": "python ✓"}
save_file(out, f"{d}/py.safetensors", metadata=meta)
ST = {v: k for k, v in DT.items()}
expected = {"metadata": meta, "tensors": {
    n: {"dtype": ST[t.dtype], "shape": list(t.shape),
        "values": [str(v) if t.dtype == torch.int64 else v for v in t.flatten().tolist()]}
    for n, t in out.items()}}
json.dump(expected, open(f"{d}/py.json", "w"), allow_nan=False)
print(f"Python read {len(got)} TS tensors + metadata ok, wrote {len(out)}")
PY
) || fail "python: ${py:-see the error above}"

ts_read=$("$NODE" scripts/interop/write-sample.mjs check "$dir/py.safetensors" "$dir/py.json") || fail "$ts_read"

echo "safetensors interop: OK ($ts_write; $py; $ts_read)"
