#!/usr/bin/env bash
# layers.sh BIN NAME: where a raftkv leader's CPU goes, by layer.
#
# Starts a 3-node cluster of BIN (`raftkv cluster`, ports 12379-32380),
# warms it up, puts 64 clients on the leader for 16 s (`raftkv bench`) and
# records the leader with perf for 10 s of it, then prints writes/s, the
# leader's CPU per write, and its samples by layer (classify.py). Build BIN
# with frame pointers so the stacks reach the layer's code:
#   RUSTFLAGS="-C force-frame-pointers=yes" cargo build --release -p raftkv
# Needs perf and curl; the cluster is stopped on exit.
set -euo pipefail
BIN=$1; NAME=$2; D=${PROFILE_DIR:-/tmp/raftkv-profile}/$NAME
rm -rf "$D"; mkdir -p "$D"
"$BIN" cluster --data-dir "$D/data" --fresh > "$D/cluster.log" 2>&1 &
CL=$!
trap 'kill $CL 2>/dev/null; wait $CL 2>/dev/null || true' EXIT
E=http://127.0.0.1:12380,http://127.0.0.1:22380,http://127.0.0.1:32380
for i in $(seq 100); do curl -sf localhost:12380/status 2>/dev/null | grep -q "\"leader\":[1-9]" && break; sleep 0.2; done
"$BIN" bench --endpoints $E --leader --clients 64 --duration 5s > /dev/null
L=$(curl -s localhost:12380/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
PID=$(pgrep -f -- "--id $L --cluster" | head -1)
"$BIN" bench --endpoints $E --leader --clients 64 --duration 16s > "$D/bench.log" 2>&1 &
B=$!
sleep 3
T0=$(awk '{print $14+$15}' /proc/$PID/stat)
perf record -F 999 --call-graph fp -p $PID -o "$D/perf.data" -- sleep 10 2> /dev/null
T1=$(awk '{print $14+$15}' /proc/$PID/stat)
wait $B
W=$(grep -o 'total: *[0-9]* ops ([0-9.]*' "$D/bench.log" | grep -o '[0-9.]*$')
echo "$NAME: writes/s $W"
python3 - "$W" "$T0" "$T1" "$(getconf CLK_TCK)" <<'PY'
import sys
w = float(sys.argv[1]); hz = int(sys.argv[4])
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / hz
print(f"leader CPU per write: {cpu / (w * 10) * 1e6:.1f} us")
PY
perf script -i "$D/perf.data" 2>/dev/null | python3 "$(dirname "$0")/classify.py"
