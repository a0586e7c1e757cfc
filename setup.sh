#!/bin/sh
# From a clone to an installed ncfence on Debian 12, in one command (README,
# "Quick start"): Debian's build and run-time packages (with sudo), the
# build, and `ncfence` on PATH (npm install -g of the package this clone
# makes). Run it as yourself; it asks sudo for what needs root.
set -eu
cd "$(dirname "$0")"
say() { printf 'setup.sh: %s\n' "$*" >&2; }

# Node.js 20.15 or later (zlib.crc32), with npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1 ||
  ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 15) ? 0 : 1)'; then
  say "ncfence needs Node.js 20.15 or later with npm; found $(node --version 2>/dev/null || echo none)."
  say "Debian 12's own nodejs is 18.20: install NodeSource's nodejs 20 (https://deb.nodesource.com), then run ./setup.sh again."
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say 'needs sudo (or run it as root)'; exit 1; }
  SUDO=sudo
fi

# Native parts (the module, and pkcs11js) build against the running Node's
# own headers when it ships them (NodeSource's nodejs does, in
# /usr/include/node), instead of node-gyp downloading a copy.
NODEDIR=
headers=$(dirname "$(dirname "$(command -v node)")")
if [ -f "$headers/include/node/node_version.h" ] && node -e '
  const h = require("fs").readFileSync(process.argv[1], "utf8");
  const v = ["MAJOR", "MINOR", "PATCH"].map((k) => new RegExp("define NODE_" + k + "_VERSION (\\d+)").exec(h)[1]).join(".");
  process.exit(v === process.versions.node ? 0 : 1)' "$headers/include/node/node_version.h"; then
  NODEDIR="--nodedir=$headers"
fi

say "installing Debian's packages the build and the module need"
$SUDO apt-get install -y --no-install-recommends build-essential python3 pkg-config \
  libp11-kit-dev libsecp256k1-dev p11-kit p11-kit-modules libnss3 libnss3-tools openssl ca-certificates
say 'building (npm ci: the module with node-gyp, the command with its dependencies)'
npm ci --no-audit --no-fund $NODEDIR
tarball=$(npm pack --silent | tail -n 1)
say "installing $tarball for every user (npm install -g)"
$SUDO npm install -g --no-audit --no-fund $NODEDIR "./$tarball"
rm -f "./$tarball"
say "done: $(command -v ncfence) ($(ncfence --version)). Next: sudo ncfence install firefox"
