#!/usr/bin/env bash
# The crash soak of issue #11: `coi-agent serve` killed with SIGKILL 200 times under a
# scan-and-print workload (tests/serve_crash.rs). CI runs 4 rounds of the same test.
set -euo pipefail
cd "$(dirname "$0")/.."
COI_AGENT_CRASH_ROUNDS="${COI_AGENT_CRASH_ROUNDS:-200}" \
  cargo test --locked --test serve_crash -- --nocapture
