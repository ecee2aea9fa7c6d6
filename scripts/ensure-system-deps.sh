#!/usr/bin/env bash
# Install the system packages the tests need, when missing: PostgreSQL 15 server binaries and
# Debian's Chromium (Playwright's own browser download does not work here). Idempotent.
set -euo pipefail

need=()
pg_bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$pg_bindir" ] || [ ! -x "$pg_bindir/initdb" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing system packages: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to install ${need[*]} (or install them yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
