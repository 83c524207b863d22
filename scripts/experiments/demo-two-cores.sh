#!/usr/bin/env bash
# The main demo (`coded demo serve`) on two cores of the lent GPU machine's host, pinned with
# taskset, while its other cores stay idle: a quiet 2-core machine, for the demo's latency bars
# when the development machine is shared. The instances run on the CPU (the CUDA libtorch's CPU
# path). One device call, carry ["dist", ".gpu"] (.gpu/data/fashion-mnist/t10k-* copied from
# /usr/share/datasets/fashion-mnist first):
#
#   scripts/experiments/demo-two-cores.sh NAME 'demo options' [NAME 'demo options' ...]
#
# e.g. correlated-s1 '--seed 1 --slow-prob 0 --slow-periods 300:15000:1:60'
# COMMAND=bench runs `coded bench serve OPTIONS` instead of the demo (same pinning, same report);
# CORES=0-15 runs unpinned on every core. With --network, carry .netlab too (the machine has no ip/tc).
# Results under $OUT: summary.md (every run's text report) and NAME.json (each run's --json report).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUTDIR=${OUT:-runs/demo-two-cores}
mkdir -p "$OUTDIR" /tmp/nodebin
[ -f .gpu/data/fashion-mnist/t10k-images-idx3-ubyte.gz ] || { echo "no .gpu/data/fashion-mnist/t10k-*: copy them from /usr/share/datasets/fashion-mnist"; exit 2; }
. scripts/experiments/carried-tools.sh
use_carried_node || exit 2
# network interference (--network): the GPU machine has no iproute2; carry .netlab/ too
use_carried_netlab
[ -f node_modules/@grpc/grpc-js/package.json ] || python3 -c 'import tarfile; tarfile.open(".gpu/node_modules.tar.xz").extractall(".")'
export CODED_ADDON=/tmp/parm-gpu/coded_torch.node
. scripts/experiments/cuda-addon.sh
build_cuda_addon $CODED_ADDON /tmp/parm-gpu/build || exit 3
cores=${CORES:-0,1}
echo "node $(node --version); pinned to cores $cores of $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUTDIR/summary.md"
rc_all=0
while [ $# -ge 2 ]; do
  name=$1; opts=$2; shift 2
  echo "=== $name: $opts ($(date -u +%T))"
  # shellcheck disable=SC2086
  if [ "${COMMAND:-demo}" = bench ]; then cmd=(bin/coded bench serve --out /tmp/bench-$name); else cmd=(bin/coded demo serve --data-dir .gpu/data); fi
  taskset -c "$cores" "${cmd[@]}" $opts --json > "$OUTDIR/$name.json" 2> "$OUTDIR/$name.log"
  rc=$?; [ $rc = 0 ] || rc_all=$rc
  { echo; echo "# $name (rc $rc): $opts"; node -e "
    const r = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
    for (const m of r.modes) console.log('-', m.mode, 'p50/p99/p99.9', m.latencyMs.p50.toFixed(2), m.latencyMs.p99.toFixed(1), m.latencyMs.p999.toFixed(1), 'req/q', m.requestsPerQuery.toFixed(2), 'lost', m.lost, 'dup', m.duplicates, m.tail ? 'tail p99.9: ' + JSON.stringify(m.tail.p999) + ' p99: ' + JSON.stringify(m.tail.p99) : '');
    console.log('- ratios', JSON.stringify(r.comparison ?? r.comparisons), 'other CPU', r.otherCpuShare);
    for (const m of r.modes) for (const q of (m.slowQueries?.slowest ?? []).slice(0, 8)) console.log('  slow', m.mode, q.latencyMs, q.outcome + (q.byCopy ? ' (copy)' : ''), 'group', q.groupSize, 'denied so far', q.copiesDeniedSoFar, q.tasks.map((t) => t.role + '@' + t.instance + ' ' + t.createdMs + '/' + t.startedMs + '/' + t.finishedMs + (t.cancelled ? 'x' : '')).join(' | '));
  " "$OUTDIR/$name.json" 2>&1 || tail -5 "$OUTDIR/$name.log"; } | tee -a "$OUTDIR/summary.md"
done
exit $rc_all
