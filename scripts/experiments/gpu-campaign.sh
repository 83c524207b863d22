#!/usr/bin/env bash
# Runs a list of training jobs concurrently on the lent GPU machine, across several `run`
# calls of one lease (the jobs are started in their own process sessions, so they outlive the
# call that started them while the machine stays held).
#
#   gpu-campaign.sh start JOBFILE [WAIT_S]   build the CUDA addon, start every job, then wait
#   gpu-campaign.sh wait WAIT_S              wait (progress every minute), pack results into $OUT
#   gpu-campaign.sh finish                   stop what still runs, evaluate cut jobs, pack results
#
# JOBFILE: one job per line, `name|coded arguments|arguments for evaluation if cut` (the third
# field optional, e.g. `train polynomial ... --eval-only`); `#` starts a comment. Every job gets
# `--device cuda --out /tmp/campaign/runs/NAME --json` appended. Needs dist/, .gpu/ (node
# binary + headers) and .gpu-data/ or .gpu-data-xz/ carried (the tree + dist + .gpu + both
# xz datasets exceed the 64 MiB carry limit: carry only the datasets the jobs use, e.g.
# ".gpu-data-xz/fashion-mnist"). PACK=paths (space-separated, relative to
# /tmp/campaign/runs) are packed too, split into 15 MB parts.
set -uo pipefail
cd "$(dirname "$0")/../.."
C=/tmp/campaign
mkdir -p $C/runs /tmp/nodebin
. scripts/experiments/carried-tools.sh
use_carried_node || exit 2
# datasets: .gpu-data/<name>/*.gz, or .gpu-data-xz/<name>/*.xz (smaller to carry; re-gzipped here)
if [ -d .gpu-data-xz ] && [ ! -d /tmp/data ]; then
  python3 - <<'PY'
import glob, gzip, lzma, os
for f in glob.glob('.gpu-data-xz/*/*.xz'):
    out = os.path.join('/tmp/data', os.path.basename(os.path.dirname(f)), os.path.basename(f)[:-3] + '.gz')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with gzip.open(out + '.tmp', 'wb', compresslevel=1) as g: g.write(lzma.open(f).read())
    os.rename(out + '.tmp', out)
PY
fi
DATA=$PWD/.gpu-data; [ -d /tmp/data ] && DATA=/tmp/data
export PATH=/tmp/nodebin:$PATH CODED_DATA=$DATA CODED_NUM_THREADS=1 OMP_NUM_THREADS=1
export CODED_ADDON=$C/coded_torch.node

. scripts/experiments/cuda-addon.sh
build() { build_cuda_addon $CODED_ADDON $C/build; }

# CUDA MPS lets the jobs' kernels share the GPU instead of time-slicing contexts; optional.
start_mps() {
  command -v nvidia-cuda-mps-control >/dev/null || { echo "no MPS on this machine"; return; }
  nvidia-cuda-mps-control -d 2>&1 && sleep 1
  if python3 -c 'import torch; torch.zeros(1).cuda(); torch.cuda.synchronize()' 2>/dev/null; then echo "MPS on"; else
    echo quit | nvidia-cuda-mps-control; echo "MPS failed: off"; fi
}

launch() {
  local name=$1 args=$2
  [ -e $C/$name.started ] && return
  touch $C/$name.started
  setsid bash -c "s=\$(date +%s); node dist/src/cli/main.js $args --device cuda --out $C/runs/$name --json > $C/$name.json.tmp 2> $C/$name.err;
    rc=\$?; [ \$rc -eq 0 ] && mv $C/$name.json.tmp $C/$name.json; echo \"rc=\$rc wall=\$(( \$(date +%s) - s ))s\" > $C/$name.done" < /dev/null > /dev/null 2>&1 &
}

report() {
  for f in $C/*.started; do
    n=$(basename "$f" .started)
    st=running; [ -f $C/$n.done ] && st=$(cat $C/$n.done)
    last=$(tr '\r' '\n' < $C/$n.err 2>/dev/null | grep -a -E '^epoch [0-9]+' | tail -1 | cut -c1-150)
    echo "$n: $st | $last"
  done
}

pack() {
  [ -n "${OUT:-}" ] || return
  (cd $C && tar czf "$OUT/results.tgz" *.json *.err *.done jobs.txt runs/*/log.jsonl runs/*/test-eval.json runs/*/test-eval.md 2>/dev/null)
  for p in ${PACK:-}; do
    [ -f $C/runs/$p ] && split -b 15M -d "$C/runs/$p" "$OUT/$(echo "$p" | tr '/' '_').part"
  done
  ls -la "$OUT"
}

wait_for() {
  local until=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt $until ]; do
    local running=0
    for f in $C/*.started; do n=$(basename "$f" .started); [ -f $C/$n.done ] || running=$((running + 1)); done
    [ $running -eq 0 ] && break
    sleep 60; echo "--- $(date -u +%T), $running running"; report | grep running || true
  done
  echo "=== $(date -u +%T)"; report; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
}

case ${1:-} in
  start)
    build; start_mps
    cp "$2" $C/jobs.txt
    grep -v '^\s*#' "$2" | grep -v '^\s*$' | while IFS='|' read -r name args eval; do launch "$name" "$args"; done
    sleep 5; report
    wait_for "${3:-60}"; pack ;;
  wait) wait_for "$2"; pack ;;
  finish)
    grep -v '^\s*#' $C/jobs.txt | grep -v '^\s*$' | while IFS='|' read -r name args eval; do
      [ -f $C/$name.done ] && continue
      pkill -f -- "--out $C/runs/$name " ; sleep 2
      echo "cut: $name" > $C/$name.done
      [ -n "$eval" ] && node dist/src/cli/main.js $eval --device cuda --out $C/runs/$name --json > $C/$name.partial.json 2>> $C/$name.err
    done
    report; pack ;;
  *) echo "usage: $0 start JOBFILE [WAIT_S] | wait WAIT_S | finish" >&2; exit 2 ;;
esac
