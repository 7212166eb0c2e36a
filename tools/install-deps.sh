#!/bin/sh
# install-deps.sh -- installs the Debian packages switchyard needs, if any
# is missing.  Called by `make run`, `make test` and `make bench`
# (`install-deps.sh bench`).  Needs
# root (or sudo) only when something is missing.
set -eu

PKGS="gcc make pkg-config clang libclang-rt-14-dev \
libzmq3-dev libczmq-dev libmsgpack-dev liblmdb-dev lmdb-utils \
libsodium-dev libcurl4-openssl-dev libcmocka-dev \
python3 procps coreutils tcpdump"
# `install-deps.sh bench` adds what only the benchmarks use.
if [ "${1-}" = bench ]; then
    PKGS="$PKGS beanstalkd valgrind util-linux"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: missing packages:$missing; run as root" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
