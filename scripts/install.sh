#!/usr/bin/env bash
# Installs datacap from this checkout: the Debian packages it uses, a virtualenv, and `datacap` on PATH.
#   as root:  venv in /opt/datacap, command in /usr/local/bin, store in /var/lib/datacap
#   as user:  venv in ./.venv, command in ~/.local/bin, store in ~/.local/share/datacap
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_APT=(python3 python3-venv python3-dev iproute2 nftables conntrack kmod
          libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei)

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
      echo "datacap: please install as root first: apt-get install ${missing[*]}" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

apt_install "${RUNTIME_APT[@]}"
if [ "$(id -u)" = 0 ]; then venv=/opt/datacap; bindir=/usr/local/bin; else venv=.venv; bindir="$HOME/.local/bin"; fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >/dev/null
# The core and the PDF/PNG reports (the `pdf` extra); DATACAP_PIP_TARGET=. installs the core alone.
"$venv/bin/pip" install -q "${DATACAP_PIP_TARGET:-.[pdf]}"
mkdir -p "$bindir"
ln -sf "$(cd "$venv" && pwd)/bin/datacap" "$bindir/datacap"
echo "datacap installed: $bindir/datacap ($("$bindir/datacap" --version))"
