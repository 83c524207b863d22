#!/usr/bin/env bash
# Makes .netlab/ (git-ignored): this machine's iproute2 (ip, tc) with its own dynamic loader and
# libraries, for network-interference runs (`--network`, src/bench/network-lab.ts) on the lent
# GPU machine, which has root and network namespaces but no iproute2. About 5 MB; carry it with
# `dist` and `.gpu`. demo-two-cores.sh, parm-gpu-latency.sh and parm-gpu-series.sh put
# .netlab/bin on PATH when it is there.
#
# The wrappers start each binary through the carried loader with --library-path, so the
# libraries apply to ip and tc only, never to the commands `ip netns exec` runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v ip >/dev/null && command -v tc >/dev/null || { echo "ip and tc (iproute2) are needed here: apt-get install iproute2" >&2; exit 2; }
rm -rf .netlab && mkdir -p .netlab/bin .netlab/lib
cp -L "$(command -v ip)" "$(command -v tc)" .netlab/lib/
loader=$(ldd "$(command -v ip)" | awk '/ld-linux/ {print $1}')
cp -L "$loader" .netlab/lib/
ldd "$(command -v ip)" "$(command -v tc)" | awk '$3 ~ /^\// {print $3}' | sort -u | xargs -I{} cp -L {} .netlab/lib/
for b in ip tc; do
  cat > .netlab/bin/$b <<WRAP
#!/bin/sh
d=\$(dirname "\$(readlink -f "\$0")")/../lib
exec "\$d/$(basename "$loader")" --library-path "\$d" "\$d/$b" "\$@"
WRAP
  chmod +x .netlab/bin/$b
done
.netlab/bin/ip -V
.netlab/bin/tc -V
du -sh .netlab
