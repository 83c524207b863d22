#!/usr/bin/env bash
# Issue 6 experiments on the lent GPU: builds the addon against the machine's PyTorch
# libtorch (as scripts/gpu-check does), then trains the Lagrange (AICC) codes of seed 003's
# Tables 2 and 3 and the centralized baselines in parallel, resuming from last.safetensors
# when called again, for at most DEADLINE seconds. Logs and results are packed into $OUT.
# Needs dist/ (npx tsc -p .), .gpu/ (node binary + headers) and .gpu-data/ (datasets) carried.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEADLINE=${DEADLINE:-500}
EPOCHS=${EPOCHS:-20}
t_start=$(date +%s)
mkdir -p /tmp/nodebin
[ -x /tmp/nodebin/node ] || { xz -dc .gpu/node.xz > /tmp/nodebin/node && chmod +x /tmp/nodebin/node; }
export PATH=/tmp/nodebin:$PATH
if [ ! -f build-cuda/coded_torch.node ]; then
  LIBTORCH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
  ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  mkdir -p build-cuda
  flags=(-O2 -std=c++17 -fPIC -fexceptions -frtti -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
    -D_GLIBCXX_USE_CXX11_ABI="$ABI" -Wno-deprecated-declarations -I.gpu/include/node -I.gpu/napi -I"$LIBTORCH/include" -I"$LIBTORCH/include/torch/csrc/api/include")
  pids=()
  for f in native/*.cc; do g++ "${flags[@]}" -c "$f" -o "build-cuda/$(basename "$f" .cc).o" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  g++ -shared -o build-cuda/coded_torch.node build-cuda/*.o -L"$LIBTORCH/lib" -Wl,-rpath,"$LIBTORCH/lib" -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -ltorch -ltorch_cpu -lc10 -Wl,--as-needed
  echo "built addon in $(( $(date +%s) - t_start )) s"
fi
export CODED_ADDON=$PWD/build-cuda/coded_torch.node CODED_DATA=$PWD/.gpu-data
node -e "import('./dist/src/engine/runtime.js').then(r => console.log('libtorch', r.torchVersion(), 'cuda', r.cudaAvailable()))"
R=runs/issue6/gpu
mkdir -p $R
runs=(
  "t2-HB-mlp+mlp|--worker HB --encoder mlp --computation mlp --k 2 --n 3 --degree 1"
  "t2-HB-cnn+mlp|--worker HB --encoder cnn --computation mlp --k 2 --n 3 --degree 1"
  "t2-HB-mlp+cnn|--worker HB --encoder mlp --computation cnn --k 2 --n 3 --degree 1"
  "t2-HB-cnn+cnn|--worker HB --encoder cnn --computation cnn --k 2 --n 3 --degree 1"
  "t2-HS-mlp+mlp|--worker HS --encoder mlp --computation mlp --k 2 --n 3 --degree 1 --power 1"
  "t2-HS-cnn+mlp|--worker HS --encoder cnn --computation mlp --k 2 --n 3 --degree 1 --power 1"
  "t2-HS-mlp+cnn|--worker HS --encoder mlp --computation cnn --k 2 --n 3 --degree 1 --power 1"
  "t2-HS-cnn+cnn|--worker HS --encoder cnn --computation cnn --k 2 --n 3 --degree 1 --power 1"
  "base-mlp|--centralized mlp"
  "base-cnn|--centralized cnn"
  "t3-k2-HB-G2|--worker HB --encoder cnn --computation cnn --k 2 --n 4 --degree 2"
  "t3-k2-HS-G2P1|--worker HS --encoder cnn --computation cnn --k 2 --n 4 --degree 2 --power 1"
  "t3-k2-HS-G1P2|--worker HS --encoder cnn --computation cnn --k 2 --n 4 --degree 1 --power 2"
  "t3-k4-HB-G4|--worker HB --encoder cnn --computation cnn --k 4 --n 6 --degree 4"
  "t3-k4-HS-G4P1|--worker HS --encoder cnn --computation cnn --k 4 --n 6 --degree 4 --power 1"
  "t3-k4-HS-G2P2|--worker HS --encoder cnn --computation cnn --k 4 --n 6 --degree 2 --power 2"
  "t3-k4-HS-G1P4|--worker HS --encoder cnn --computation cnn --k 4 --n 6 --degree 1 --power 4"
)
pids=()
for spec in "${runs[@]}"; do
  tag=${spec%%|*}; opts=${spec#*|}
  [ -f $R/$tag.json ] && continue
  resume=""; [ -f $R/$tag/last.safetensors ] && resume="--resume"
  ( OMP_NUM_THREADS=1 timeout $(( DEADLINE - 45 - ($(date +%s) - t_start) )) node dist/src/cli/main.js train polynomial $opts --epochs $EPOCHS --device cuda --out $R/$tag $resume --json \
      > $R/$tag.json.tmp 2> $R/$tag.err; rc=$?; [ $rc -eq 0 ] && mv $R/$tag.json.tmp $R/$tag.json; echo "$tag rc=$rc" >> $R/status.txt
    # cut short by the deadline: test the best epoch so far (the run can be resumed later)
    if [ $rc -ne 0 ] && [ -f $R/$tag/best.safetensors ]; then
      OMP_NUM_THREADS=1 node dist/src/cli/main.js train polynomial $opts --epochs $EPOCHS --device cuda --out $R/$tag --eval-only --json > $R/$tag.partial.json 2>> $R/$tag.err
    fi ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for f in $R/*.err; do echo "== $f"; grep -a "^epoch [0-9]*:" "$f" | tail -2; grep -a -i "error\|coded train" "$f" | tail -2; done
for f in $R/*.json; do echo "$f: $(cat $f)"; done
if [ -n "${OUT:-}" ]; then tar czf "$OUT/issue6-gpu.tgz" $R/*.json $R/*.err $R/status.txt $R/*/log.jsonl 2>/dev/null; fi
