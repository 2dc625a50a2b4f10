#!/bin/bash
# build.sh: build the libFuzzer harnesses (make fuzz-build runs it).
# wardd's modules (src/*.c but wardd.c) are compiled with clang and
# -fsanitize=fuzzer-no-link,address,undefined into an archive of their
# own (the gcc-built libwardd.a is not used), then each tests/fuzz/fuzz_*.c
# is linked with harness.c and that archive. Only what changed is rebuilt.
#
# Environment (make passes it): FUZZ_CC (clang), srcdir (the source
# tree), out (where the harnesses go), CPPFLAGS_EXTRA (-I for config.h and
# the msgpack headers), LIBS_EXTRA (libev, msgpack, libsystemd, inih),
# FUZZ_CFLAGS (more flags, optional).
set -eu

cc=${FUZZ_CC:-clang}
srcdir=${srcdir:?}
out=${out:?}
cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter
-Wno-missing-field-initializers ${FUZZ_CFLAGS:-}"
cppflags="${CPPFLAGS_EXTRA:-} -I$srcdir/src -I$srcdir/proto -I$srcdir/tests/fuzz"

# --one SOURCE OBJECT: compile one file (what the parallel build runs).
if [ "${1:-}" = --one ]; then
	echo "  FUZZCC   $3"
	# shellcheck disable=SC2086
	exec "$cc" $cflags -fsanitize=fuzzer-no-link $cppflags -c "$2" -o "$3"
fi

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "make fuzz: no '$cc': install clang and its libFuzzer runtime" \
	    "(Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi
if ! "$cc" --version 2>/dev/null | grep -q clang; then
	echo "make fuzz: '$cc' is not clang (libFuzzer is clang's): configure" \
	    "FUZZ_CC=clang, or make fuzz FUZZ_CC=clang" >&2
	exit 1
fi
mkdir -p "$out/obj"
# One build at a time: two make fuzz runs may start together.
exec 9>"$out/obj/.lock"
flock 9
# Debian ships libFuzzer and the sanitizer runtimes apart from clang.
probe="$out/obj/probe"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *, size_t);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
    >"$probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" \
    >"$probe.log" 2>&1; then
	v=$("$cc" -dumpversion 2>/dev/null | cut -d. -f1)
	echo "make fuzz: '$cc' cannot link -fsanitize=fuzzer,address,undefined:" \
	    "libFuzzer or the sanitizer runtimes are missing." >&2
	sed 's/^/  /' "$probe.log" | tail -5 >&2
	echo "Install them: apt-get install libclang-rt-${v:-N}-dev" \
	    "(Debian 12: libclang-rt-14-dev)" >&2
	exit 1
fi

# An object is stale when it is missing or older than its source, any
# header, or this script.
newest=$0
for h in "$srcdir"/src/*.h "$srcdir"/proto/*.h "$srcdir"/tests/fuzz/*.h; do
	[ "$h" -nt "$newest" ] && newest=$h
done
stale() {	# stale OBJECT SOURCE
	[ ! -f "$1" ] || [ "$2" -nt "$1" ] || [ "$newest" -nt "$1" ]
}

todo=""
objs=""
# proto/shellwords.c is in libwardd.a too (the splitter wardctl shares).
for src in "$srcdir"/src/*.c "$srcdir"/proto/shellwords.c \
    "$srcdir"/tests/fuzz/*.c; do
	name=$(basename "$src" .c)
	[ "$name" = wardd ] && continue
	obj="$out/obj/$name.o"
	stale "$obj" "$src" && todo="$todo $src $obj"
	case $src in
	*/src/*|*/proto/*) objs="$objs $obj" ;;
	esac
done
if [ -n "$todo" ]; then
	export FUZZ_CC CPPFLAGS_EXTRA FUZZ_CFLAGS srcdir out
	# shellcheck disable=SC2086
	printf '%s %s\n' $todo |
	    xargs -P "$(nproc 2>/dev/null || echo 2)" -n 2 bash "$0" --one
	rm -f "$out/obj/libwardd-fuzz.a"
fi
lib="$out/obj/libwardd-fuzz.a"
# shellcheck disable=SC2086
[ -f "$lib" ] || ar rcs "$lib" $objs

# harness.c's sandbox seam: see its comment.
wrap="-Wl,--wrap=spawn_child,--wrap=spawn_pidfd_signal"
wrap="$wrap,--wrap=output_spawn_prepare,--wrap=shutdown_begin"
wrap="$wrap,--wrap=sd_journal_send,--wrap=sd_journal_send_with_location"
wrap="$wrap,--wrap=sd_notify"
for src in "$srcdir"/tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	if [ ! -x "$out/$t" ] || [ "$out/obj/$t.o" -nt "$out/$t" ] ||
	    [ "$lib" -nt "$out/$t" ] || [ "$out/obj/harness.o" -nt "$out/$t" ]; then
		echo "  FUZZLD   $out/$t"
		# shellcheck disable=SC2086
		"$cc" $cflags -fsanitize=fuzzer "$wrap" "$out/obj/$t.o" \
		    "$out/obj/harness.o" "$lib" ${LIBS_EXTRA:-} -o "$out/$t"
	fi
done
