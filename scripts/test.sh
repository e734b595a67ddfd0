#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Debian packages the
# tests need (ZooKeeper 3.8, libpcap, tcpdump, tcpreplay, iproute2, ping, tmux,
# chromium; playwright-core from npm for the browser test), then runs
# formatting and lint checks, the no_std proofs, every unit and integration
# test (real ZooKeeper servers, real captures), and a short fuzzing pass.
#
#   ./scripts/test.sh            everything
#   ZKT_FUZZ_SECONDS=0 ./scripts/test.sh   skip fuzzing
#
# Integration tests create network namespaces and capture with tcpdump:
# run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need=()
for pkg in zookeeper libpcap-dev tcpdump tcpreplay iproute2 iputils-ping tmux chromium python3-aiosmtpd openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  step "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "playwright-core for the dashboard's browser test (npm registry; drives Debian's chromium)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "no_std proofs: staticlibs with their own panic handler (zk-wire, the zk-tap core)"
cargo build --release --locked --manifest-path zk-wire/nostd-check/Cargo.toml
cargo build --release --locked --manifest-path hosts/zk-tap/nostd-check/Cargo.toml

step "no_std build for thumbv7em-none-eabihf"
if rustup target list --installed 2>/dev/null | grep -q thumbv7em-none-eabihf \
   || rustup target add thumbv7em-none-eabihf >/dev/null 2>&1; then
  cargo build -p zk-wire --no-default-features --target thumbv7em-none-eabihf --locked
  cargo build -p zk-tap --lib --no-default-features --target thumbv7em-none-eabihf --locked
  cargo check -p zk-tap --lib --no-default-features --features defmt --target thumbv7em-none-eabihf --locked
  ./scripts/tap-size.sh
else
  echo "thumbv7em-none-eabihf is not installed and cannot be fetched here: skipped (the staticlib proof above still ran)"
fi

step "build binaries (integration tests run them; the replay test uses a release zk-stats)"
cargo build --workspace --bins --locked
cargo build --release --locked -p zk-traffic --bin zk-stats

step "cargo test (unit + integration against real ZooKeeper 3.8)"
cargo test --workspace --locked

step "fuzz invariants over seeds from the captures (stable, no libFuzzer)"
cargo test --manifest-path fuzz/Cargo.toml

fuzz_seconds="${ZKT_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  step "fuzzing each target for ${fuzz_seconds}s"
  ./scripts/fuzz.sh "$fuzz_seconds"
fi
echo "all checks passed"
