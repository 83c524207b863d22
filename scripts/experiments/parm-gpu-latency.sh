#!/usr/bin/env bash
# ParM's latency experiment at its own scale, on the lent GPU machine: ResNet-18 (torchvision's
# ImageNet architecture, random weights) on 3x224x224 inputs, 1000 classes, batch 1, every
# instance a `coded serve instance --device cuda` process sharing the one GPU; 12 base + 6
# parity instances, addition code k=2, against Equal-Resources (18 base instances), Poisson
# 270 queries/s, through `coded bench serve`.
#
# Run ON the device machine, in the repository root (one `run` call, carry: ["dist", ".gpu"]):
#
#   scripts/experiments/parm-gpu-latency.sh [coded bench serve options...]
#
# The options are appended to the defaults below and override them (the last one wins), e.g.
#   ... --base 12 --parity 4 --k 3         k=3 (ParM: 12 base + 4 parity vs 16 replicas)
#   ... --base 12 --parity 3 --k 4         k=4
#   ... --modes coded,equal-resources,none --queries 20000
# Defaults: --model random:resnet18:3x224x224:1000 --device cuda --base 12 --parity 6 --k 2
#           --code addition --modes coded,equal-resources --rate 270 --out RESULTS
# Env: MPS=1 (default: start CUDA MPS when the machine has it, so the instances' kernels share
#      the GPU instead of time-slicing contexts; MPS=0: without), PREFLIGHT_INSTANCES=1 (before
#      the benchmark, time closed-loop batch-1 requests on that many instances at once, a comma
#      list such as 1,18, with GPU memory per process; 0: skip), RESULTS_DIR (default $OUT when
#      set, else runs/parm-gpu-latency), SAMPLE_S=5 (GPU utilisation/memory sampling period).
# Results (8 files, within what a `run` call brings back from $OUT): serve.json, serve.md,
# latency-cdf.svg/png, latency-percentiles.svg/png (coded bench serve), run.log (everything
# printed, timestamped), gpu.csv (samples: utilisation, memory, instance processes).
#
# Measured on the lent H200 (16 cores; torch 2.11.0+cu130; frontend and bench as of 22b82ee):
# the CUDA addon builds in ~25 s; 18 instances listen ~4 s after they are started, 788 MiB of
# GPU memory each (14.2 GiB together); one instance serves a batch-1 request in 7.5 ms p50
# closed loop (its forward in-process: 1.5 ms; the rest is moving the 602 KB input), 18 at
# once in 27 ms p50, ~630 requests/s together, GPU ~30% busy, with or without MPS. The full
# default run at 3000 queries per mode overloaded the serving path (GPU 15-28% busy, load
# average ~3.5 of 16 cores: a single process, most likely the frontend, is the limit):
# coded p50 536 ms, equal-resources p50 59 ms. Find the knee with lower --rate first.
#
# Prepare here first: `npx tsc -p tsconfig.json` (dist/) and scripts/experiments/prepare-gpu-carry.sh
# (.gpu/: node binary, N-API headers, production node_modules).
set -uo pipefail
cd "$(dirname "$0")/../.."
W=/tmp/parm-gpu
mkdir -p $W /tmp/nodebin
RESULTS=${RESULTS_DIR:-${OUT:-runs/parm-gpu-latency}}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
exec > >(while IFS= read -r l; do printf '[%s] %s\n' "$(date -u +%T)" "$l"; done | tee -a "$RESULTS/run.log") 2>&1
logger_pid=$!
t_start=$(date +%s)

# --- node, dependencies, dist ---
[ -f dist/src/cli/main.js ] || { echo "no dist/: build with npx tsc -p tsconfig.json and carry dist"; exit 2; }
. scripts/experiments/carried-tools.sh
use_carried_node || exit 2
# --network on the GPU machine: its ip and tc come from .netlab (prepare-netlab-carry.sh)
use_carried_netlab
if [ ! -f node_modules/@grpc/grpc-js/package.json ]; then
  [ -f .gpu/node_modules.tar.xz ] || { echo "no node_modules and no .gpu/node_modules.tar.xz (prepare-gpu-carry.sh makes it)"; exit 2; }
  python3 -c 'import tarfile; tarfile.open(".gpu/node_modules.tar.xz").extractall(".")'
fi
echo "node $(node --version)"

# --- the CUDA addon, compiled with g++ against python3's torch ---
export CODED_ADDON=$W/coded_torch.node
. scripts/experiments/cuda-addon.sh
build_cuda_addon $CODED_ADDON $W/build || exit 3
node -e "import('./dist/src/engine/runtime.js').then(r => { console.log('libtorch', r.torchVersion(), 'cuda', r.cudaAvailable(), 'devices', r.cudaDeviceCount()); if (!r.cudaAvailable()) process.exit(3); })" || { echo "the addon sees no CUDA device"; exit 3; }
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader

