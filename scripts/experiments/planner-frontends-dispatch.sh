#!/usr/bin/env bash
# The planner's tables of docs/RESULTS.md, tenth session: how coded serving and hedging depend on
# how many frontend processes share the instances (--frontends) and on how a frontend picks an
# instance (--dispatch). Every number comes from `coded plan`, i.e. the frontend's own policy and
# pools on a virtual clock, so reruns give the same numbers on any machine (~4 min on 2 cores).
#
#   scripts/experiments/planner-frontends-dispatch.sh [OUT]     (default OUT: plan-results/frontends-dispatch)
#
# Writes one `coded plan` report per row under OUT and prints the coded k + fallback,
# equal-resources and equal-resources + hedging rows of each.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-plan-results/frontends-dispatch}
mkdir -p "$out"
common="--service lognormal:2.2:0.15 --rate 270 --base 12 --deadline 15 --queries 100000"
rare="--slow-prob 0.002 --slow-ms 250 --slow-periods 1500:12000:1:60 --parity-delay 5"
heavy="--slow-prob 0.005 --slow-ms 250 --slow-periods 1500:3000:1:40"
stalls="--slow-prob 0.02 --slow-ms 100 --parity-delay 5"

row() {
  local name=$1
  shift
  bin/coded plan $common "$@" --out "$out/$name" >/dev/null
  echo "== $name: $*"
  grep -E "\+ fallback, 12 \+ [0-9]+ \||^\| equal resources" "$out/$name/plan.md"
}

# frontends: each over every F-th instance of every pool
for F in 1 2 3 4; do row "k2-f$F" --k 2 $rare --seed 1 --frontends $F; done
for S in 2 3; do for F in 3 4; do row "k2-f$F-s$S" --k 2 $rare --seed $S --frontends $F; done; done
for F in 2 3 4; do row "k3-f$F" --k 3 $rare --seed 1 --frontends $F; done
for F in 2 3; do row "k4-f$F" --k 4 $rare --seed 1 --frontends $F; done
# dispatch: the first free instance vs the free instance fastest lately
for S in 1 2 3; do for D in single-queue fastest-free; do row "heavy-$D-s$S" --k 2 $heavy --seed $S --dispatch $D; done; done
for F in 1 3 4; do for D in single-queue fastest-free; do row "rare-f$F-$D" --k 2 $rare --seed 1 --frontends $F --dispatch $D; done; done
for D in single-queue fastest-free; do row "stalls-$D" --k 2 $stalls --seed 1 --dispatch $D; done
