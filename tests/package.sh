#!/bin/bash
# tests/package.sh - SPEC section 14, the last step of `./bootstrap check`:
#   1. make distcheck in BUILD (the tarball builds and passes make check alone)
#   2. the .deb from that tarball (dpkg-buildpackage -b, nocheck: the suite just
#      ran), the source package beside it, lintian on both (any E: or W: fails)
#   3. one debootstrap --variant=minbase bookworm tree, which becomes
#   4. a chroot: apt-get install ./fanoutd_*.deb (dependencies from the
#      archive), fanoutd -t, fanoutd on a loopback port driven by the chroot's
#      fanout against the test upstream on the host, stop, remove (conffile
#      kept), purge (gone), and
#   5. the base image docker.io/library/debian:bookworm-slim (podman import):
#      podman build the Containerfile from the tarball, run fanoutd in it with
#      buildah run, a batch over loopback with curl, its user is not root, the
#      image's HEALTHCHECK command passes.
# Usage: tests/package.sh [BUILD]   (BUILD: a configured build dir, default build)
# Needs root (debootstrap, chroot, mount).  Downloads are cached in
# $PACKAGE_CACHE (default /var/cache/fanoutd-package) between runs.
# PACKAGE_DISTCHECK=no makes a plain `make dist` instead of distcheck (to
# iterate on packaging; CI always runs distcheck).
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
BUILD=$(cd "${1:-build}" && pwd)
CACHE=${PACKAGE_CACHE:-/var/cache/fanoutd-package}
MIRROR=http://deb.debian.org/debian
SUITE=bookworm
BASE_IMAGE=docker.io/library/debian:bookworm-slim
IMAGE=localhost/fanoutd:test

