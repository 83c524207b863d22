# Sourced by the GPU scripts (and scripts/gpu-check) on the lent GPU machine, which has no Node and
# no iproute2: the tools carried in the device call.
#   use_carried_node    unpacks .gpu/node.xz (prepare-gpu-carry.sh) into /tmp/nodebin once and puts
#                       it first on PATH; non-zero, with a message, when it cannot
#   use_carried_netlab  puts .netlab/bin (prepare-netlab-carry.sh: ip and tc) first on PATH when it
#                       was carried
use_carried_node() {
  [ -f .gpu/node.xz ] || { echo "no .gpu/node.xz: run scripts/experiments/prepare-gpu-carry.sh here and carry .gpu" >&2; return 2; }
  mkdir -p /tmp/nodebin
  if [ ! -x /tmp/nodebin/node ]; then
    python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.open(".gpu/node.xz").read())' > /tmp/nodebin/node.tmp &&
      chmod +x /tmp/nodebin/node.tmp && mv /tmp/nodebin/node.tmp /tmp/nodebin/node ||
      { rm -f /tmp/nodebin/node.tmp; echo "could not unpack .gpu/node.xz into /tmp/nodebin (python3 with lzma is needed)" >&2; return 2; }
  fi
  export PATH=/tmp/nodebin:$PATH
}

use_carried_netlab() {
  if [ -x .netlab/bin/ip ]; then export PATH=$PWD/.netlab/bin:$PATH; fi
}
