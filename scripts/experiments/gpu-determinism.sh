#!/usr/bin/env bash
# Do GPU reruns of one seed give identical weights with --deterministic (and without it)?
# Trains each MODEL twice with --deterministic and twice without, same seed, on the GPU, and
# prints the SHA-256 of each best checkpoint's tensor data (the data_sha256 every checkpoint
# records). Run on the device from scripts/experiments/issue19-gpu.sh's environment, e.g. as a
# job line:  det|bash scripts/experiments/gpu-determinism.sh lenet5 resnet18
# Env: NODE (node binary), DATA (data dir with fashion-mnist/), EPOCHS (default 1).
set -uo pipefail
cd "$(dirname "$0")/../.."
NODE=${NODE:-node}
for model in "$@"; do
  for run in det-1 det-2 free-1 free-2; do
    flag=; [ "${run%-*}" = det ] && flag=--deterministic
    out=/tmp/gpu-determinism/$model-$run
    rm -rf "$out"; mkdir -p /tmp/gpu-determinism
    s=$(date +%s)
    "$NODE" dist/src/cli/main.js train base --model "$model" --epochs "${EPOCHS:-1}" --device cuda $flag --seed 1 \
      --data-dir "$DATA" --out "$out" --json > "$out.json" 2> "$out.err" || { echo "$model $run: failed"; tail -3 "$out.err"; continue; }
    digest=$("$NODE" -e "import('./dist/src/nn/safetensors.js').then(m => console.log(m.readSafetensorsMetadata('$out/best.safetensors').data_sha256))")
    echo "RESULT $model $run ${flag:-(not deterministic)} wall $(( $(date +%s) - s ))s weights sha256 $digest"
  done
done
