#!/usr/bin/env bash
# Issue 15's robustness check: the test suite on a fresh clone, RUNS times, each with two
# CPU-burning processes running beside it for the whole run.
# Usage: scripts/experiments/suite-beside-burners.sh DIR [RUNS=5] [REPO=this checkout]
# DIR gets the clone (DIR/clone), one log per run (DIR/run-N.log) and DIR/summary.txt
# (commit, then per run: exit status, tests / pass / fail / skipped, duration).
set -euo pipefail
dir=${1:?usage: suite-beside-burners.sh DIR [RUNS] [REPO]}
runs=${2:-5}
repo=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/clone"
git clone -q "$repo" "$dir/clone"
cd "$dir/clone"
commit=$(git rev-parse --short HEAD)
echo "commit $commit, $(nproc) cores, $(date -u +%FT%TZ)" > "$dir/summary.txt"
scripts/setup > "$dir/setup.log" 2>&1
burners=()
stop_burners() { for p in "${burners[@]}"; do kill "$p" 2>/dev/null || true; done; burners=(); }
trap stop_burners EXIT
for i in $(seq 1 "$runs"); do
  node -e 'for(;;){}' & burners+=($!)
  node -e 'for(;;){}' & burners+=($!)
  start=$(date +%s)
  set +e
  node scripts/run-tests.mjs > "$dir/run-$i.log" 2>&1
  rc=$?
  set -e
  stop_burners
  counts=$(grep -E '^ℹ (tests|pass|fail|skipped) ' "$dir/run-$i.log" | awk '{printf "%s %s ", $2, $3}')
  echo "run $i: exit $rc, ${counts}($(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$dir/summary.txt"
  grep -E '^✖' "$dir/run-$i.log" | head -20 >> "$dir/summary.txt" || true
done
