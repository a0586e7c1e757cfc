#!/usr/bin/env bash
# Unpacks Firefox ESR 140 (the base of Tor Browser 15) from Debian's package
# into /var/cache/ncfence-test, without installing it: the browser-roots and
# install tests run it beside the system's ESR (test/helpers/firefox.ts
# FIREFOX_ESR140_DIR). Needs root (apt) and the Debian archive.
set -euo pipefail
version=140.12.0esr-1~deb12u1
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
