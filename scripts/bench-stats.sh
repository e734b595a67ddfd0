#!/usr/bin/env bash
# zk-stats end to end: offline throughput on a large capture of real server
# traffic, against the I/O floor and the Python peer, in one run.
#
#   ./scripts/bench-stats.sh                       ~300 MiB capture, best of 5
#   ZKT_BENCH_MB=1000 ZKT_BENCH_RUNS=7 ./scripts/bench-stats.sh
#   ZKT_BENCH_FLOOD=0 ./scripts/bench-stats.sh     skip the HTTP-flood run
#   ZKT_BENCH_LIVE=0 ./scripts/bench-stats.sh      skip the live replay
#
# Steps: build zk-stats and zk-pcap-amplify (release); amplify demo/demo.pcap
# (a real ZooKeeper 3.8 server) and the shared zktraffic client captures
# into target/bench/stats/amplified.pcap (every replica with client
# addresses of its own) and a small sample of the same mix for the Python
# peer; set up the peer's venv under target/bench/stats/peer-venv (PyPI:
# zktraffic, kazoo, scapy 2.5.0); then, on a warm page cache:
#
#   cat FILE > /dev/null                    plain read of the file
#   zk-stats --offline FILE --io-floor      every packet through the same
#                                           libpcap reader, nothing else
#                                           (the I/O floor)
#   zk-stats --offline FILE --json-out OUT  the whole stats pipeline (the
#                                           file read on a thread of its own)
#   ... --no-read-ahead                     the same on one core
#   python zktraffic_peer.py SAMPLE         the older Python decoder
#   zk-stats --offline SAMPLE --json-out    the same sample
#
# and, unless ZKT_BENCH_FLOOD=0, zk-stats --offline FILE with its HTTP
# server answering a flood of requests while it reads (time to finish,
# against the same run without the flood); unless ZKT_BENCH_LIVE=0 (and
# when root with tcpreplay), a live capture: tcpreplay --topspeed of FILE
# into a veth pair inside a throwaway network namespace, zk-stats --iface
# on the other end, reporting the replay rate and kernel drops.
#
# Reports packets/s, the ratio to the I/O floor and to the peer, and peak
# RSS (from /usr/bin/time when installed).
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb="${ZKT_BENCH_MB:-300}"
peer_mb="${ZKT_PEER_MB:-20}"
runs="${ZKT_BENCH_RUNS:-5}"
flood="${ZKT_BENCH_FLOOD:-1}"
live="${ZKT_BENCH_LIVE:-1}"
captures_dir="${ZKT_CAPTURES:-$(cd .. && pwd)/shared/captures/zktraffic}"
peer_script="${ZKT_PEER:-$(cd .. && pwd)/shared/peers/zktraffic_peer.py}"
out_dir=target/bench/stats
file="$out_dir/amplified.pcap"
sample="$out_dir/peer-sample.pcap"
venv="$out_dir/peer-venv"
stats=target/release/zk-stats

step() { printf '\n==> %s\n' "$*"; }

step "building zk-stats and zk-pcap-amplify (release)"
cargo build --release --locked -p zk-traffic --bin zk-stats -p zk-traffic-benches --bin zk-pcap-amplify

