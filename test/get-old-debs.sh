#!/usr/bin/env bash
# Downloads the previous Debian 12 versions of what ncfence's views are built
# from, into /var/cache/ncfence-test/debs, without installing them: the
# update test (test/updates/apt-upgrade.test.ts) installs them inside a
# sandbox of this system, installs ncfence, then upgrades with apt-get to the
# current versions. Needs root (apt) and the Debian archive.
set -euo pipefail
dest=/var/cache/ncfence-test/debs
mkdir -p "$dest"
cd "$dest"
for p in firefox-esr=140.12.0esr-1~deb12u1 thunderbird=1:140.12.0esr-1~deb12u1 \
  libnss3=2:3.87.1-1+deb12u2 libnss3-tools=2:3.87.1-1+deb12u2 libnss3-dev=2:3.87.1-1+deb12u2 \
  ca-certificates=20230311+deb12u1; do
  name=${p%%=*}
  version=${p#*=}
  # apt writes an epoch's colon as %3a in the file name
  if ! ls "${name}_"*"${version#*:}_"*.deb >/dev/null 2>&1; then
    apt-get download "$p"
  fi
done
ls -1 "$dest"
