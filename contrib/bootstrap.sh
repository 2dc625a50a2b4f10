#!/bin/sh
# Install what ward needs from Debian (only what is missing), then configure
# and build out of tree in ./build (or $WARD_BUILD). Extra arguments go to
# configure. Safe to run again.
set -e
cd "$(dirname "$0")/.."

pkgs="build-essential autoconf automake libtool pkg-config libev-dev
libmsgpack-dev libsystemd-dev libmount-dev check libedit-dev python3 python3-msgpack
util-linux procps systemd tmux shellcheck man-db groff-base libjansson-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "bootstrap: installing$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "bootstrap: run as root (or install:$missing)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ -x configure ] && [ -f build-aux/tap-driver.sh ] || ./autogen.sh
build=${WARD_BUILD:-build}
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || ../configure -q "$@"
make -j"$(nproc)"