inputs=()
[ -f demo/demo.pcap ] && inputs+=(demo/demo.pcap)
if [ -d "$captures_dir" ]; then
  for f in "$captures_dir"/*.pcap; do
    case "$(basename "$f")" in zab_* | omni*) ;; *) inputs+=("$f") ;; esac
  done
fi
if ((${#inputs[@]} == 0)); then
  echo "no input capture (demo/demo.pcap, $captures_dir/*.pcap)" >&2
  exit 1
fi

step "amplifying ${#inputs[@]} captures to ~${size_mb} MiB (and ~${peer_mb} MiB for the peer)"
mkdir -p "$out_dir"
target/release/zk-pcap-amplify --input "${inputs[@]}" --output "$file" --size-mb "$size_mb"
target/release/zk-pcap-amplify --input "${inputs[@]}" --output "$sample" --size-mb "$peer_mb"
bytes=$(stat -c %s "$file")

if [ ! -x "$venv/bin/python" ]; then
  step "setting up the Python peer in $venv (PyPI: zktraffic kazoo, scapy 2.5.0)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q zktraffic kazoo
  "$venv/bin/pip" install -q scapy==2.5.0 2>&1 | grep -v "dependency resolver\|requires scapy" || true
fi

# Warm the page cache so every command reads from memory.
cat "$file" "$sample" >/dev/null

have_time=0
[ -x /usr/bin/time ] && have_time=1

# best_of NAME CMD...: runs CMD $runs times; keeps the fastest figure in
# $best (the `seconds=` zk-stats prints, else the wall time) and the last
# run's stderr in $out_dir/NAME.stderr, peak RSS (KiB) in $rss.
best_of() {
  local name=$1
  shift
  best=""
  rss=""
  for ((i = 0; i < runs; i++)); do
    local t0 t1 el rc=0
    t0=$(date +%s.%N)
    if ((have_time)); then
      /usr/bin/time -f '%M' -o "$out_dir/$name.rss" "$@" >/dev/null 2>"$out_dir/$name.stderr" || rc=$?
    else
      "$@" >/dev/null 2>"$out_dir/$name.stderr" || rc=$?
    fi
    t1=$(date +%s.%N)
    if ((rc != 0)); then
      echo "$name: exit code $rc; stderr:" >&2
      tail -n 20 "$out_dir/$name.stderr" >&2
      exit 1
    fi
    el=$(grep -o 'seconds=[0-9.]*' "$out_dir/$name.stderr" | tail -n 1 | cut -d= -f2 || true)
    [ -n "$el" ] || el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ -z "$best" ] || awk -v a="$el" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$el
    fi
  done
  ((have_time)) && rss=$(tail -n 1 "$out_dir/$name.rss")
  echo "$name: best ${best} s${rss:+, peak RSS $((rss / 1024)) MiB}"
}

packets=$("$stats" --offline "$file" --io-floor 2>&1 | grep -o 'packets=[0-9]*' | head -n 1 | cut -d= -f2)
step "timing (best of $runs, warm cache): $packets packets, $((bytes >> 20)) MiB"
best_of cat cat "$file"
t_cat=$best
best_of floor "$stats" --offline "$file" --io-floor
t_floor=$best
best_of stats "$stats" --offline "$file" --json-out "$out_dir/out.json"
t_stats=$best
rss_stats=$rss
best_of stats1 "$stats" --offline "$file" --json-out "$out_dir/out1.json" --no-read-ahead
t_stats1=$best

step "the Python peer on the ~${peer_mb} MiB sample"
"$venv/bin/python" "$peer_script" "$sample" 2181 >"$out_dir/peer.json" 2>"$out_dir/peer.stderr"
peer_pps=$("$venv/bin/python" -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["packets_per_s"])' "$out_dir/peer.json")
peer_packets=$("$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$out_dir/peer.json")
best_of sample "$stats" --offline "$sample" --json-out "$out_dir/sample.json"
t_sample=$best

step "zk-stats' own counters (last full run)"
cat "$out_dir/stats.stderr"

t_flood=""
t_quiet=""
if [ "$flood" = 1 ]; then
  step "HTTP flood while reading (offline with the server on)"
  # time_to_finish FLOOD: starts zk-stats with its server, optionally
  # floods it from 16 keep-alive clients, and returns the capture thread's
  # own time to read the file.
  time_to_finish() {
    local with_flood=$1 log="$out_dir/http.stderr" pid addr i
    # One capture thread (--no-read-ahead): the figure is what serving
    # costs the thread that decodes, with the load generator on the other core.
    "$stats" --offline "$file" --http-port 0 --refresh 0.2 --no-read-ahead >/dev/null 2>"$log" &
    pid=$!
    for ((i = 0; i < 200; i++)); do
      addr=$(sed -n 's/^zk-stats: serving http:\/\///p' "$log")
      [ -n "$addr" ] && break
      sleep 0.01
    done
    local flooders=()
    if [ "$with_flood" = 1 ]; then
      # 16 keep-alive clients, as fast as they go, for at most 30 s.
      rm -f "$out_dir/flood.stop" "$out_dir/flood.count"
      # The load generator gets one CPU of its own (the last), so that it
      # does not take the capture thread's.
      local pin=()
      if command -v taskset >/dev/null && (($(nproc) > 1)); then
        pin=(taskset -c "$(($(nproc) - 1))")
      fi
      "${pin[@]}" python3 - "$addr" "$out_dir/flood.count" "$out_dir/flood.stop" <<'PY' &
import http.client, os, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
done = [0]
stop = time.time() + 30
def run():
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    urls = ["/json/paths?window=cumulative", "/metrics", "/json/ips?window=cumulative", "/json/info"]
    i = 0
    while time.time() < stop and not os.path.exists(sys.argv[3]):
        try:
            c.request("GET", urls[i % len(urls)])
            c.getresponse().read()
            done[0] += 1
        except Exception:
            c = http.client.HTTPConnection(host, int(port), timeout=10)
        i += 1
ts = [threading.Thread(target=run, daemon=True) for _ in range(16)]
[t.start() for t in ts]
[t.join() for t in ts]
open(sys.argv[2], "w").write(str(done[0]))
PY
      flooders+=($!)
    fi
    for ((i = 0; i < 6000; i++)); do
      grep -q 'seconds=' "$log" 2>/dev/null && break
      grep -q '^zk-stats: packets=' "$log" 2>/dev/null && break
      sleep 0.01
    done
    if ((${#flooders[@]})); then
      touch "$out_dir/flood.stop"
      wait "${flooders[@]}" 2>/dev/null || true
    fi
    kill -INT "$pid"
    wait "$pid" || true
    # The capture thread prints its counters when the file is read; the
    # figure is its own processing time.
    grep -o 'capture_seconds=[0-9.]*' "$log" | cut -d= -f2
  }
  t_quiet=$(time_to_finish 0)
  t_flood=$(time_to_finish 1)
  echo "read with the server idle: ${t_quiet} s; under a flood of requests: ${t_flood} s"
  echo "(requests answered by the end of the flood: $(cat "$out_dir/flood.count" 2>/dev/null || echo '?'))"
fi

live_pps=""
live_drops=""
live_seen=""
if [ "$live" = 1 ] && [ "$(id -u)" = 0 ] && command -v tcpreplay >/dev/null; then
  step "live: tcpreplay --topspeed into a veth pair, zk-stats --iface on the other end"
  ns="zkt-bench-$$"
  ip netns add "$ns"
  lpid=""
  trap '[ -n "$lpid" ] && kill "$lpid" 2>/dev/null; ip netns del "$ns" 2>/dev/null || true' EXIT
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip link add va type veth peer name vb
  for dev in va vb; do ip netns exec "$ns" ip link set "$dev" mtu 9000 up; done
  log="$out_dir/live.stderr"
  ip netns exec "$ns" "$stats" --iface vb --http-port 0 --refresh 0.2 >/dev/null 2>"$log" &
  lpid=$!
  for ((i = 0; i < 500; i++)); do
    grep -q 'listening on' "$log" && break
    sleep 0.01
  done
  addr=$(sed -n 's/^zk-stats: serving http:\/\///p' "$log")
  ip netns exec "$ns" tcpreplay --topspeed -i va "$file" >"$out_dir/tcpreplay.out" 2>&1
  cat "$out_dir/tcpreplay.out" | grep -E 'Actual|Rated|Failed|Retried' || true
  # Let zk-stats publish, then read its counters.
  for ((i = 0; i < 100; i++)); do
    live_seen=$(ip netns exec "$ns" python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen("http://"+sys.argv[1]+"/json/info"))["capture"]["packets"])' "$addr")
    [ "$live_seen" -ge "$packets" ] && break
    sleep 0.1
  done
  kill -INT "$lpid"
  wait "$lpid" || true
  live_drops=$(grep -o 'kernel_drops=[0-9]*' "$log" | tail -n 1 | cut -d= -f2 || true)
  live_pps=$(sed -n 's/.*Rated: .* \([0-9.]*\) pps.*/\1/p' "$out_dir/tcpreplay.out" | head -n 1)
  echo "zk-stats counted $live_seen of $packets packets; kernel drops: $live_drops"
  ip netns del "$ns"
  trap - EXIT
