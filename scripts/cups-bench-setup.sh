#!/usr/bin/env bash
# Prepares CUPS for `cargo bench --bench print_latency` on a Debian machine: installs it and
# starts the scheduler (no systemd needed). Run as root.
set -euo pipefail
if ! command -v lp >/dev/null || ! command -v cupsd >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cups cups-client cups-bsd
fi
if ! lpstat -r 2>/dev/null | grep -q "is running"; then
  cupsd
  for _ in $(seq 50); do lpstat -r 2>/dev/null | grep -q "is running" && break; sleep 0.1; done
fi
lpstat -r
