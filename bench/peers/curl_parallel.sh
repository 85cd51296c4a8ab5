#!/usr/bin/env bash
# Peer: curl --parallel --parallel-max C over a config file of the URLs,
# --fail (any non-2xx is an error) and --fail-early (stop at the first one).
# The bodies go to /dev/null; every status and body size is collected with
# --write-out and checked: all 2xx, one per URL.
#
#     curl_parallel.sh URLFILE C [CURL_OPTION...]
#
# Any further arguments go to curl as they are, e.g. --http2 --cacert FILE
# (over https ALPN picks h2, and --parallel multiplexes on one connection).
# Prints "ok n=N bytes=B elapsed_ms=T" (the curl run only; writing the
# config file is excluded) and exits 0; any error -> stderr, exit 1.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: curl_parallel.sh URLFILE C [CURL_OPTION...]" >&2; exit 2; }
urlfile=$1 c=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# one "url" + "output" pair per URL (curl's config-file syntax)
sed -e 's/.*/url = "&"\noutput = "\/dev\/null"/' "$urlfile" > "$tmp/urls.cfg"
n=$(grep -c . "$urlfile")

t0=$EPOCHREALTIME
rc=0
curl --silent --no-progress-meter --show-error --fail --fail-early \
	--parallel --parallel-max "$c" "$@" \
	--write-out '%{http_code} %{size_download}\n' \
	--config "$tmp/urls.cfg" > "$tmp/status" || rc=$?
t1=$EPOCHREALTIME
[ "$rc" -eq 0 ] || { echo "curl_parallel: curl exited $rc" >&2; exit 1; }

read -r got bad bytes < <(awk '{ n++; b += $2; if ($1 !~ /^2/) bad++ }
	END { printf "%d %d %d\n", n, bad, b }' "$tmp/status")
if [ "$got" -ne "$n" ] || [ "$bad" -ne 0 ]; then
	echo "curl_parallel: $got statuses for $n URLs, $bad not 2xx" >&2
	exit 1
fi
ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
echo "ok n=$n bytes=$bytes elapsed_ms=$ms"
