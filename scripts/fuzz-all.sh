#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60) on one core, one after another,
# and prints each target's executions and result; crashes are kept in fuzz/artifacts/TARGET/.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Usage:
#   bash scripts/fuzz-all.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/coi-agent-fuzz-target}"
cargo +nightly fuzz build -O >&2
status=0
for target in "${targets[@]}"; do
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
       -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
  echo "$target: ${runs:-?} executions in ${seconds} s: $result"
  [ "$result" = ok ] || tail -n 30 "$log"
  rm -f "$log"
done
exit $status