say() { printf 'package: %s\n' "$*"; }
fail() { printf 'package: FAIL: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, chroot, mount): sudo $0 $*"
for t in dpkg-buildpackage lintian debootstrap podman buildah curl; do
	command -v "$t" >/dev/null || fail "$t is missing (./bootstrap installs it)"
done

T=$(mktemp -d "${TMPDIR:-/var/tmp}/fanoutd-package.XXXXXX")
chmod 755 "$T"
ROOT=$T/root
PIDS=()
MOUNTS=()
CTR=
# the build stage's image (untagged, ~460 MB) is not kept: the untagged
# images that appeared since images.before (taken before podman build)
prune_build_stage() {
	[ -f "$T/images.before" ] || return 0
	podman images -qa --no-trunc --filter dangling=true | sort | comm -13 "$T/images.before" - |
		while read -r id; do podman rmi "$id" >/dev/null 2>&1 || true; done
}
cleanup() {
	local rc=$? p m i
	set +e
	for p in "${PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && { kill -TERM "$p"; sleep 0.5; kill -KILL "$p" 2>/dev/null; }
	done
	[ -n "$CTR" ] && buildah rm "$CTR" >/dev/null 2>&1
	prune_build_stage
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${MOUNTS[i]}
		mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
	done
	# never delete through a mount that is still there (a bound /dev)
	if findmnt -rn -o TARGET | grep -q "^$T/"; then
		echo "package: mounts left under $T, not removing it:" >&2
		findmnt -rn -o TARGET | grep "^$T/" >&2
	else
		rm -rf --one-file-system "$T"
	fi
	[ $rc -eq 0 ] || echo "package: FAILED (exit $rc)" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

START=$(date +%s)
declare -A TIMES
phase() { # phase NAME: ends the previous phase
	local now
	now=$(date +%s)
	[ -n "${PHASE:-}" ] && TIMES[$PHASE]=$((now - PHASE_START)) && say "$PHASE: $((now - PHASE_START)) s"
	PHASE=${1:-}
	PHASE_START=$now
	[ -z "$PHASE" ] || say "--- $PHASE"
}
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # wait_port PORT PID
	local i
	for i in $(seq 100); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -sf -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
		sleep 0.1
	done
	return 1
}
reaped() { # reaped PID: no longer ours to stop
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
human() { numfmt --to=iec-i --suffix=B "$1"; }

# --- 1. the tarball --------------------------------------------------------
VERSION=$(sed -n 's/^AC_INIT(\[fanoutd\], \[\([^]]*\)\].*/\1/p' configure.ac)
[ -n "$VERSION" ] || fail "no version in configure.ac"
TARBALL=$BUILD/fanoutd-$VERSION.tar.gz
rm -f "$TARBALL"
if [ "${PACKAGE_DISTCHECK:-yes}" = no ]; then
	phase dist
	make -C "$BUILD" -s dist >/dev/null
else
	phase distcheck
	make -C "$BUILD" -j"$(nproc)" distcheck > "$T/distcheck.log" 2>&1 ||
		{ tail -60 "$T/distcheck.log"; fail "make distcheck"; }
	grep -A2 'archives ready' "$T/distcheck.log"
fi
[ -f "$TARBALL" ] || fail "no $TARBALL"

# --- 2. the .deb -------------------------------------------------------------
phase deb
DEBREV=$(sed -n '1s/^fanoutd (\([^)]*\)).*/\1/p' debian/changelog)
mkdir "$T/deb"
tar -xzf "$TARBALL" -C "$T/deb"
cp "$TARBALL" "$T/deb/fanoutd_$VERSION.orig.tar.gz"
# the source package first, from the pristine tree (lintian checks it too)
(cd "$T/deb/fanoutd-$VERSION" && dpkg-source -b . > "$T/deb/source.log" 2>&1) ||
	{ cat "$T/deb/source.log"; fail "dpkg-source -b"; }
(cd "$T/deb/fanoutd-$VERSION" &&
	DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b -Pnocheck > "$T/deb/build.log" 2>&1) ||
	{ tail -60 "$T/deb/build.log"; fail "dpkg-buildpackage"; }
DEB=$T/deb/fanoutd_${DEBREV}_amd64.deb
[ -f "$DEB" ] || fail "no $DEB"
dpkg-deb -c "$DEB" | awk '{ print "  " $1, $3, $6 }'
dpkg-deb -f "$DEB" Depends | sed 's/^/  Depends: /'

phase lintian
# lintian wants no root: it runs as nobody on a readable copy
chmod -R a+rX "$T/deb"
lint() { runuser -u nobody -- env HOME=/tmp lintian -I -E --pedantic "$@" 2>&1; }
LINT=$(lint "$T/deb/fanoutd_${DEBREV}_amd64.changes" "$T/deb/fanoutd_${DEBREV}.dsc") ||
	[ -n "$LINT" ] || fail "lintian did not run"
printf '%s\n' "$LINT" | sed 's/^/  /'
if printf '%s\n' "$LINT" | grep -q '^[EW]: '; then
	fail "lintian reports errors or warnings"
fi
say "lintian: no errors or warnings ($(printf '%s\n' "$LINT" | grep -c '^[IPX]: ' || true) informational)"

# --- 3. one debootstrap tree --------------------------------------------------
phase debootstrap
mkdir -p "$CACHE/debootstrap" "$CACHE/apt"
debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" "$SUITE" "$ROOT" "$MIRROR" \
	> "$T/debootstrap.log" 2>&1 || { tail -30 "$T/debootstrap.log"; fail "debootstrap"; }
# the sources of a bookworm(-slim) system: updates and security too, so the
# chroot and the image get the libraries the .deb was linked against
rm -f "$ROOT/etc/apt/sources.list"
cat > "$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*_*
say "minbase tree: $(du -sh --apparent-size "$ROOT" | cut -f1)"

# the base image, a copy made like bookworm-slim (no docs, manual pages or
# locales; apt keeps no .debs) before anything is installed in the tree
phase base-image
cp -a "$ROOT" "$T/base"
B=$T/base
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
	'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
	'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
	'path-exclude /usr/share/lintian/*' > "$B/etc/dpkg/dpkg.cfg.d/docker"
printf '%s\n' 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
	'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
	'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' > "$B/etc/apt/apt.conf.d/docker-clean"
find "$B/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$B/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$B"/usr/share/man/* "$B"/usr/share/info/* "$B"/var/cache/apt/*.bin "$B"/var/log/*.log
find "$B/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# an earlier run's images go first (this script's tags only)
podman rmi -f "$IMAGE" >/dev/null 2>&1 || true
OLD_BASE=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
tar -C "$B" --numeric-owner -c . | podman import -q - "$BASE_IMAGE" > /dev/null
[ -z "$OLD_BASE" ] || podman rmi "$OLD_BASE" >/dev/null 2>&1 || true
rm -rf --one-file-system "$B"
podman image inspect --format '{{.Size}}' "$BASE_IMAGE" > "$T/base.size"
say "base image $BASE_IMAGE: $(human "$(cat "$T/base.size")")"

# --- 4. install, run, remove and purge in the chroot ----------------------------
phase chroot-install
mnt() { mount "$@"; MOUNTS+=("${*: -1}"); }
mnt -t proc proc "$ROOT/proc"
mnt --bind /dev "$ROOT/dev"
mnt --bind "$CACHE/apt" "$ROOT/var/cache/apt/archives"
mkdir -p "$ROOT/var/cache/apt/archives/partial"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# no service is started in the chroot
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/"
in_root() { chroot "$ROOT" "$@"; }
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
in_root apt-get update -qq > "$T/apt.log" 2>&1 || { cat "$T/apt.log"; fail "apt-get update in the chroot"; }
in_root apt-get install -y --no-install-recommends "/tmp/${DEB##*/}" > "$T/apt.log" 2>&1 ||
	{ cat "$T/apt.log"; fail "apt-get install ./fanoutd_*.deb in the chroot"; }
grep -E '^(Setting up|The following NEW)' "$T/apt.log" | sed 's/^/  /' | tail -20
[ "$(in_root dpkg-query -W -f '${Status}' fanoutd)" = "install ok installed" ] || fail "fanoutd not installed"
INSTALLED_KB=$(in_root dpkg-query -W -f '${Installed-Size}' fanoutd)
for f in /usr/sbin/fanoutd /usr/bin/fanout /etc/fanoutd/fanoutd.conf \
	/lib/systemd/system/fanoutd.service /lib/systemd/system/fanoutd.socket \
	/usr/share/man/man8/fanoutd.8.gz /usr/share/man/man5/fanoutd.conf.5.gz \
	/usr/share/man/man1/fanout.1.gz /usr/share/doc/fanoutd/copyright; do
	[ -e "$ROOT$f" ] || fail "$f is not installed"
done
grep -qx /etc/fanoutd/fanoutd.conf "$ROOT/var/lib/dpkg/info/fanoutd.conffiles" ||
	fail "/etc/fanoutd/fanoutd.conf is not a conffile"
grep -qx 'ExecStart=/usr/sbin/fanoutd -c /etc/fanoutd/fanoutd.conf' "$ROOT/lib/systemd/system/fanoutd.service" ||
	fail "the unit does not read /etc/fanoutd/fanoutd.conf"
# enabled the Debian way: deb-systemd-helper made the symlink (no systemd runs here)
[ -L "$ROOT/etc/systemd/system/multi-user.target.wants/fanoutd.service" ] ||
	fail "fanoutd.service was not enabled"
[ ! -e "$ROOT/etc/systemd/system/sockets.target.wants/fanoutd.socket" ] ||
	fail "fanoutd.socket should not be enabled"
say "installed: $(in_root fanoutd -V 2>&1 | head -1), Installed-Size ${INSTALLED_KB} KiB, unit enabled, conffile registered"

phase chroot-run
in_root fanoutd -t -c /etc/fanoutd/fanoutd.conf > "$T/t.log" 2>&1 || { cat "$T/t.log"; fail "fanoutd -t in the chroot"; }
say "fanoutd -t -c /etc/fanoutd/fanoutd.conf: $(head -1 "$T/t.log")"
# the test upstream on the host (built by make check: check_PROGRAMS)
make -C "$BUILD" -s tests/upstream
exec {UPFD}< <(exec "$BUILD/tests/upstream" --listen 127.0.0.1:0 2> "$T/upstream.log")
UP_PID=$!
PIDS+=("$UP_PID")
read -r -t 10 UP_PORT <&"$UPFD" || fail "the test upstream did not start: $(cat "$T/upstream.log")"
UP=http://127.0.0.1:$UP_PORT
PORT=$(free_port)
# as nobody, like the unit's DynamicUser
chroot --userspec=nobody:nogroup "$ROOT" /usr/sbin/fanoutd -c /etc/fanoutd/fanoutd.conf \
	-l "127.0.0.1:$PORT" 2> "$T/chroot-fanoutd.log" &
FD_PID=$!
PIDS+=("$FD_PID")
wait_port "$PORT" "$FD_PID" || { cat "$T/chroot-fanoutd.log"; fail "fanoutd in the chroot did not listen on $PORT"; }
in_root fanout -d "http://127.0.0.1:$PORT" "$UP/json" "$UP/delay/50" "$UP/status/204" "$UP/json?i=4" \
	> "$T/fanout.ndjson" 2> "$T/fanout.err" || { cat "$T/fanout.err"; fail "fanout in the chroot"; }
sed 's/^\(.\{150\}\).*/  \1.../' "$T/fanout.ndjson"
[ "$(grep -c '"status":20[04]' "$T/fanout.ndjson")" -eq 4 ] || fail "fanout: not 4 results"
kill -TERM "$FD_PID"
rc=0; wait "$FD_PID" || rc=$?
reaped "$FD_PID"
[ $rc -eq 0 ] || { cat "$T/chroot-fanoutd.log"; fail "fanoutd in the chroot exited $rc on SIGTERM"; }
say "fanoutd (pid $FD_PID, user nobody) served the batch, exit 0 on SIGTERM"

phase chroot-remove
echo '; a local change' >> "$ROOT/etc/fanoutd/fanoutd.conf"
in_root apt-get remove -y fanoutd > "$T/apt.log" 2>&1 || { cat "$T/apt.log"; fail "apt-get remove"; }
[ "$(in_root dpkg-query -W -f '${Status}' fanoutd)" = "deinstall ok config-files" ] || fail "remove: wrong status"
[ ! -e "$ROOT/usr/sbin/fanoutd" ] && [ ! -e "$ROOT/usr/bin/fanout" ] || fail "remove left the binaries"
tail -1 "$ROOT/etc/fanoutd/fanoutd.conf" | grep -qx '; a local change' || fail "remove did not keep the conffile"
say "apt-get remove: binaries gone, /etc/fanoutd/fanoutd.conf kept with the local change"
in_root apt-get purge -y fanoutd > "$T/apt.log" 2>&1 || { cat "$T/apt.log"; fail "apt-get purge"; }
! in_root dpkg-query -W fanoutd >/dev/null 2>&1 || in_root dpkg-query -W -f '${Status}\n' fanoutd | grep -q not-installed ||
	fail "purge: still known to dpkg"
[ ! -e "$ROOT/etc/fanoutd" ] || fail "purge left /etc/fanoutd"
[ ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/fanoutd.service" ] || fail "purge left the unit enabled"
say "apt-get purge: /etc/fanoutd and the enablement symlink gone"

# --- 5. the image ------------------------------------------------------------------
phase image-build
podman images -qa --no-trunc | sort > "$T/images.before"
CTX=$T/deb/ctx
mkdir "$CTX"
tar -xzf "$TARBALL" -C "$CTX" --strip-components=1
podman build --isolation=chroot --format docker -t "$IMAGE" -f "$CTX/Containerfile" "$CTX" \
	> "$T/podman-build.log" 2>&1 || { tail -40 "$T/podman-build.log"; fail "podman build"; }
sed -n '/STEP [0-9]\|^COMMIT/s/^/  /p' "$T/podman-build.log"
prune_build_stage
IMAGE_SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "image $IMAGE: $(human "$IMAGE_SIZE") ($(human $((IMAGE_SIZE - $(cat "$T/base.size")))) over the base)"
podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" > "$T/hc.json"
/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["Test"]; assert t[0]=="CMD"; print("\0".join(t[1:]), end="")' \
	"$T/hc.json" > "$T/hc.argv" || fail "the image has no HEALTHCHECK: $(cat "$T/hc.json")"
mapfile -d '' HC < "$T/hc.argv"

phase image-run
CTR=$(buildah from -q "$IMAGE")
CUID=$(buildah run --isolation chroot "$CTR" -- id -u)
[ "$CUID" != 0 ] || fail "the image runs as root"
say "buildah run $CTR -- id -u: $CUID ($(buildah run --isolation chroot "$CTR" -- id -un))"
CPORT=$(free_port)
buildah run --isolation chroot "$CTR" -- fanoutd -l "127.0.0.1:$CPORT" 2> "$T/ctr-fanoutd.log" &
RUN_PID=$!
PIDS+=("$RUN_PID")
wait_port "$CPORT" "$RUN_PID" || { cat "$T/ctr-fanoutd.log"; fail "fanoutd in the container did not listen"; }
# fanoutd itself, a descendant of buildah run: its uid from /proc
CPID=
for p in /proc/[0-9]*; do
	[ "$(cat "$p/comm" 2>/dev/null)" = fanoutd ] || continue
	tr '\0' ' ' < "$p/cmdline" | grep -q -- "-l 127.0.0.1:$CPORT" && CPID=${p#/proc/}
done
[ -n "$CPID" ] || fail "no fanoutd process for port $CPORT"
PIDS+=("$CPID")
PUID=$(awk '/^Uid:/ { print $2 }' "/proc/$CPID/status")
[ "$PUID" != 0 ] || fail "fanoutd in the container runs as root"
ANS=$(curl -sS --max-time 10 -d "[\"$UP/json\", \"$UP/delay/20\", \"$UP/json?i=3\"]" "http://127.0.0.1:$CPORT/v1/batch")
printf '%s\n' "$ANS" | sed 's/^\(.\{150\}\).*/  \1.../'
printf '%s' "$ANS" | /usr/bin/python3 -c 'import json,sys; a=json.load(sys.stdin); assert a["ok"] and [r["status"] for r in a["results"]]==[200,200,200], a' ||
	fail "the batch through the container failed"
# the health check, as the engine would run it: port 8642 in the image, so
# point it at this port
HC_PORT=("${HC[@]//8642/$CPORT}")
buildah run --isolation chroot "$CTR" -- "${HC_PORT[@]}" || fail "the image's HEALTHCHECK fails against a running fanoutd"
buildah run --isolation chroot "$CTR" -- fanout -o body -d "http://127.0.0.1:$CPORT" "$UP/json" > "$T/ctr-fanout.out" ||
	fail "fanout in the image"
kill -TERM "$CPID"
rc=0; wait "$RUN_PID" || rc=$?
reaped "$RUN_PID"; reaped "$CPID"
[ $rc -eq 0 ] || { cat "$T/ctr-fanoutd.log"; fail "buildah run fanoutd exited $rc on SIGTERM"; }
! buildah run --isolation chroot "$CTR" -- "${HC_PORT[@]}" 2>/dev/null ||
	fail "the HEALTHCHECK passes with no fanoutd running"
buildah rm "$CTR" >/dev/null
CTR=
say "fanoutd in the image (pid $CPID, uid $PUID) answered the batch; HEALTHCHECK ok (and fails once it is gone); fanout ok; exit 0 on SIGTERM"
kill -TERM "$UP_PID"; wait "$UP_PID" 2>/dev/null || true
reaped "$UP_PID"

phase
say "sizes: .deb $(human "$(stat -c %s "$DEB")"), installed ${INSTALLED_KB} KiB, image $(human "$IMAGE_SIZE") (base $(human "$(cat "$T/base.size")"))"
say "times: $(for k in distcheck dist deb lintian debootstrap base-image chroot-install chroot-run chroot-remove image-build image-run; do
	[ -n "${TIMES[$k]:-}" ] && printf '%s %ss, ' "$k" "${TIMES[$k]}"; done)total $(($(date +%s) - START)) s"
say "passed"
