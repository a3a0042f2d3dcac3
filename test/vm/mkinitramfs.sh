#!/bin/sh
# mkinitramfs.sh BUILD OUT [node]: the cgroup v2 guest's initramfs (newc cpio, gzipped) at OUT,
# from BUILD's ephemerad, libephemera.so, microbench and stallfiles, the C library they load, busybox
# (static) and test/vm/cgroup-v2-init.sh as /init.
# With `node`, the guest runs the node agent's own TypeScript (src/node/cgroup-v2-node-vm.test.ts):
# the tree also gets Node.js and the libraries it loads, the compiled modules the guest runs with
# the npm packages they load (test/vm/js-closure.mjs), coreutils' dd and diffutils' cmp (dynamic,
# so the shim can preload into them: busybox's are static), and test/vm/cgroup-v2-node-init.sh as
# /init.
set -eu
build=$1
out=$2
mode=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tree=$(mktemp -d "${TMPDIR:-/tmp}/ephemera-v2ir-XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/bin" "$tree/lib" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/run" "$tree/tmp"
cp /bin/busybox "$tree/bin/busybox"
cp "$build/ephemerad" "$build/microbench" "$build/stallfiles" "$tree/bin/"
cp "$build/libephemera.so" "$tree/lib/"
progs="$build/ephemerad $build/microbench $build/libephemera.so"
init="$here/cgroup-v2-init.sh"
if [ "$mode" = node ]; then
  node=$(readlink -f /usr/local/bin/node)
  cp "$node" "$tree/bin/node"
  cp -L /bin/dd /usr/bin/cmp "$tree/bin/"
  progs="$progs $node /bin/dd /usr/bin/cmp"
  # The compiled modules the guest script loads, and the guard sentinel the agent starts as a
  # process of its own (src/guard/sentinel-main.ts, by path, not by import), at their paths under
  # build/, with the npm packages they import; the package.json says the .js files are ES modules,
  # as the checkout's does.
  node "$here/js-closure.mjs" "$(cd "$build" && pwd)" "$tree/ephemera" js/node/cgroup-v2-guest.js js/guard/sentinel-main.js >/dev/null
  echo '{ "type": "module" }' > "$tree/ephemera/package.json"
  init="$here/cgroup-v2-node-init.sh"
elif [ -n "$mode" ]; then
  echo "mkinitramfs.sh: unknown mode '$mode'; give none, or 'node'" >&2
  exit 2
fi
# The shared libraries the programs load, at the paths the dynamic loader looks them up.
for f in $progs; do
  ldd "$f" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'
done | sort -u | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$tree$(dirname "$lib")"
  cp -L "$lib" "$tree$lib"
done
cp "$init" "$tree/init"
chmod +x "$tree/init"
# The node tree stays uncompressed (150 MB): the guest's kernel would unpack it on an emulated
# CPU, which took 10 s more than reading it raw (20 s instead of 10 s to Node.js's start, here).
compress="gzip -1"
[ "$mode" = node ] && compress=cat
(cd "$tree" && find . | busybox cpio -o -H newc 2>/dev/null) | $compress > "$out"
