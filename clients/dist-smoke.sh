#!/usr/bin/env bash
# dist-smoke.sh ASSETD PYTHON3 DIST: install the packages `make clients-dist`
# built in DIST (the Python wheel and sdist, the npm tarball) where nothing
# else is (a fresh venv each, with no index; an empty npm project) and use
# each against a real `assetd serve` on a socket in a temporary directory.
set -euo pipefail

if [[ $# -ne 3 ]]; then
	echo "usage: $0 path/to/assetd python3 dist-dir" >&2
	exit 2
fi
ASSETD=$(realpath "$1") PY=$2 DIST=$(realpath "$3")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/assetd-clients-dist.XXXXXX")
DAEMON_PID=
cleanup() {
	local rc=$?
	if [[ -n $DAEMON_PID ]]; then
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [[ $rc -ne 0 && -s $WORK/daemon.log ]]; then tail -n 20 "$WORK/daemon.log" >&2; fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT

SOCK=$WORK/assetd.sock
cat >"$WORK/assetd.toml" <<TOML
[store]
dir = "$WORK/state"
reserve_bytes = "0"
scrub_interval = "0"
[api]
socket = "$SOCK"
socket_mode = "0600"
TOML
"$ASSETD" serve --config "$WORK/assetd.toml" >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 300); do
	[[ -S $SOCK ]] && "$ASSETD" --socket "$SOCK" stats >/dev/null 2>&1 && break
	kill -0 "$DAEMON_PID" 2>/dev/null || { echo "assetd serve exited" >&2; exit 1; }
	sleep 0.1
done

# What each installed package must do: reach the daemon, find nothing
# cached, and name a missing socket DaemonNotRunning.
PY_SMOKE='
import sys, pathlib, assetd
with assetd.Client(sys.argv[1]) as c:
    assert c.health()["status"] == "ok"
    assert c.retrieve("rohan") is None
    assert c.stats().total_entries == 0
try:
    assetd.Client(sys.argv[1] + ".none").stats()
    raise SystemExit("no error")
except assetd.DaemonNotRunning:
    pass
pkg = pathlib.Path(assetd.__file__).parent
assert (pkg / "py.typed").exists() and "site-packages" in str(pkg), pkg
print("python", assetd.__version__, "from", pkg)
'
# The wheel goes into a bare venv; the sdist is built there by Debian's
# setuptools and wheel (the venv sees the system's packages, and no index).
for kind in whl tar.gz; do
	pkg=$(ls "$DIST"/python/assetd-*."$kind")
	opt=
	[[ $kind == whl ]] || opt=--system-site-packages
	"$PY" -m venv $opt "$WORK/venv-$kind"
	(cd "$WORK" && "$WORK/venv-$kind/bin/pip" install -q --no-index --no-build-isolation "$pkg")
	(cd "$WORK" && "$WORK/venv-$kind/bin/python" -c "$PY_SMOKE" "$SOCK") | sed "s/^/$kind: /"
done

mkdir "$WORK/npm-project"
cd "$WORK/npm-project"
npm init -y >/dev/null
npm install --no-audit --no-fund --loglevel=error "$(ls "$DIST"/node/assetd-client-*.tgz)" >/dev/null
test -f node_modules/@assetd/client/dist/index.d.ts
node --input-type=module -e '
import assert from "node:assert/strict";
import { AssetdClient, ErrorCode } from "@assetd/client";
const c = new AssetdClient({ socketPath: process.argv[1] });
assert.equal((await c.health()).status, "ok");
assert.equal(await c.retrieve("rohan"), null);
assert.equal((await c.getCacheStats()).totalEntries, 0);
c.close();
const none = new AssetdClient({ socketPath: process.argv[1] + ".none" });
await assert.rejects(none.getCacheStats(), { code: ErrorCode.daemonNotRunning });
console.log("tgz: @assetd/client works from an empty npm project");
' "$SOCK"
echo "clients-dist: the wheel, the sdist and the npm tarball install and work"
