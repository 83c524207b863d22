#!/usr/bin/env bash
# Device-side runner for issue 19: builds the CUDA addon (cuda-addon.sh), re-gzips the carried
# Fashion-MNIST (.scratch/data-xz/fashion-mnist/*.xz), then runs the job lines of JOBFILE in
# parallel (one process each; "name|command", command run in the repository root with $NODE,
# $DATA and $PY set) and packs every job's stdout/stderr into $OUT/issue19-<JOBFILE>.tgz.
# Carry: .gpu (node.xz + headers), dist/src, .scratch (data-xz, ref = a checkout of
# Thesys-lab/learned-coded-computation for reference-peer.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
JOBS=$1
source scripts/experiments/cuda-addon.sh
xz -dc .gpu/node.xz > /tmp/node && chmod +x /tmp/node
export NODE=/tmp/node PY=python3 DATA=/tmp/data  # exported: each job runs in its own bash -c
mkdir -p /tmp/data/fashion-mnist
for f in .scratch/data-xz/fashion-mnist/*.xz; do xz -dc "$f" | gzip -1 > /tmp/data/fashion-mnist/$(basename "$f" .xz).gz & done; wait
mkdir -p build-cuda; build_cuda_addon build-cuda/coded_torch.node /tmp/addon-build || exit 3
export CODED_ADDON=$PWD/build-cuda/coded_torch.node CODED_NUM_THREADS=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader; echo "start $(date -u +%T)"
mkdir -p /tmp/res
while IFS='|' read -r name cmd; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  ( s=$(date +%s); timeout "${JOB_LIMIT:-480}" bash -c "$cmd" > /tmp/res/$name.out 2> /tmp/res/$name.err; echo "rc=$? wall=$(( $(date +%s) - s ))s" >> /tmp/res/$name.err ) &
done < "$JOBS"
wait
echo "end $(date -u +%T)"
for f in /tmp/res/*.out; do echo "== $f"; grep -h RESULT "$f" | tail -n 3; tail -n 1 "$f"; tail -n 1 "${f%.out}.err"; done
tar czf "$OUT/issue19-$(basename "$JOBS" .txt).tgz" -C /tmp/res .
