#!/bin/bash
# run.sh: run the libFuzzer harnesses one after the other (make fuzz runs
# it after build.sh): run.sh [TARGET...], each for FUZZ_TIME seconds.
#
# Each target reads its committed seeds (tests/fuzz/corpus/TARGET, never
# written) and grows a corpus of its own in $out/generated/TARGET, which
# later runs start from. A crash, leak or broken invariant leaves its input
# in $out/artifacts/ (reproduce: $out/TARGET that-file) and fails the run.
# Prints one line per target (PASS or FAIL, runs, execs/s) and exits 1 if
# any failed. FUZZ_FLAGS adds libFuzzer flags (e.g. -jobs=2 -workers=2).
set -u

srcdir=${srcdir:?}
out=${out:?}
time=${FUZZ_TIME:-60}
if [ $# -eq 0 ]; then
	for f in "$srcdir"/tests/fuzz/fuzz_*.c; do
		f=${f##*/}
		set -- "$@" "${f%.c}"
	done
fi
failed=""
for t in "$@"; do
	bin="$out/$t"
	if [ ! -x "$bin" ]; then
		echo "FAIL: $t: $bin is not built (make fuzz-build)"
		failed="$failed $t"
		continue
	fi
	mkdir -p "$out/generated/$t" "$out/artifacts"
	log="$out/$t.log"
	echo "  FUZZ     $t for ${time}s (log: $log)"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$time" -timeout=30 -max_len=16384 \
	    -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
	    ${FUZZ_FLAGS:-} "$out/generated/$t" "$srcdir/tests/fuzz/corpus/$t" \
	    >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "PASS: $t: ${runs:-?} runs, ${rate:-?} execs/s, ${cov:-cov: ?}"
	else
		echo "FAIL: $t (exit $rc): ${runs:-?} runs; the end of $log:"
		tail -40 "$log" | sed 's/^/  /'
		failed="$failed $t"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed (inputs in $out/artifacts/)"
	exit 1
fi
