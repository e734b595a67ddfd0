#!/usr/bin/env bash
# Fuzz every zk-wire target for SECONDS each (default 60), seeded from real
# captures. Exits non-zero if any target crashes, times out or runs out of
# memory; the reproducer is left in fuzz/artifacts/<target>/.
#
#   ./scripts/fuzz.sh 300                     each target for 5 minutes
#   ZKT_FUZZ_TARGETS="tracker" ./scripts/fuzz.sh 600
#   ZKT_FUZZ_JOBS=2 ./scripts/fuzz.sh 300     2 fuzzing processes per target
#
# Targets (fuzz/src/<target>.rs documents the input format and the checks):
#   packet      every link type over one frame
#   frame       every client-protocol decoder over one frame body
#   reassembly  one TCP direction, any segmentation / overlap / reorder / gap
#   tracker     synthetic traffic of two clients and a server, whole pipeline
#   (and any other target in fuzz/fuzz_targets/, e.g. fle, zab)
#
# Toolchain: nightly with AddressSanitizer (cargo-fuzz's default); if the
# nightly build fails, stable without a sanitizer (`-s none`). Builds are
# release with debug assertions and overflow checks (cargo-fuzz's default).
# Seeds: fuzz/corpus/<target>/ (gitignored) is filled from the captures in
# $ZKT_CAPTURES (default ../shared/captures/zktraffic) and demo/demo.pcap,
# then grows with what libFuzzer finds. Reproduce a crash with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/crash-...
# and check a fix without libFuzzer: cargo test --manifest-path fuzz/Cargo.toml
# (after copying the reproducer into fuzz/regressions/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi
# Default: every target in fuzz/fuzz_targets/.
all_targets=$(for f in fuzz/fuzz_targets/*.rs; do basename "$f" .rs; done | tr '\n' ' ')
read -r -a targets <<<"${ZKT_FUZZ_TARGETS:-$all_targets}"
jobs="${ZKT_FUZZ_JOBS:-1}"
captures_dir="${ZKT_CAPTURES:-$(cd .. && pwd)/shared/captures/zktraffic}"

step() { printf '\n==> %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

step "choosing a toolchain"
toolchain=(+nightly)
sanitizer=()
if ! cargo +nightly fuzz build >/tmp/zkt-fuzz-build.$$ 2>&1; then
  tail -n 20 /tmp/zkt-fuzz-build.$$ >&2
  echo "nightly build failed: falling back to stable without a sanitizer" >&2
  toolchain=()
  sanitizer=(-s none)
  cargo fuzz build "${sanitizer[@]}"
fi
rm -f /tmp/zkt-fuzz-build.$$
echo "cargo ${toolchain[*]:-(default)} fuzz ${sanitizer[*]:-(address sanitizer)}"

step "seeding fuzz/corpus from captures"
captures=()
if [ -d "$captures_dir" ]; then
  captures+=("$captures_dir"/*.pcap)
fi
[ -f demo/demo.pcap ] && captures+=(demo/demo.pcap)
if ((${#captures[@]})); then
  cargo run --quiet --release --manifest-path fuzz/Cargo.toml --example seed_corpus -- \
    fuzz/corpus "${captures[@]}"
else
  echo "no capture found in $captures_dir: starting from empty corpora" >&2
fi

failed=()
for t in "${targets[@]}"; do
  step "fuzzing $t for ${secs}s"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  # Inputs past these sizes add nothing but slowness (see fuzz/src/).
  case "$t" in
    packet) max_len=9000 ;;
    tracker) max_len=65536 ;;
    *) max_len=16384 ;;
  esac
  extra=()
  [ "$jobs" -gt 1 ] && extra+=("-jobs=$jobs" "-workers=$jobs")
  if ! cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    "${extra[@]}"; then
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  step "FAILED: ${failed[*]}"
  for t in "${failed[@]}"; do
    ls -1 "fuzz/artifacts/$t" 2>/dev/null | sed "s|^|  fuzz/artifacts/$t/|"
  done
  exit 1
fi
step "no crash in ${targets[*]} (${secs}s each)"
