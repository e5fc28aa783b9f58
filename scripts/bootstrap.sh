#!/usr/bin/env bash
# Installs, with apt-get, whichever of farmwatch's Debian 12 dependencies are missing
# (--postgres: and a PostgreSQL + PostGIS server for the history store's tests).
# Idempotent: when everything is present it does nothing and needs no network.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config
  libgdal-dev gdal-bin python3-gdal python3-numpy
  libproj-dev libgeos-dev libeigen3-dev libtbb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev
)
# --postgres: also the PostgreSQL + PostGIS server the history store's tests run against (CI).
if [ "${1:-}" = "--postgres" ]; then
  PACKAGES+=(postgresql postgresql-15-postgis-3)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#PACKAGES[@]} dependencies present"
  exit 0
fi
echo "bootstrap: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
