#!/usr/bin/env bash
# Installs everything the test suite needs (Debian packages, a virtualenv with the test extras)
# and runs the whole suite. Tests that need root and network namespaces skip without root,
# except under CI=true, where a skip of that kind is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_APT=(python3 python3-venv python3-dev iproute2 nftables conntrack kmod
          libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei procps
          iperf3 vnstat nethogs dbus python3-dbusmock chromium poppler-utils faketime)

if [ "$(id -u)" = 0 ]; then
  missing=()
  for pkg in "${TEST_APT[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e ".[test,pdf]"
exec .venv/bin/python -m pytest "$@"
