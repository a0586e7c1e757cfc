#!/usr/bin/env bash
# Unpacks Firefox ESR 140 (the base of Tor Browser 15) from Debian's package
# into /var/cache/ncfence-test, without installing it: the browser-roots and
# install tests run it beside the system's ESR (test/helpers/firefox.ts
# FIREFOX_ESR140_DIR). Needs root (apt) and the Debian archive.
#
# The newest 140 the archive offers (Debian 12's point release carries it
# while its security archive has the next ESR), not a pinned version, so a
# point release that replaces it does not break the tests.
set -euo pipefail
version=$(apt-cache madison firefox-esr | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep '^140\.' | sort -V | tail -n 1 || true)
if [ -z "$version" ]; then
  echo "get-firefox-esr140: the archive offers no firefox-esr 140 (apt-cache madison firefox-esr); the browser tests need one" >&2
  exit 1
fi
cache=/var/cache/ncfence-test
dest="$cache/firefox-esr-140"
if [ -x "$dest/usr/lib/firefox-esr/firefox-esr" ]; then
  exit 0
fi
mkdir -p "$cache"
cd "$cache"
apt-get download "firefox-esr=$version"
rm -rf "$dest.tmp"
dpkg -x "firefox-esr_${version}_amd64.deb" "$dest.tmp"
mv "$dest.tmp" "$dest"
rm -f "firefox-esr_${version}_amd64.deb"
