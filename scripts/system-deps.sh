#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages rmm-tray needs; quick when they are there.
# Fedora: sudo dnf install gcc gcc-c++ cmake pkgconf-pkg-config python3-devel \
#         gobject-introspection-devel cairo-gobject-devel webkit2gtk4.1 libayatana-appindicator-gtk3
# Arch:   sudo pacman -S --needed base-devel cmake pkgconf python gobject-introspection \
#         webkit2gtk-4.1 libayatana-appindicator
# (a prompt's hotkey reads the selection with xclip or xsel, wl-clipboard on Wayland)
# (the tests also use xorg-server-xvfb, xdotool, trayer, dbus and openbox; the benchmarks curl)
set -euo pipefail

packages=(build-essential cmake pkg-config
    # PyGObject builds against these; WebKit draws the popup; AppIndicator is the tray.
    libgirepository1.0-dev libcairo2-dev gir1.2-gtk-3.0 gir1.2-webkit2-4.1
    gir1.2-ayatanaappindicator3-0.1
    # The desktop tests: a virtual screen, real key events, a tray host.
    xvfb xdotool trayer dbus openbox
    # Opening the data folder (xdg-open); the launcher's checker; xprop for WM_CLASS.
    xdg-utils desktop-file-utils x11-utils
    # A headless Wayland compositor for the Wayland test (and its screenshooter).
    weston
    # The selection and clipboard a prompt's hotkey reads (X11; wl-clipboard on Wayland).
    xclip xsel
    # The download benchmark compares against curl.
    curl)
# The interpreter the venv is made from (the Makefile's PYTHON): the distribution's
# needs its venv module, and its headers for PyGObject and pycairo to build.
python=${PYTHON:-python3}
"$python" -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
"$python" -c "import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" 2>/dev/null \
    || packages+=(python3-dev)

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
