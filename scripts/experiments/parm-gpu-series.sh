#!/usr/bin/env bash
# Several runs of ParM's latency experiment in one device call (one machine start), each through
# scripts/experiments/parm-gpu-latency.sh (set-up is done once and cached), results packed into
# at most two files under $OUT: summary.md (every run's serve.md, in order) and series.tar.gz
# (every run's serve.json, serve.md, run.log, gpu.csv and plots).
#
#   scripts/experiments/parm-gpu-series.sh NAME 'bench options' [NAME 'bench options' ...]
#
# e.g. k2 '--queries 30000 --modes coded,equal-resources,equal-resources-hedged'
#      k3 '--base 12 --parity 4 --k 3 --queries 10000 --modes coded,equal-resources'
# Env as parm-gpu-latency.sh (PREFLIGHT_INSTANCES defaults to 0 here). Network namespaces and tc
# are checked first: where they do not work, a run's `--network SPEC` is replaced by
# $NO_NET_OPTS (default: --slow-periods 300:15000:1:60) and the summary says so. Carry .netlab
# (scripts/experiments/prepare-netlab-carry.sh) for the real thing: the machine lacks ip and tc.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=/tmp/parm-series
rm -rf $S; mkdir -p $S
OUTDIR=${OUT:-runs/parm-gpu-series}
mkdir -p "$OUTDIR"
# the GPU machine has root and network namespaces but no iproute2: carry .netlab (prepare-netlab-carry.sh)
. scripts/experiments/carried-tools.sh
use_carried_netlab
netns=no
if command -v ip >/dev/null && command -v tc >/dev/null && ip netns add coded-netcheck 2>/dev/null; then ip netns del coded-netcheck; netns=yes; fi
echo "network namespaces and tc: $netns" | tee $S/netcheck.txt
rc_all=0
while [ $# -ge 2 ]; do
  name=$1; opts=$2; shift 2
  if [ $netns = no ] && [[ " $opts " == *" --network "* ]]; then
    opts=$(echo " $opts " | sed -E 's/ --network [^ ]+ / /g')" ${NO_NET_OPTS:---slow-periods 300:15000:1:60}"
    echo "no network namespaces here: --network replaced by ${NO_NET_OPTS:---slow-periods 300:15000:1:60}" | tee -a $S/netcheck.txt
  fi
  echo "=== $name: $opts"
  # shellcheck disable=SC2086
  RESULTS_DIR=$S/$name PREFLIGHT_INSTANCES=${PREFLIGHT_INSTANCES:-0} scripts/experiments/parm-gpu-latency.sh $opts
  rc=$?; [ $rc = 0 ] || rc_all=$rc
  { echo; echo "# $name (rc $rc; network namespaces: $netns): $opts"; cat $S/$name/serve.md 2>/dev/null || tail -20 $S/$name/run.log; } >> $S/summary.md
done
cp $S/summary.md "$OUTDIR/summary.md"
tar czf "$OUTDIR/series.tar.gz" -C $S .
echo "packed: $OUTDIR/summary.md, $OUTDIR/series.tar.gz"
exit $rc_all
