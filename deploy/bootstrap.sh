#!/bin/sh
# Installs, with apt-get, whatever empq needs to build, test and run the demo
# on Debian 12 and is not installed yet. Does nothing when all is present.
set -eu

PKGS="build-essential cmake pkg-config
libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libhiredis-dev
libcurl4-openssl-dev libjansson-dev libyaml-dev libmicrohttpd-dev libssl-dev libcsv-dev
redis-server redis-tools python3 curl iproute2
libgsl-dev python3-scipy python3-numpy
chromium nodejs npm
clang libclang-rt-14-dev shellcheck python3-yaml python3-jsonschema slurm-wlm munge"

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "bootstrap: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
