#!/usr/bin/env bash
# torchvision's ResNet-18, exported by PyTorch (TorchScript and ONNX), end to end:
#   1. export it (python3-torchvision; Python only makes the files) with a data file,
#   2. serve the .pt and the .onnx and check them against PyTorch's own forward (1e-4),
#   3. train a parity model for it (coded train parity, k = 2) and evaluate it (coded eval),
#   4. serve 2 base instances (.pt, and .onnx as a straggler) + the parity model behind a coded
#      frontend, query it, and check reconstructed answers against F's true outputs.
#
#   examples/own-model/torchvision-resnet18.sh [WORK_DIR]     (default: runs/own-model-resnet18)
#
# Idempotent: files already in WORK_DIR (the export, the parity model) are reused; FORCE=1
# makes everything again. Environment: PARITY_MODEL (default mlp:256; `base` trains copies of F
# itself, about 7 times slower per epoch here), EPOCHS (20), N (600 training examples), Q
# (64 held-out queries), SLOW_MS (500: the straggler's delay), THREADS (1 per instance).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CODED="$REPO/bin/coded"
WORK=$(mkdir -p "${1:-$REPO/runs/own-model-resnet18}" && cd "${1:-$REPO/runs/own-model-resnet18}" && pwd)
PARITY_MODEL=${PARITY_MODEL:-mlp:256}
EPOCHS=${EPOCHS:-20}
N=${N:-600}
Q=${Q:-64}
SLOW_MS=${SLOW_MS:-500}
THREADS=${THREADS:-1}
PYTHON=/usr/bin/python3
export OMP_NUM_THREADS=1
START=$(date +%s)

say() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - START)); }

if [ ! -f "$REPO/dist/src/cli/main.js" ]; then
  echo "build the project first: (cd $REPO && npm run build)" >&2
  exit 1
fi

