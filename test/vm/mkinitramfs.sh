#!/bin/sh
# mkinitramfs.sh BUILD OUT: the cgroup v2 guest's initramfs (gzipped newc cpio) at OUT, from
# BUILD's ephemerad, libephemera.so and microbench, the C library they load, busybox (static)
# and test/vm/cgroup-v2-init.sh as /init.
set -eu
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
tree=$(mktemp -d "${TMPDIR:-/tmp}/ephemera-v2ir-XXXXXX")
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/bin" "$tree/lib" "$tree/proc" "$tree/sys" "$tree/dev" "$tree/run" "$tree/tmp"
cp /bin/busybox "$tree/bin/busybox"
cp "$build/ephemerad" "$build/microbench" "$tree/bin/"
cp "$build/libephemera.so" "$tree/lib/"
# The shared libraries the three load, at the paths the dynamic loader looks them up.
for f in "$build/ephemerad" "$build/microbench" "$build/libephemera.so"; do
  ldd "$f" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'
done | sort -u | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$tree$(dirname "$lib")"
  cp -L "$lib" "$tree$lib"
done
cp "$here/cgroup-v2-init.sh" "$tree/init"
chmod +x "$tree/init"
(cd "$tree" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 > "$out"
