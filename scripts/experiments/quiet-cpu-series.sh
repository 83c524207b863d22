#!/usr/bin/env bash
# The serving bars that need a quiet 2-core machine, one after the other (run nothing else
# meanwhile): `coded bench serve` at 1, 2 and 5% stalls and with background transfers over
# rate-limited links, then `coded bench overload` and `coded bench stall`. Each writes its report
# under DIR (default bench-results/quiet-YYYYMMDD-HHMM); summary.txt gathers the ratio lines.
#
#   scripts/experiments/quiet-cpu-series.sh [DIR] [--only serve|network|overload|stall ...]
set -uo pipefail
cd "$(dirname "$0")/../.."
D=${1:-bench-results/quiet-$(date -u +%Y%m%d-%H%M)}
shift || true
only=" $* "
mkdir -p "$D"
want() { [ "$only" = "  " ] || [[ "$only" == *" --only $1 "* ]] || [[ "$only" == *" $1 "* ]]; }
S="$D/summary.txt"
echo "quiet series $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$S"
if want serve; then
  for p in 0.01 0.02 0.05; do
    bin/coded bench serve --rate 200 --queries 10000 --rounds 5 --slow-prob $p \
      --modes coded,equal-resources,equal-resources-hedged --out "$D/serve-$p" > "$D/serve-$p.log" 2>&1
    echo "== serve stalls $p (rc $?)" | tee -a "$S"; grep -E "^\| coded|^\| equal|Ratios|WARNING|other processes" "$D/serve-$p/serve.md" | cut -c1-400 | tee -a "$S"
  done
fi
if want network; then
  bin/coded bench serve --rate 200 --queries 10000 --rounds 5 --slow-prob 0 --network 1000:1:8:32 \
    --modes coded,equal-resources,equal-resources-hedged --out "$D/serve-network" > "$D/serve-network.log" 2>&1
  echo "== serve network 1000:1:8:32 (rc $?)" | tee -a "$S"; grep -E "^\| coded|^\| equal|Ratios|WARNING|transfers" "$D/serve-network/serve.md" | cut -c1-400 | tee -a "$S"
fi
if want overload; then
  bin/coded bench overload --mode equal-resources --latency const:200 --out "$D/overload" > "$D/overload.log" 2>&1
  echo "== overload ER const:200 (rc $?)" | tee -a "$S"; tail -25 "$D/overload.log" | tee -a "$S"
fi
if want stall; then
  bin/coded bench stall --out "$D/stall" > "$D/stall.log" 2>&1
  echo "== stall (rc $?)" | tee -a "$S"; tail -25 "$D/stall.log" | tee -a "$S"
fi
