#!/usr/bin/env bash
# Installs the Debian 12 packages Strata needs to build, test and benchmark.
# Idempotent and quick when everything is already there.
set -euo pipefail
build_pkgs=(build-essential cmake pkg-config clang liblua5.4-dev lua5.4 libopenblas-dev liblapacke-dev
            libstb-dev libreadline-dev lua-busted valgrind)
peer_pkgs=(python3-torch python3-sklearn python3-scipy python3-numpy)
want=("${build_pkgs[@]}")
[ "${STRATA_WITH_PEERS:-1}" = 1 ] && want+=("${peer_pkgs[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
