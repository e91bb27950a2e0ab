#!/bin/sh
# Installs, with apt-get, whatever empq needs and is not installed yet, on
# Debian 12. Does nothing when all is present.
#   bootstrap.sh build   to build and run empq (and `make demo`)
#   bootstrap.sh test    also what the tests use (`make test`): scipy as a
#                        statistics reference, Chromium and Node for browser
#                        tests, clang's libFuzzer, checkers of the deploy files,
#                        a local Slurm, tmux for the terminal test of
#                        `empq status --watch`
set -eu

PKGS="build-essential cmake pkg-config
libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libhiredis-dev
libcurl4-openssl-dev libjansson-dev libyaml-dev libmicrohttpd-dev libssl-dev libcsv-dev
libgsl-dev redis-server redis-tools curl"

if [ "${1:-build}" = "test" ]; then
  PKGS="$PKGS python3 iproute2 python3-scipy python3-numpy python3-statsmodels python3-sklearn
chromium nodejs npm
clang libclang-rt-14-dev shellcheck python3-yaml python3-jsonschema slurm-wlm munge tmux"
fi

missing=""
for p in $PKGS; do
  # Node.js may come from elsewhere than Debian (then Debian's npm conflicts).
  case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
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
