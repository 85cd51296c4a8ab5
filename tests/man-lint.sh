#!/bin/sh
# The manual pages render without a single groff warning.
set -eu
top=${srcdir:-$(dirname "$0")/..}
status=0
for page in "$top/man/fanoutd.8" "$top/man/fanoutd.conf.5" "$top/man/fanout.1"; do
	out=$(groff -ww -mandoc -z "$page" 2>&1) || status=1
	if [ -n "$out" ]; then
		echo "$page: $out"
		status=1
	else
		echo "ok: $page"
	fi
done
[ $status -eq 0 ] && echo "3 passed, 0 failed" || echo "0 passed, 1 failed"
exit $status
