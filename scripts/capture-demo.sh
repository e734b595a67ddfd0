#!/usr/bin/env bash
# Regenerates demo/demo.pcap, demo/expected.json and demo/README.md from a
# real ZooKeeper 3.8 server (Debian's zookeeper package) running in a
# network namespace of its own; all traffic stays on that namespace's
# loopback. Needs root, tcpdump and iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in java tcpdump ip; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y zookeeper tcpdump iproute2)" >&2; exit 1; }
done
[ -f /usr/share/java/zookeeper.jar ] || { echo "missing Debian's zookeeper package" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, tcpdump)" >&2; exit 1; }
mkdir -p demo
cargo run --quiet -p zk-traffic-tests --bin zk-workload -- demo \
    --out demo/demo.pcap --expected demo/expected.json --readme demo/README.md
tcpdump -nn -r demo/demo.pcap 2>/dev/null | head -5
ls -l demo/demo.pcap
