#!/usr/bin/env bash
# device-side runner for issue 5: build the CUDA addon, then run learned-code trainings in parallel.
# usage: scripts/experiments/learned-gpu.sh DATA_DIR TIME_LIMIT_S RUNSPEC...   RUNSPEC = name:args-with-commas
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=$1; LIMIT=$2; shift 2
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
export PATH=/tmp:$PATH
LIBTORCH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
if [ -f .gpu/coded_torch.node ]; then mkdir -p build-cuda; cp .gpu/coded_torch.node build-cuda/; else
mkdir -p build-cuda
flags=(-O2 -std=c++17 -fPIC -fexceptions -frtti -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
  -D_GLIBCXX_USE_CXX11_ABI="$ABI" -Wno-deprecated-declarations -I.gpu/include/node -I.gpu/napi -I"$LIBTORCH/include" -I"$LIBTORCH/include/torch/csrc/api/include")
pids=(); for f in native/*.cc; do g++ "${flags[@]}" -c "$f" -o "build-cuda/$(basename "$f" .cc).o" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p"; done
g++ -shared -o build-cuda/coded_torch.node build-cuda/*.o -L"$LIBTORCH/lib" -Wl,-rpath,"$LIBTORCH/lib" -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -ltorch -ltorch_cpu -lc10 -Wl,--as-needed
cp build-cuda/coded_torch.node "$OUT/"
fi
export CODED_ADDON=$PWD/build-cuda/coded_torch.node CODED_NUM_THREADS=2
echo "built $(date -u +%T)"; nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p /tmp/res
for spec in "$@"; do
  name=${spec%%:*}; args=${spec#*:}; args=${args//,/ }
  ( s=$(date +%s); /tmp/node dist/src/cli/main.js train learned $args --device cuda --data-dir "$DATA" --time-limit "$LIMIT" --out /tmp/res/$name --json > /tmp/res/$name.json 2> /tmp/res/$name.log; echo "rc=$? wall=$(( $(date +%s) - s ))s" >> /tmp/res/$name.log ) &
done
wait
for f in /tmp/res/*.log; do echo "== $f"; grep -E '^epoch [0-9]+:' "$f" | tail -n 2; tail -n 2 "$f"; done
cd /tmp/res && tar czf "$OUT/results.tgz" *.json *.log $(ls -d */best.safetensors 2>/dev/null | while read f; do [ $(stat -c %s "$f") -lt 3000000 ] && echo "$f"; done)
ls -la "$OUT"
