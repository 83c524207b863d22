#!/usr/bin/env bash
# Makes .gpu/ (git-ignored) for runs on the lent GPU machine, which has python3's CUDA torch
# and g++ but no Node and no npm registry. Run here, in the repository, after `npm ci`:
#
#   scripts/experiments/prepare-gpu-carry.sh [--no-node-modules]
#
# .gpu/node.xz                 this machine's node binary, stripped and xz-compressed (~22 MB)
# .gpu/include/node/           the N-API headers (node_api.h, js_native_api*.h, ...)
# .gpu/napi/                   node-addon-api's headers (napi.h, napi-inl.h, ...)
# .gpu/node_modules.tar.xz     the production dependencies (grpc, fastify, pino, vega, ...),
#                              needed by serving and `coded bench serve` (~8 MB; without
#                              onnxruntime-node); not by training
#
# The GPU scripts (gpu-campaign.sh, parm-gpu-latency.sh, ...) unpack node.xz and build the
# CUDA addon with g++ against these headers. Carry `.gpu` and `dist` (build it first with
# `npx tsc -p tsconfig.json`) in the device call. Idempotent: a part is remade only when its
# source is newer. The node binary must be x86-64 (the GPU machine's architecture).
set -euo pipefail
cd "$(dirname "$0")/../.."
with_modules=1
[ "${1:-}" = "--no-node-modules" ] && with_modules=0
G=.gpu
mkdir -p $G/include/node $G/napi
node_bin=$(readlink -f "$(command -v node)")
case "$(file -b "$node_bin" 2>/dev/null || echo x86-64)" in *x86-64*) ;; *) echo "node at $node_bin is not an x86-64 binary: the GPU machine needs one" >&2; exit 2 ;; esac
if [ ! -f $G/node.xz ] || [ "$node_bin" -nt $G/node.xz ]; then
  echo "[prepare-gpu-carry] node $(node --version): strip + xz (about 30 s)"
  strip -o $G/node.tmp "$node_bin"
  xz -T0 -6 -c $G/node.tmp > $G/node.xz.tmp && mv $G/node.xz.tmp $G/node.xz
  rm -f $G/node.tmp
fi
inc=$(dirname "$(dirname "$node_bin")")/include/node
[ -f "$inc/node_api.h" ] || inc=/usr/include/node
[ -f "$inc/node_api.h" ] || { echo "no node_api.h next to $node_bin or in /usr/include/node" >&2; exit 2; }
cp "$inc"/node_api.h "$inc"/node_api_types.h "$inc"/js_native_api.h "$inc"/js_native_api_types.h "$inc"/node_version.h $G/include/node/
napi=node_modules/node-addon-api
[ -f $napi/napi.h ] || { echo "$napi is missing: run npm ci first" >&2; exit 2; }
cp $napi/*.h $G/napi/
if [ $with_modules = 1 ] && { [ ! -f $G/node_modules.tar.xz ] || [ package-lock.json -nt $G/node_modules.tar.xz ]; }; then
  echo "[prepare-gpu-carry] production node_modules -> $G/node_modules.tar.xz"
  # every production dependency (nested ones are inside their parents), without type declarations
  # and without the optional onnxruntime-node (~290 MB of binaries for every platform; the GPU
  # runs serve libtorch models)
  npm ls --omit=dev --parseable --all 2>/dev/null | sed 1d | sed "s|^$PWD/||" | grep '^node_modules/' | grep -v '^node_modules/@types/' | grep -v '^node_modules/.*/node_modules/' | grep -v '^node_modules/onnxruntime' | sort -u > $G/node_modules.list
  tar cf - -T $G/node_modules.list | xz -T0 -6 > $G/node_modules.tar.xz.tmp && mv $G/node_modules.tar.xz.tmp $G/node_modules.tar.xz
  rm -f $G/node_modules.list
fi
du -sh $G/* | sed 's/^/[prepare-gpu-carry] /'
du -sh $G | sed 's/^/[prepare-gpu-carry] total /'
