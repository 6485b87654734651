#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages rmm-tray needs; quick when they are there.
# Fedora: sudo dnf install gcc gcc-c++ cmake pkgconf-pkg-config python3-devel
# Arch:   sudo pacman -S --needed base-devel cmake pkgconf python
set -euo pipefail

packages=(build-essential cmake pkg-config)
python3 -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)

if ! command -v dpkg-query >/dev/null; then
    echo "system-deps: not a Debian-like system; install the packages listed at the top of $0" >&2
    exit 0
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