fi

step "results"
awk -v p="$packets" -v b="$bytes" -v c="$t_cat" -v f="$t_floor" -v s="$t_stats" -v s1="$t_stats1" \
  -v pp="$peer_pps" -v pn="$peer_packets" -v ts="$t_sample" -v rss="$rss_stats" \
  -v q="$t_quiet" -v fl="$t_flood" -v lp="$live_pps" -v ld="$live_drops" -v ls="$live_seen" 'BEGIN {
  mb = b / 1e6
  printf "%-44s %9s %14s %10s %14s\n", "", "seconds", "packets/s", "MB/s", "x I/O floor"
  printf "%-44s %9.3f %14.0f %10.1f %14s\n", "cat > /dev/null (plain read)", c, p / c, mb / c, "-"
  printf "%-44s %9.3f %14.0f %10.1f %14s\n", "zk-stats --io-floor (libpcap read only)", f, p / f, mb / f, "1.0"
  printf "%-44s %9.3f %14.0f %10.1f %14.2f\n", "zk-stats --offline --json-out", s, p / s, mb / s, s / f
  printf "%-44s %9.3f %14.0f %10.1f %14.2f\n", "  the same on one core (--no-read-ahead)", s1, p / s1, mb / s1, s1 / f
  printf "\nPython peer (zktraffic 0.2.0) on %d packets: %.0f packets/s\n", pn, pp
  printf "zk-stats on the same sample: %.0f packets/s (%.0fx the peer)\n", pn / ts, (pn / ts) / pp
  printf "zk-stats on the large capture: %.0f packets/s (%.0fx the peer)\n", p / s, (p / s) / pp
  if (rss != "") printf "zk-stats peak RSS: %.1f MiB\n", rss / 1024
  if (q != "" && fl != "") printf "HTTP flood: capture took %.3f s with the server idle, %.3f s under the flood (%.2fx)\n", q, fl, fl / q
  if (lp != "") printf "live: tcpreplay --topspeed at %.0f packets/s; zk-stats counted %d of %d packets, kernel drops %d\n", lp, ls, p, ld
}'
