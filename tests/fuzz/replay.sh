#!/bin/sh
# Replays the fuzz corpora (tests/fuzz/corpus/<harness>/) through the
# harnesses built without libFuzzer (tests/fuzz_<harness>_replay, from
# tests/fuzz/replay.c), so `make check` runs every seed and every
# regression input with the normal compiler — and under ASan+UBSan in the
# --enable-sanitizers build.  No clang needed.
#
# tests/fuzz/known-open lists regression inputs of findings not fixed yet
# (one "harness/file" a line, # comments): each must still fail (XFAIL);
# once it passes the script fails, so the line gets deleted with the fix.
set -u
top=${srcdir:-$(dirname "$0")/../..}
bin=${FUZZ_REPLAY_DIR:-tests}
known="$top/tests/fuzz/known-open"
passed=0
failed=0
xfail=0
err=$(mktemp "${TMPDIR:-/tmp}/fuzz-replay.XXXXXX") || exit 99
trap 'rm -f "$err"' EXIT

is_known() {
	[ -f "$known" ] && grep -v '^[[:space:]]*#' "$known" | grep -qx "$1"
}

for h in request config answer gate h1 decode h2 retry_after; do
	prog="$bin/fuzz_${h}_replay"
	dir="$top/tests/fuzz/corpus/$h"
	if [ ! -x "$prog" ]; then
		echo "FAIL: $prog not built"
		failed=$((failed + 1))
		continue
	fi
	set --
	n=0
	for f in "$dir"/*; do
		[ -f "$f" ] || continue
		if is_known "$h/${f##*/}"; then
			# an open finding: must still fail, by itself
			if "$prog" "$f" >/dev/null 2>"$err"; then
				echo "FAIL: $h/${f##*/} passes now: delete it from tests/fuzz/known-open"
				failed=$((failed + 1))
			elif grep -q -e 'check failed' -e 'Sanitizer' -e 'runtime error' "$err"; then
				echo "xfail: $h/${f##*/} (open finding, tests/fuzz/known-open)"
				xfail=$((xfail + 1))
			else
				echo "FAIL: $h/${f##*/} failed without a finding:"
				tail -n 20 "$err"
				failed=$((failed + 1))
			fi
			continue
		fi
		set -- "$@" "$f"
		n=$((n + 1))
	done
	if [ "$n" -eq 0 ]; then
		echo "FAIL: no inputs in $dir"
		failed=$((failed + 1))
		continue
	fi
	# one process for the whole corpus; its stderr names each input, so
	# the last one named is the one that failed
	if out=$("$prog" "$@" 2>"$err"); then
		echo "ok: $h: $out"
		passed=$((passed + n))
	else
		echo "FAIL: $h: $out"
		tail -n 40 "$err"
		failed=$((failed + 1))
	fi
done
[ "$xfail" -gt 0 ] && echo "($xfail known open, see tests/fuzz/known-open)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