# --- CUDA MPS (optional) ---
mps=off
if [ "${MPS:-1}" = 1 ]; then
  if ! command -v nvidia-cuda-mps-control >/dev/null; then
    echo "MPS: nvidia-cuda-mps-control is not on this machine; instances time-slice the GPU"
  else
    export CUDA_MPS_PIPE_DIRECTORY=${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps} CUDA_MPS_LOG_DIRECTORY=${CUDA_MPS_LOG_DIRECTORY:-/tmp/nvidia-log}
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d 2>/dev/null || true   # fails harmlessly when a daemon already runs
    sleep 1
    if python3 -c 'import torch; torch.zeros(1).cuda(); torch.cuda.synchronize()' 2>/dev/null; then mps=on; echo "MPS: on"; else
      echo quit | nvidia-cuda-mps-control; echo "MPS: started but a CUDA client failed under it; off"; fi
  fi
fi

# --- GPU sampling ---
SAMPLE_S=${SAMPLE_S:-5}
echo "time,gpu_util_pct,gpu_mem_used_mib,processes,processes_mem_mib,max_process_mem_mib,loadavg_1min,cpu_busy_pct,cpu_softirq_pct,busiest_core_pct" > "$RESULTS/gpu.csv"
# CPU over the last period, from /proc/stat: all cores busy, of it softirq (the lab's packet
# work), and the busiest single core (a saturated event loop or softirq core shows there)
cpu_since() { # $1: previous snapshot file; prints busy,softirq,busiest and updates the snapshot
  grep -E '^cpu[0-9]+ ' /proc/stat > "$1.new"
  if [ -s "$1" ]; then
    paste -d' ' "$1" "$1.new" | awk '{ n = (NF - 2) / 2; t0 = 0; t1 = 0; for (i = 2; i <= n + 1; i++) { t0 += $i; t1 += $(i + n + 1) }
      id = ($(5 + n + 1) + $(6 + n + 1)) - ($5 + $6); tot = t1 - t0; busy = tot - id; sq = $(8 + n + 1) - $8
      B += busy; S += sq; T += tot; if (tot > 0 && busy / tot > M) M = busy / tot }
      END { if (T > 0) printf "%.1f,%.1f,%.0f", 100 * B / T, 100 * S / T, 100 * M; else printf ",," }'
  else printf ",,"; fi
  mv "$1.new" "$1"
}
( snap=$W/cpu.snap; rm -f $snap
  while :; do
    g=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits | head -1 | tr -d ' ')
    a=$(nvidia-smi --query-compute-apps=used_memory --format=csv,noheader,nounits | awk '$1 ~ /^[0-9]+$/ {n++; s+=$1; if ($1>m) m=$1} END {printf "%d,%d,%d", n, s, m}')
    echo "$(date -u +%T),$g,$a,$(cut -d' ' -f1 /proc/loadavg),$(cpu_since $snap)" >> "$RESULTS/gpu.csv"
    sleep "$SAMPLE_S"
  done ) &
sampler=$!
cleanup() {
  kill $sampler 2>/dev/null
  if [ $mps = on ]; then
    echo "MPS servers that served this run (pids): $(echo get_server_list | nvidia-cuda-mps-control | tr '\n' ' ')"
    echo quit | nvidia-cuda-mps-control
  fi
  echo "results: $RESULTS (serve.json, serve.md, latency-*.svg/png; run.log; gpu.csv)"
  exec >&- 2>&-
  wait $logger_pid 2>/dev/null
}
trap cleanup EXIT

# --- the model (the last --model among the defaults and the options) ---
model=random:resnet18:3x224x224:1000
prev=
for a in "$@"; do
  [ "$prev" = --model ] && model=$a
  case $a in --model=*) model=${a#--model=} ;; esac
  prev=$a
done

# --- preflight: closed-loop service time of M instances at once ---
if [ "${PREFLIGHT_INSTANCES:-1}" != 0 ]; then
  echo "preflight: closed-loop batch-1 service time, $model on cuda, instances ${PREFLIGHT_INSTANCES:-1}"
  node scripts/experiments/instance-service-time.mjs --model "$model" --device cuda --instances "${PREFLIGHT_INSTANCES:-1}" --requests 300 --warmup 30 --gpu-memory || echo "preflight failed (rc $?)"
fi

# --- the benchmark ---
cmd=(bin/coded bench serve --model random:resnet18:3x224x224:1000 --device cuda --base 12 --parity 6 --k 2 --code addition
  --modes coded,equal-resources --rate 270 --out "$RESULTS" "$@")
echo "MPS $mps; running: ${cmd[*]}"
t0=$(date +%s)
"${cmd[@]}"
rc=$?
echo "coded bench serve: rc $rc after $(( $(date +%s) - t0 )) s (whole script $(( $(date +%s) - t_start )) s)"
exit $rc
