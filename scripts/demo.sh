#!/usr/bin/env bash
# demo.sh ASSETD: show assetd working end to end, in a temporary directory
# that is removed at exit. `make demo` runs it as `./scripts/demo.sh bin/assetd`.
#
# It generates three sample avatars, signs and publishes them as an origin
# tree, serves the tree with `assetd origin` on a free loopback port, starts
# the daemon with a config that trusts the signing key, preloads the avatars
# through the daemon's socket, lists them, shows the cache's stats, publishes
# a new version of one avatar (one changed file: one new blob, one download),
# shows one error as a user sees it, then stops both servers with SIGTERM.
#
# Needs: bash, mktemp, sed, grep, find. Set ASSETD_DEMO_KEEP=1 to keep the
# temporary directory (and the logs in it) for a look afterwards.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
	echo "usage: $0 path/to/assetd   (make build writes bin/assetd)" >&2
	exit 2
fi
ASSETD=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

if [[ -t 1 ]]; then B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'; else B='' D='' N=''; fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/assetd-demo.XXXXXX")
ORIGIN_PID=
DAEMON_PID=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $DAEMON_PID $ORIGIN_PID; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in $DAEMON_PID $ORIGIN_PID; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ $rc -ne 0 ]]; then
		for log in origin.log daemon.log; do
			if [[ -s $WORK/$log ]]; then
				echo "--- last lines of $log ---" >&2
				tail -n 20 "$WORK/$log" >&2
			fi
		done
		echo "demo failed (exit $rc)" >&2
	fi
	if [[ ${ASSETD_DEMO_KEEP:-} == 1 ]]; then
		echo "kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
# assetd runs the binary under test; run shows a command, then runs it.
assetd() { "$ASSETD" "$@"; }
run() {
	printf '%s$ %s%s\n' "$D" "$*" "$N"
	"$@"
}
# wait_for NAME PID COMMAND...: poll COMMAND until it succeeds, for at most
# ten seconds, failing early if the process PID has exited.
wait_for() {
	local name=$1 pid=$2
	shift 2
	for _ in $(seq 100); do
		if "$@"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before it was ready" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$name not ready after 10 seconds" >&2
	return 1
}

cd "$WORK"
export ASSETD_SOCKET=$WORK/assetd.sock

section "Sample avatars (generated, identical bytes on every run)"
run assetd samples src

section "A signing key, and the origin tree that publish writes"
run assetd keygen --out signing >/dev/null
echo "public key: $(cat signing.pub)"
run assetd publish src site --sign signing.key
echo "files in the tree: $(find site -type f | wc -l) ($(find site/v1/blobs -type f | wc -l) blobs: the shared file is stored once)"

section "Serving the tree: assetd origin on a free loopback port"
echo demo-app >app-ids.txt
printf '%s$ %s%s\n' "$D" "assetd origin --root site --listen 127.0.0.1:0 --app-ids app-ids.txt &" "$N"
"$ASSETD" origin --root site --listen 127.0.0.1:0 --app-ids app-ids.txt >origin.out 2>origin.log &
ORIGIN_PID=$!
wait_for origin "$ORIGIN_PID" grep -q '^listening on ' origin.out
ORIGIN_URL=$(sed -n 's/^listening on //p' origin.out)
echo "origin at $ORIGIN_URL"

section "The daemon: assetd serve"
cat >assetd.toml <<TOML
[origin]
url = "$ORIGIN_URL"
app_id = "demo-app"
trusted_keys = ["$(cat signing.pub)"]

[store]
dir = "$WORK/state"
max_bytes = "1GiB"
reserve_bytes = "16MiB"
scrub_interval = "0"

[api]
socket = "$WORK/assetd.sock"
socket_mode = "0600"

[preload]
avatars = []

[log]
level = "info"
TOML
sed 's/^./    &/' assetd.toml
printf '%s$ %s%s\n' "$D" "assetd serve --config assetd.toml &" "$N"
"$ASSETD" serve --config assetd.toml >daemon.log 2>&1 &
DAEMON_PID=$!
daemon_ready() { "$ASSETD" stats >/dev/null 2>&1; }
wait_for daemon "$DAEMON_PID" daemon_ready
echo "daemon ready on $ASSETD_SOCKET"

section "Preload three avatars (downloaded, verified, cached)"
run assetd preload rohan mei aria

section "What the cache holds"
run assetd ls
run assetd stats

section "A new version of mei: one changed file, one new blob, one download"
printf 'second edition\n' >>src/mei/texture.bin
echo 2026-11-02.1 >src/mei/VERSION
run assetd publish src site --sign signing.key
run assetd preload mei
run assetd ls

section "An error, as a user sees it"
printf '%s$ %s%s\n' "$D" "assetd preload nobody-here" "$N"
set +e
out=$(assetd preload nobody-here 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
echo "(exit code $rc)"
if [[ $rc -ne 1 || $out != *avatarIDUnrecognized* ]]; then
	echo "expected avatarIDUnrecognized and exit code 1" >&2
	exit 1
fi

section "Stop (SIGTERM)"
stop() {
	local name=$1 pid=$2 rc=0
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	echo "$name stopped (exit code $rc)"
	[[ $rc -eq 0 ]]
}
stop daemon "$DAEMON_PID"
DAEMON_PID=
stop origin "$ORIGIN_PID"
ORIGIN_PID=

section "Done"
echo "assetd published, served, fetched, verified and cached three avatars."
