#!/bin/sh
# An artifact upload over the TCP API (issue 6): how long it takes and how
# long the daemon's loop was held. Prints figures.
#
#   bench/artifact-upload.sh [MB]          (default 100)
#
# A daemon with `--api` and its own GANTRY_HOME; a client directory with no
# state dir deploys over GANTRY_API twice: an artifact of one MB-sized file,
# then one of MB*20 files of 50 kB. For each it prints
#   upload:   the daemon's own figures (log line of op=artifact_upload): bytes,
#             ms from the head to the reply, max_step_us (the longest unpack
#             step on the thread pool: one read's worth of writes, or the finish)
#   probe:    GET /v1/ping sent every 20 ms while the upload runs: the slowest
#             answer (connect included), i.e. what another API client felt
#   deploy:   wall time of `gantry deploy` (pack pass + upload + deploy op)
# and, as a baseline, the same deploy again (nothing to upload): the probe
# then shows what the deploy operation itself costs other clients.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=${GANTRY:-$ROOT/gantry}
MB=${1:-100}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gantry-ubench.XXXXXX")
export GANTRY_HOME=$WORK/home
SERVE_PID=
PROBE=
cleanup() {
	[ -n "$PROBE" ] && kill "$PROBE" 2>/dev/null
	[ -n "$SERVE_PID" ] && kill -TERM "$SERVE_PID" 2>/dev/null && sleep 2
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM PIPE
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
(cd "$WORK" && exec setsid "$G" serve --listen "127.0.0.1:$(free_port)" --admin "127.0.0.1:$(free_port)" \
	--api "127.0.0.1:$API_PORT" >"$WORK/serve.log" 2>&1) &
SERVE_PID=$!
i=0
until "$G" status >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "serve did not start"; cat "$WORK/serve.log"; exit 1; }
	sleep 0.1
done
TOKEN=$("$G" user add bench --role deployer 2>/dev/null)

mkdir -p "$WORK/client/app"
cp "$ROOT/examples/hello/hello" "$WORK/client/app/"
cat >"$WORK/client/gantry.yaml" <<YAML
project: bench
environments:
  staging: { replicas: 1 }
services:
  hello:
    artifact: app
    run: ./hello
    probes:
      readiness: { http: /ready, period: 100ms }
YAML

# probe OUT: pings until killed, then writes the slowest answer (ms) to OUT
cat >"$WORK/probe.py" <<'PY'
import signal, sys, time, urllib.request
url, out = sys.argv[1], sys.argv[2]
worst, n = 0.0, 0
def stop(*_):
    open(out, "w").write("%.1f ms over %d pings" % (worst, n))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
end = time.time() + 600
while time.time() < end:
    t = time.time()
    urllib.request.urlopen(url, timeout=10).read()
    worst = max(worst, (time.time() - t) * 1000)
    n += 1
    time.sleep(0.02)
stop()
PY

run() {
	label=$1
	python3 "$WORK/probe.py" "$API/v1/ping" "$WORK/probe.out" &
	PROBE=$!
	sleep 0.3
	t0=$(date +%s%N)
	(cd "$WORK" && env -u GANTRY_HOME GANTRY_API="$API" GANTRY_TOKEN="$TOKEN" \
		"$G" -f client/gantry.yaml deploy hello --env staging --version "$label" >/dev/null 2>"$WORK/deploy.err") ||
		{ cat "$WORK/deploy.err"; exit 1; }
	t1=$(date +%s%N)
	kill -TERM "$PROBE"; wait "$PROBE" 2>/dev/null; PROBE=
	echo "== $label"
	if grep -q "already on the server" "$WORK/deploy.err"; then
		echo "  upload: none (already on the server)"
	else
		echo "  upload: $(grep "op=artifact_upload .*status=201" "$WORK/serve.log" | tail -1 |
			sed 's/.*\(bytes=[0-9]*\) \(ms=[0-9]*\) \(max_step_us=[0-9]*\).*/\1 \2 \3/')"
	fi
	echo "  probe:  slowest GET /v1/ping $(cat "$WORK/probe.out")"
	echo "  deploy: $(( (t1 - t0) / 1000000 )) ms wall ($(grep -c . "$WORK/deploy.err") lines: $(head -1 "$WORK/deploy.err"))"
}

python3 -c "import os, sys; open(sys.argv[1], 'wb').write(os.urandom($MB * 1000 * 1000))" "$WORK/client/app/blob.bin"
run "one-file-${MB}MB"
rm "$WORK/client/app/blob.bin"
mkdir -p "$WORK/client/app/many"
python3 -c "
import os, sys
for i in range($MB * 20):
    open(os.path.join(sys.argv[1], 'f%05d' % i), 'wb').write(os.urandom(50000))" "$WORK/client/app/many"
run "$((MB * 20))-files-of-50kB"
run "again-no-upload"
