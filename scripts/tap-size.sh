#!/usr/bin/env bash
# Size report of the zk-tap appliance core, as firmware would carry it:
# the no_std check crate (the appliance in statics over
# zk_tap::memory::EmbeddedMemory, fed by a MAC's receive descriptor)
# built for thumbv7em-none-eabihf with fat LTO and opt-level "s", so that
# its object holds only what the entry points reach. Prints text/data/bss
# of that object (compiler_builtins apart).
#
#   ./scripts/tap-size.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=thumbv7em-none-eabihf
if ! rustup target list --installed 2>/dev/null | grep -q "$target"; then
  rustup target add "$target" >/dev/null 2>&1 || { echo "$target is not installed and cannot be fetched: no size report"; exit 0; }
fi
cargo build --release --locked --manifest-path hosts/zk-tap/nostd-check/Cargo.toml --target "$target" >/dev/null 2>&1 \
  || cargo build --release --manifest-path hosts/zk-tap/nostd-check/Cargo.toml --target "$target"
lib=hosts/zk-tap/nostd-check/target/$target/release/libzk_tap_nostd_check.a
echo "zk-tap core on $target (fat LTO, opt-level s):"
size "$lib" | awk 'NR == 1 { print "text", "data", "bss" } $6 ~ /^zk_tap_nostd_check-/ { print $1, $2, $3 }' | column -t
size "$lib" | awk 'NR > 1 && $6 !~ /^zk_tap_nostd_check-/ { t += $1 } END { printf "compiler_builtins, all of it (the linker keeps what is called): text %d\n", t }'
