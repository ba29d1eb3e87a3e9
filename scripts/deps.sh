#!/usr/bin/env bash
# Installs the Debian 12 packages that p2pshare needs to build and test, only those missing.
# usage: scripts/deps.sh [extra packages...]
set -euo pipefail

packages=(
  cmake ninja-build g++ make pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev
  libboost-test1.81-dev libboost-system1.81-dev
  libspdlog-dev libssl-dev
  redis-server redis-tools libhiredis-dev
  prometheus chromium curl
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root, so nothing was installed. Run:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# Refresh the package lists when they are missing or older than a day.
lists=/var/lib/apt/lists
if ! compgen -G "$lists/*_Packages*" >/dev/null || \
   [ -n "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mmin +1440 -print -quit)" ]; then
  echo "deps: apt-get update"
  apt-get update -qq
fi
echo "deps: apt-get install ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
