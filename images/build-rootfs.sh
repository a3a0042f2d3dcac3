#!/usr/bin/env bash
# Write the function image's root file system as a tar stream on stdout.
#
#   images/build-rootfs.sh > rootfs.tar        (normally run by src/container/image.ts)
#
# The image is Debian bookworm with only the packages in function.packages and their
# dependencies, made with mmdebstrap from Debian's own archive: there is no container registry.
# Everything that decides the result lives in this directory, and image.ts tags the image with a
# hash of it, so changing a package list or this script rebuilds the image and nothing else does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SUITE=bookworm
MIRROR=${EPHEMERA_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "images: installing mmdebstrap (one time)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends mmdebstrap >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends mmdebstrap >&2; }
fi

pkgs=$(grep -v '^\s*#' "$here/function.packages" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')

# --variant=essential: only Essential:yes packages plus what --include pulls in (no apt, no
# recommends), which keeps the image near the size of its Python stack.
# Documentation, translations and static libraries are never unpacked. The hooks drop apt's
# caches and leave /tmp as an empty 1777 directory: the scratch directory every mode shares.
# The OpenWhisk action runtime (ow_runtime.py, Python stdlib only) goes to /opt/ephemera/runtime;
# ephemerad and libephemera.so are bind-mounted from build/ by whoever starts the container.
exec mmdebstrap --quiet --variant=essential --include="$pkgs" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/lib/*.a' --dpkgopt='path-exclude=/usr/lib/*/*.a' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  --customize-hook='mkdir -p "$1"/tmp && chmod 1777 "$1"/tmp' \
  --customize-hook='mkdir -p "$1"/opt/ephemera/runtime "$1"/opt/ephemera/bin "$1"/opt/ephemera/lib "$1"/run/ephemera' \
  --customize-hook="copy-in $here/ow_runtime.py /opt/ephemera/runtime" \
  --format=tar "$SUITE" - "deb $MIRROR $SUITE main"
