#!/usr/bin/env bash
# Builds coi-agent's Debian package (issue #14) and prints its path as the last line.
# cargo-deb is installed if missing (from crates.io, ~2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/coi-agent-target}"
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "build-deb: installing cargo-deb" >&2
  cargo install cargo-deb --locked --quiet >&2
fi
# A release build, stripped by cargo-deb (the package ships no debug symbols).
cargo build --release --locked --quiet >&2
# The man page and completions, from the CLI's own definition.
mkdir -p packaging/generated
rm -rf packaging/generated/man && mkdir -p packaging/generated/man
"$CARGO_TARGET_DIR/release/coi-agent" dev man-page --dir packaging/generated/man
# One page per command; the developers' hidden commands get none.
rm -f packaging/generated/man/coi-agent-dev*.1
gzip -9n packaging/generated/man/*.1
"$CARGO_TARGET_DIR/release/coi-agent" completions bash > packaging/generated/coi-agent.bash
deb=$(cargo deb --locked --quiet --no-build --strip 2>&2 | tail -n 1)
if [ ! -f "$deb" ]; then
  deb=$(ls -t "$CARGO_TARGET_DIR"/debian/coi-agent_*.deb | head -n 1)
fi
echo "$deb"
