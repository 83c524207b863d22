#!/usr/bin/env bash
# ParM's latency experiment with real network interference on the lent GPU machine, as measured
# in the eighth session (docs/RESULTS.md): every instance in its own network namespace behind a
# 1000 Mbit link (GSO, byte-sized queues), 4 bulk transfers of 128-256 MB at a time between
# random instances, 3 frontend processes for k = 2 (4 base + 2 parity each: the tenth session's
# planner put the 4-frontend runs' tail on frontends with 3 base and 1-2 parity instances; 4
# frontends until e7cdab3), decode deadline and hedge 15 ms, parity after 5 ms,
# coded vs equal resources vs equal resources with hedging, slow-query log from 100 ms.
#
# Run ON the device machine (one `run` call per run, carry ["dist", ".gpu", ".netlab"]):
#
#   scripts/experiments/parm-gpu-network.sh k2 SEED     30000 queries per mode, 3 frontends (~380 s)
#   scripts/experiments/parm-gpu-network.sh k3 SEED     k = 3: 12 base + 4 parity vs 16, 9000 queries (~140 s)
#   scripts/experiments/parm-gpu-network.sh k4 SEED     k = 4: 12 base + 3 parity vs 15, 3 frontends (~140 s)
#
# Extra arguments after SEED are appended to the bench options as plain words (the last one
# wins; parm-gpu-series.sh splits them on spaces, so no quoted values with spaces). Results:
# $OUT/summary.md and $OUT/series.tar.gz (see parm-gpu-series.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
kind=${1:-}
seed=${2:-1}
shift 2 2>/dev/null || shift $#
common="--seed $seed --rounds 3 --warmup 300 --probe 100 --slow-prob 0 --deadline 15 --hedge 15 --parity-delay 5 --slow-log 100 --modes coded,equal-resources,equal-resources-hedged --network 1000:4:128:256,gso"
case $kind in
  k2) opts="$common --queries 30000 --frontends 3" ;;
  k3) opts="$common --queries 9000 --frontends 4 --base 12 --parity 4 --k 3" ;;
  k4) opts="$common --queries 9000 --frontends 3 --base 12 --parity 3 --k 4" ;;
  *)
    echo "usage: $0 k2|k3|k4 [SEED] [more bench options]" >&2
    exit 2
    ;;
esac
exec scripts/experiments/parm-gpu-series.sh "$kind-net-s$seed" "$opts $*"
