#!/usr/bin/env bash
# Install the system packages the tests need, when missing: PostgreSQL 15 server binaries,
# Debian's Chromium (Playwright's own browser download does not work here) and nginx (the
# multi-process layout's reverse proxy). Idempotent. With arguments (postgresql, chromium,
# nginx), only those: `make serve` needs nginx alone.
set -euo pipefail

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(postgresql chromium nginx)
need=()
for package in "${wanted[@]}"; do
  case "$package" in
    postgresql)
      pg_bindir=$(pg_config --bindir 2>/dev/null || true)
      if [ -z "$pg_bindir" ] || [ ! -x "$pg_bindir/initdb" ]; then
        ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
      fi ;;
    chromium) command -v chromium >/dev/null 2>&1 || need+=(chromium) ;;
    nginx) command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx) ;;
    *) echo "error: unknown package $package (postgresql, chromium, nginx)" >&2; exit 2 ;;
  esac
done

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
