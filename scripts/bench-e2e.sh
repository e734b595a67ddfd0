#!/usr/bin/env bash
# End-to-end throughput of zk-dump over a large capture, against the I/O floor.
#
#   ./scripts/bench-e2e.sh                 ~300 MB capture, best of 3 runs each
#   ZKT_BENCH_MB=1000 ZKT_BENCH_RUNS=5 ./scripts/bench-e2e.sh
#
# Steps: build zk-dump and zk-pcap-amplify (release); amplify demo/demo.pcap
# (a real ZooKeeper 3.8 server, when present) and the shared zktraffic
# captures into target/bench/amplified.pcap (every connection replayed with
# its own client address, 64 replicas in flight, payloads and sequence
# numbers unchanged); then time, in one run and on a warm page cache:
#
#   cat FILE > /dev/null                       the I/O floor
#   zk-dump --offline FILE --json > /dev/null  NDJSON output
#   zk-dump --offline FILE > /dev/null         text output
#
# and report packets/s, MB/s (of capture file), and the ratios. The
# per-process peak RSS comes from /usr/bin/time when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb="${ZKT_BENCH_MB:-300}"
runs="${ZKT_BENCH_RUNS:-3}"
captures_dir="${ZKT_CAPTURES:-$(cd .. && pwd)/shared/captures/zktraffic}"
out_dir=target/bench
file="$out_dir/amplified.pcap"

step() { printf '\n==> %s\n' "$*"; }

step "building zk-dump and zk-pcap-amplify (release)"
cargo build --release --locked -p zk-traffic --bin zk-dump -p zk-traffic-benches --bin zk-pcap-amplify
dump=target/release/zk-dump

inputs=()
[ -f demo/demo.pcap ] && inputs+=(demo/demo.pcap)
if [ -d "$captures_dir" ]; then
  inputs+=("$captures_dir"/*.pcap)
fi
if ((${#inputs[@]} == 0)); then
  echo "no input capture (demo/demo.pcap, $captures_dir/*.pcap)" >&2
  exit 1
fi

step "amplifying ${#inputs[@]} captures to ~${size_mb} MiB"
mkdir -p "$out_dir"
stats=$(target/release/zk-pcap-amplify --input "${inputs[@]}" --output "$file" --size-mb "$size_mb")
echo "$stats"
packets=$(tr ' ' '\n' <<<"$stats" | sed -n 's/^packets=//p')
bytes=$(stat -c %s "$file")

# Warm the page cache so every command reads from memory.
cat "$file" >/dev/null

have_time=0
[ -x /usr/bin/time ] && have_time=1

# best_of NAME CMD...: runs CMD $runs times (stdout to /dev/null), keeps the
# fastest wall time in $best and the last run's stderr in $out_dir/NAME.stderr.
best_of() {
  local name=$1
  shift
  best=""
  rss=""
  local all=()
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
    el=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    all+=("$el")
    if [ -z "$best" ] || awk -v a="$el" -v b="$best" 'BEGIN { exit !(a < b) }'; then
      best=$el
    fi
  done
  ((have_time)) && rss=$(tail -n 1 "$out_dir/$name.rss")
  echo "$name: ${all[*]} s (best $best s${rss:+, peak RSS $((rss / 1024)) MiB})"
}

step "timing (best of $runs, warm cache): $packets packets, $((bytes >> 20)) MiB"
best_of cat cat "$file"
t_cat=$best
best_of json "$dump" --offline "$file" --json
t_json=$best
best_of text "$dump" --offline "$file"
t_text=$best

step "zk-dump's own counters (text run, stderr)"
tail -n 15 "$out_dir/text.stderr"

step "results"
awk -v p="$packets" -v b="$bytes" -v c="$t_cat" -v j="$t_json" -v t="$t_text" 'BEGIN {
  mb = b / 1e6
  printf "%-34s %9s %14s %10s %12s\n", "", "seconds", "packets/s", "MB/s", "x I/O floor"
  printf "%-34s %9.3f %14.0f %10.1f %12s\n", "cat > /dev/null (I/O floor)", c, p / c, mb / c, "1.0"
  printf "%-34s %9.3f %14.0f %10.1f %12.1f\n", "zk-dump --offline --json", j, p / j, mb / j, j / c
  printf "%-34s %9.3f %14.0f %10.1f %12.1f\n", "zk-dump --offline (text)", t, p / t, mb / t, t / c
  printf "\njson / text time: %.2f\n", j / t
}'
