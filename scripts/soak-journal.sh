#!/usr/bin/env bash
# Soak test of the journal's crash safety: the SIGKILL test of tests/journal.rs with many more
# rounds and a fresh random seed each run. Every record acknowledged before a kill must survive
# it, with its custody event, and the audit chain must verify.
#
#   scripts/soak-journal.sh [ROUNDS]      (default 5000; CI runs 200)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5000}"
seed="$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')"
echo "soak: $rounds SIGKILL rounds, seed $seed (rerun with COI_AGENT_CRASH_SEED=$seed)"
COI_AGENT_CRASH_ROUNDS="$rounds" COI_AGENT_CRASH_SEED="$seed" \
  cargo test --release --test journal acknowledged_records_survive_sigkill -- --nocapture