# --- processes started here are stopped on exit, whatever happens ---------------------------
PIDS=()
cleanup() { # the last started first: the frontend before its instances
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start LOG ARGS...: runs `coded ARGS` in the background, waits for its {"event":"listening"}
# line and sets PORT (its REST port)
start() {
  local log=$1
  shift
  "$CODED" "$@" >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do
    if grep -q '"event":"listening"' "$log" 2>/dev/null; then
      PORT=$(grep '"event":"listening"' "$log" | head -1 | sed 's/.*"http":\([0-9]*\).*/\1/')
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "coded $* exited early; its log ($log):" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "coded $* did not start within 120 s; log: $log" >&2
  exit 1
}

# --- 1. python3-torchvision, the export and the data -----------------------------------------
say "1. export torchvision resnet18 (3x64x64, 10 classes) to $WORK"
if ! "$PYTHON" -c 'import torchvision' 2>/dev/null; then
  echo "installing python3-torchvision (Debian; matches python3-torch 1.13)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get install -y python3-torchvision >/dev/null
fi
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$WORK/meta.json" ] || [ ! -f "$WORK/resnet18.onnx" ]; then
  rm -rf "$WORK/parity"
  "$PYTHON" "$HERE/make_resnet18.py" "$WORK" "$N" "$Q" >/dev/null 2> >(grep -v -i warn >&2)
else
  echo "reusing $WORK (FORCE=1 to make it again)"
fi
cat "$WORK/meta.json"
echo
ls -l "$WORK"/resnet18.pt "$WORK"/resnet18.onnx "$WORK"/data.safetensors "$WORK"/reference.safetensors

CHECK=(node "$HERE/resnet18-check.mjs")

# --- 2. the .pt and the .onnx through our instances vs PyTorch -------------------------------
say "2. serve resnet18.pt and resnet18.onnx; compare with PyTorch's forward on $Q held-out inputs"
start "$WORK/instance-pt.log" serve instance --model "$WORK/resnet18.pt" --input-shape 3x64x64 --runtime named \
  --port 0 --grpc-port -1 --threads "$THREADS"
PT_PORT=$PORT
start "$WORK/instance-onnx.log" serve instance --model "$WORK/resnet18.onnx" --runtime named \
  --port 0 --grpc-port -1 --threads "$THREADS"
ONNX_PORT=$PORT
curl -s "http://127.0.0.1:$PT_PORT/v2/models/resnet18"
echo
curl -s "http://127.0.0.1:$ONNX_PORT/v2/models/resnet18"
echo
"${CHECK[@]}" instance "http://127.0.0.1:$PT_PORT" resnet18 "$WORK/reference.safetensors" "$Q" | tee "$WORK/check-pt.json"
"${CHECK[@]}" instance "http://127.0.0.1:$ONNX_PORT" resnet18 "$WORK/reference.safetensors" "$Q" | tee "$WORK/check-onnx.json"
cleanup

# --- 3. a parity model (addition, k = 2) ------------------------------------------------------
PARITY="$WORK/parity"
say "3. coded train parity --parity-model $PARITY_MODEL --epochs $EPOCHS (k = 2, addition)"
if [ ! -f "$PARITY/best.safetensors" ] || [ "$(cat "$PARITY/parity-model" 2>/dev/null)" != "$PARITY_MODEL $EPOCHS" ]; then
  rm -rf "$PARITY"
  "$CODED" train parity --base "$WORK/resnet18.pt" --data "$WORK/data.safetensors" --code addition --k 2 \
    --parity-model "$PARITY_MODEL" --epochs "$EPOCHS" --batch-size 16 --out "$PARITY" --json >"$WORK/train.json" 2>"$WORK/train.log"
  echo "$PARITY_MODEL $EPOCHS" >"$PARITY/parity-model"
else
  echo "reusing $PARITY/best.safetensors"
fi
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const e = r.epochs.at(-1);
console.log(JSON.stringify({ parityModel: r.config.parityModel, epochs: r.epochs.length, bestEpoch: r.bestEpoch,
  secondsPerEpoch: +(r.epochs.reduce((s, x) => s + x.seconds, 0) / r.epochs.length).toFixed(1),
  lastTrainMse: +e.trainLoss.toFixed(4), bestValDegradedAccuracy: r.bestValDegradedAccuracy, totalSeconds: +r.seconds.toFixed(1) }));
' "$WORK/train.json"
say "3b. coded eval (the training's test split of data.safetensors)"
"$CODED" eval "$PARITY/best.safetensors" --data "$WORK/data.safetensors" --json >"$WORK/eval.json"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(JSON.stringify({ testExamples: r.samples, groups: r.groups, baseAccuracy_A_a: r.baseAccuracy,
  degradedAccuracy_A_d: r.degraded.accuracy, recoveryAgreementWithF: r.degraded.recovery, degradedTop5: r.degraded.top5,
  defaultBaseline: r.defaultBaseline }));
' "$WORK/eval.json"

# --- 4. a coded frontend over 2 base instances (.pt, .onnx as a straggler) + the parity -------
# Each request carries two queries (one coding group); round-robin dispatch sends one to each
# base instance, so every group has one straggler (500 ms) and its query is decoded from the
# other original and the parity model's answer after decodeDeadlineMs (200 ms).
say "4. coded frontend: resnet18.pt + resnet18.onnx (straggler: every request +${SLOW_MS} ms) + parity"
start "$WORK/base-pt.log" serve instance --model "$WORK/resnet18.pt" --input-shape 3x64x64 --runtime named \
  --port 0 --grpc-port -1 --threads "$THREADS"
B1=$PORT
start "$WORK/base-onnx.log" serve instance --model "$WORK/resnet18.onnx" --runtime named \
  --port 0 --grpc-port -1 --threads "$THREADS" --slow-prob 1 --slow-ms "$SLOW_MS"
B2=$PORT
start "$WORK/parity.log" serve instance --model "$PARITY/best.safetensors" --name resnet18-parity \
  --port 0 --grpc-port -1 --threads "$THREADS"
P1=$PORT
cat >"$WORK/frontend.json" <<EOF
{
  "name": "resnet18", "app": "resnet18", "httpPort": 0, "grpcPort": 0,
  "mode": "coded", "codeCheckpoint": "$PARITY/best.safetensors",
  "pools": {
    "base": { "model": "resnet18", "instances": ["127.0.0.1:$B1", "127.0.0.1:$B2"], "protocol": "rest" },
    "parity": [{ "model": "resnet18-parity", "instances": ["127.0.0.1:$P1"], "protocol": "rest" }]
  },
  "sloMs": 10000, "decodeDeadlineMs": 200, "maxWaitMs": 20, "dispatch": "round-robin",
  "admission": { "enabled": false }, "logLevel": "warn"
}
EOF
start "$WORK/frontend.log" serve frontend --config "$WORK/frontend.json"
FE=$PORT
"${CHECK[@]}" frontend "http://127.0.0.1:$FE" resnet18 "$WORK/reference.safetensors" "$Q" | tee "$WORK/check-frontend.json"
curl -s "http://127.0.0.1:$FE/metrics" | grep -E '^coded_queries_total' || true
# the straggler's last request is still running: let it finish before stopping the frontend
# (stopping it closes its connections, and the pool would log that request as failed)
sleep "$(((SLOW_MS + 999) / 1000))"
cleanup
say "done: everything stopped; files in $WORK"
