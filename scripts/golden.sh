#!/usr/bin/env bash
# Golden outputs: every decoding tool's output on every capture, written to
# a folder, so that two builds can be compared byte for byte (a refactor
# must leave them identical).
#
#   ./scripts/golden.sh OUT_DIR [CAPTURE ...]
#   diff -r BEFORE_DIR AFTER_DIR
#
# Without CAPTURE arguments it takes demo/*.pcap and $ZKT_CAPTURES/*.pcap
# (default ../shared/captures/zktraffic). Binaries come from
# $ZKT_BIN_DIR (default target/release, built here when it is the default).
#
# For each capture NAME it writes, stdout and stderr apart (stderr without
# the lines that carry timings):
#   NAME.zk-dump.json       zk-dump --json --include-pings --unpaired
#   NAME.zk-dump.txt        zk-dump --include-pings --unpaired
#   NAME.zk-dump.count      zk-dump --count-requests 1000000 --group-by type
#   NAME.zk-dump.latency    zk-dump --measure-latency 1000000 --group-by type
#   NAME.fle-dump.json      fle-dump --json (ports 3888 and the fixtures' own)
#   NAME.fle-dump.summary   fle-dump --summary, and .summary.json
#   NAME.zab-dump.json      zab-dump --json --include-pings (2888 and the fixtures')
#   NAME.zab-dump.summary   zab-dump --summary, and .summary.json
#   NAME.omni.json          zk-omni-dump --json --include-pings
#   NAME.omni.summary       zk-omni-dump --summary
#   NAME.zk-stats.{paths,ips,auths}.json  zk-stats --offline --json-out ...
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/golden.sh OUT_DIR [CAPTURE ...]}
shift
bin=${ZKT_BIN_DIR:-target/release}
if [ -z "${ZKT_BIN_DIR:-}" ]; then
  cargo build --release --locked -q -p zk-traffic
fi
captures_dir="${ZKT_CAPTURES:-$(cd .. && pwd)/shared/captures/zktraffic}"

inputs=("$@")
if ((${#inputs[@]} == 0)); then
  inputs=(demo/*.pcap)
  [ -d "$captures_dir" ] && inputs+=("$captures_dir"/*.pcap)
fi

mkdir -p "$out"
fle_ports=(-p 3888 -p 2783 -p 2784 -p 2785)
zab_ports=(-p 2888 -p 2781 -p 20022)

# run NAME CMD...: stdout to OUT/NAME, stderr (timings dropped) to OUT/NAME.err
run() {
  local name=$1
  shift
  "$@" >"$out/$name" 2>"$out/$name.err.raw" || echo "exit=$?" >>"$out/$name.err.raw"
  grep -v -E 'seconds=|packets_per_s=|peak_rss' "$out/$name.err.raw" >"$out/$name.err" || true
  rm -f "$out/$name.err.raw"
}

for f in "${inputs[@]}"; do
  n=$(basename "$f" .pcap)
  run "$n.zk-dump.json" "$bin/zk-dump" --offline "$f" --json --include-pings --unpaired
  run "$n.zk-dump.txt" "$bin/zk-dump" --offline "$f" --include-pings --unpaired
  run "$n.zk-dump.count" "$bin/zk-dump" --offline "$f" --count-requests 1000000 --group-by type
  run "$n.zk-dump.latency" "$bin/zk-dump" --offline "$f" --measure-latency 1000000 --group-by type
  run "$n.fle-dump.json" "$bin/fle-dump" --offline "$f" "${fle_ports[@]}" --json
  run "$n.fle-dump.summary" "$bin/fle-dump" --offline "$f" "${fle_ports[@]}" --summary
  run "$n.fle-dump.summary.json" "$bin/fle-dump" --offline "$f" "${fle_ports[@]}" --summary --json
  run "$n.zab-dump.json" "$bin/zab-dump" --offline "$f" "${zab_ports[@]}" --json --include-pings
  run "$n.zab-dump.summary" "$bin/zab-dump" --offline "$f" "${zab_ports[@]}" --summary
  run "$n.zab-dump.summary.json" "$bin/zab-dump" --offline "$f" "${zab_ports[@]}" --summary --json
  run "$n.omni.json" "$bin/zk-omni-dump" --offline "$f" --json --include-pings
  run "$n.omni.summary" "$bin/zk-omni-dump" --offline "$f" --summary
  run "$n.zk-stats" "$bin/zk-stats" --offline "$f" \
    --json-out "$out/$n.zk-stats.paths.json" \
    --json-out-ips "$out/$n.zk-stats.ips.json" \
    --json-out-auths "$out/$n.zk-stats.auths.json"
done
echo "golden outputs of ${#inputs[@]} captures in $out"
