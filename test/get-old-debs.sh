#!/usr/bin/env bash
# Downloads an older Debian version of what ncfence's views are built from
# (firefox-esr, thunderbird, libnss3 with its -tools and -dev, and
# ca-certificates) into /var/cache/ncfence-test/debs, without installing
# them: the update test (test/updates/apt-upgrade.test.ts) installs them
# inside a sandbox of this system, installs ncfence, then upgrades with
# apt-get to the current versions.
#
# The versions are not pinned here: for each package it takes the oldest
# version the archive offers that is older than apt's candidate (on Debian 12
# the point release's, with the security update as candidate), so a point
# release that drops a version does not break the test. What it chose is
# written to versions.txt, one `package=version` a line, which the test reads.
# Needs root (apt) and the Debian archive.
set -euo pipefail
dest=/var/cache/ncfence-test/debs
mkdir -p "$dest"
cd "$dest"

candidate() { apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'; }
# The oldest version of $1 in the archive that is older than its candidate.
older() {
  local cand best=""
  cand=$(candidate "$1")
  while read -r v; do
    if dpkg --compare-versions "$v" lt "$cand" && { [ -z "$best" ] || dpkg --compare-versions "$v" lt "$best"; }; then
      best=$v
    fi
  done < <(apt-cache madison "$1" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sort -u)
  if [ -z "$best" ]; then
    echo "get-old-debs: the archive offers no version of $1 older than its candidate ($cand); the update test needs one" >&2
    exit 1
  fi
  echo "$best"
}

nss=$(older libnss3)
chosen=("firefox-esr=$(older firefox-esr)" "thunderbird=$(older thunderbird)" \
  "libnss3=$nss" "libnss3-tools=$nss" "libnss3-dev=$nss" "ca-certificates=$(older ca-certificates)")
for p in "${chosen[@]}"; do
  name=${p%%=*}
  version=${p#*=}
  # apt writes an epoch's colon as %3a in the file name
  if ! ls "${name}_"*"${version#*:}_"*.deb >/dev/null 2>&1; then
    apt-get download "$p"
  fi
done
printf '%s\n' "${chosen[@]}" > versions.txt.tmp
mv versions.txt.tmp versions.txt
cat versions.txt
