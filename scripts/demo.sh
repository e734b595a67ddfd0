#!/usr/bin/env bash
# Build zk-traffic and decode the bundled capture of a real ZooKeeper 3.8
# server (demo/demo.pcap): first every message, then a latency table.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s libpcap-dev >/dev/null 2>&1; then
  echo "installing libpcap-dev" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpcap-dev >/dev/null
fi
cargo build --release --locked -p zk-traffic --bins
capture="${1:-demo/demo.pcap}"
echo "== zk-dump --offline $capture --include-pings"
./target/release/zk-dump --offline "$capture" --include-pings
echo
echo "== zk-dump --offline $capture --measure-latency 1000 --group-by type --sort-by p99"
./target/release/zk-dump --offline "$capture" --measure-latency 1000 --group-by type --sort-by p99
