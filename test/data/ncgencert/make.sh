#!/bin/bash
# Regenerates the ncgencert test chains in this directory (committed: tests
# use them as data; CI has neither Go sources nor network to remake them).
#
#   bash test/data/ncgencert/make.sh /path/to/ncgencert-source
#
# Needs: Debian's golang-go (ncgencert builds with the standard library only,
# without its Makefile: go mod init; go build), libsecp256k1-dev and
# libssl-dev for nmcsign.c (the stand-in for `namecoin-cli signmessage`).
# The source used for the committed data: github.com/namecoin/ncgencert at
# 2e1b84bae8f431307e30c7ca256592cecd179ba6 ("Include stapled sigs in Subject
# Serial Number"), fetched with the tool library.
#
# Every chain starts 2026-01-01 and lasts 100 years (-duration 876000h), so
# verifiers that cannot be told the time (tstclnt, Firefox) accept it for
# the life of the project; vfychain runs at a pinned time (README.md here).
set -euo pipefail
src=${1:?usage: make.sh NCGENCERT_SOURCE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -r "$src"/. "$work/src"
(cd "$work/src" && rm -f go.mod && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$work/gocache" go mod init github.com/namecoin/ncgencert >/dev/null 2>&1 &&
  GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$work/gocache" go build -o "$work/ncgencert" .)
gcc -O2 -Wall -o "$work/nmcsign" "$here/nmcsign.c" -lsecp256k1 -lcrypto

# Two Namecoin keys: A owns d/example in the tests, B is someone else.
for k in owner-a owner-b; do
  [ -s "$here/$k.hex" ] || openssl rand -hex 32 > "$here/$k.hex"
done
A=$("$work/nmcsign" address "$(cat "$here/owner-a.hex")")
B=$("$work/nmcsign" address "$(cat "$here/owner-b.hex")")
echo "$A" > "$here/owner-a.address"
echo "$B" > "$here/owner-b.address"

gen() { # gen DIR ARGS... : one ncgencert run in DIR
  local d=$1; shift
  mkdir -p "$d"
  (cd "$d" && "$work/ncgencert" -start-date "Jan 1 00:00:00 2026" -duration 876000h "$@" 2>>ncgencert.log)
}
# sigs FILE ADDRESS KEYHEX MESSAGE_FILE : the sigs file an owner writes after signing
sigs() {
  local sig
  sig=$("$work/nmcsign" sign "$3" "$4")
  printf '[{"blockchainaddress":"%s","blockchainsig":"%s"}]' "$2" "$sig" > "$1"
}
fill() { sed "s/FILL IN NAMECOIN ADDRESS HERE BEFORE SIGNING/$2/" "$1"; }

rm -rf "$here"/hashed-* "$here"/certified-*
# Hashed mode: the record ([2,1,1,sha256 of the AIA key]) goes on chain.
gen "$here/hashed-apex" -host example.bit
gen "$here/hashed-www" -host www.example.bit
gen "$here/hashed-ab" -host a.b.example.bit
gen "$here/hashed-stranger" -host www.example.bit

# Certified mode: first run, sign caAIAMessage.txt, second run with the signatures.
certified() { # certified NAME HOST SIGNER_ADDRESS SIGNER_KEY [MESSAGE_EDIT]
  local d="$here/$1" host=$2 addr=$3 key=$4 edit=${5:-}
  gen "$d" -host "$host"
  fill "$d/caAIAMessage.txt" "$addr" > "$d/message.txt"
  if [ -n "$edit" ]; then "$edit" "$d"; fi
  sigs "$d/sigs.json" "$addr" "$key" "$d/message.txt"
  gen "$d" -host "$host" -grandparent-key "$d/caAIAKey.pem" -sigs "$d/sigs.json"
}
certified certified-apex example.bit "$A" "$(cat "$here/owner-a.hex")"
certified certified-www www.example.bit "$A" "$(cat "$here/owner-a.hex")"
certified certified-by-b example.bit "$B" "$(cat "$here/owner-b.hex")"
# Claims A's address, signed with B's key.
gen "$here/certified-forged" -host example.bit
fill "$here/certified-forged/caAIAMessage.txt" "$A" > "$here/certified-forged/message.txt"
sigs "$here/certified-forged/sigs.json" "$A" "$(cat "$here/owner-b.hex")" "$here/certified-forged/message.txt"
gen "$here/certified-forged" -host example.bit -grandparent-key "$here/certified-forged/caAIAKey.pem" -sigs "$here/certified-forged/sigs.json"
# A's real signature, over another domain with this key.
other_domain() { sed -i 's/"domain":"example.bit"/"domain":"other.bit"/' "$1/message.txt"; }
certified certified-other-domain example.bit "$A" "$(cat "$here/owner-a.hex")" other_domain
# A's real signature, for this domain over another key (the one in hashed-apex).
other_key() { sed -i "s/\"x509pub\":\"[^\"]*\"/\"x509pub\":\"$(openssl pkey -in "$here/hashed-apex/caAIAKey.pem" -pubout -outform DER | basenc --base64url -w0 | tr -d =)\"/" "$1/message.txt"; }
certified certified-other-key example.bit "$A" "$(cat "$here/owner-a.hex")" other_key

rm -f "$here"/*/ncgencert.log
echo "made: $(ls -d "$here"/hashed-* "$here"/certified-* | xargs -n1 basename | tr '\n' ' ')"
