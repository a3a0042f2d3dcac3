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

if ! command -v node >/dev/null 2>&1; then
  echo "deps: Node.js 20 or newer is needed and was not found in PATH; install it (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "deps: Node.js $(node --version) is too old; Ephemera needs 20 or newer" >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install: newer than the lock means current.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
