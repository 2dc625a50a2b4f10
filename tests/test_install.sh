#!/bin/bash
# test_install.sh: `make install` keeps to --prefix (a staged install with
# DESTDIR, as packagers and distcheck do): every file lands below
# DESTDIR/PREFIX, the systemd units in PREFIX/lib/systemd/system unless
# configure was told otherwise. TAP out.
here=$(cd "$(dirname "$0")/.." && pwd)
build=${WARD_BUILDDIR:-$here}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$(sed -n 's/^prefix = //p' "$build/Makefile")
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$build/Makefile")
echo "1..3"
# The recursive make is not part of check's jobs: no jobserver inherited.
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$build" install \
    DESTDIR="$tmp/stage" >"$tmp/log" 2>&1; then
	echo "ok 1 - make install DESTDIR=... succeeds"
else
	echo "not ok 1 - make install DESTDIR=... failed"
	sed 's/^/# /' "$tmp/log"
fi
# A unit dir given to configure outside the prefix is the user's choice.
# shellcheck disable=SC2016 # the literal make variable configure wrote
case $unitdir in
'${prefix}'*) mine='^$' ;;
*) mine="^$unitdir/" ;;
esac
outside=$(cd "$tmp/stage" && find . -type f -o -type l | sed 's|^\.||' |
    grep -v "^$prefix/" | grep -v "$mine")
if [ -z "$outside" ] && [ -n "$prefix" ]; then
	echo "ok 2 - every installed file is below $prefix"
else
	echo "not ok 2 - installed outside $prefix:"
	while read -r l; do echo "# $l"; done <<<"$outside"
fi
want="$tmp/stage$prefix/lib/systemd/system/ward.socket"
# shellcheck disable=SC2016
case $unitdir in
'${prefix}/lib/systemd/system')
	if [ -f "$want" ]; then
		echo "ok 3 - ward.socket in \$prefix/lib/systemd/system"
	else
		echo "not ok 3 - no $want"
	fi ;;
*)	echo "ok 3 # SKIP configured with --with-systemdsystemunitdir=$unitdir" ;;
esac
