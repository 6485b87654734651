#!/bin/sh
# `make run` on a desktop: offer the app-launcher entry once. Asks only on a
# terminal (and waits at most 30 s); otherwise prints the command once. Never
# fails the run: whatever happens here, the app starts next.
# Usage: scripts/offer-launcher.sh PATH/TO/rmm-tray
rmm="$1"
[ -n "$DISPLAY$WAYLAND_DISPLAY" ] || exit 0
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
# RunMyModel.desktop, or rmm-tray.desktop from an earlier version
[ -e "$apps/RunMyModel.desktop" ] || [ -e "$apps/rmm-tray.desktop" ] && exit 0
state="${XDG_STATE_HOME:-$HOME/.local/state}/rmm-tray"
marker="$state/launcher-offered"
[ -e "$marker" ] && exit 0
mkdir -p "$state" 2>/dev/null && : > "$marker" 2>/dev/null
if [ -t 0 ] && [ -t 1 ]; then
    printf 'Add RunMyModel to your app launcher (rmm-tray desktop install)? [y/N] '
    answer=""
    # read -t is not POSIX sh: the wait is bounded with stty's own timeout instead.
    old=$(stty -g 2>/dev/null)
    stty -icanon min 0 time 255 2>/dev/null
    read -r answer || answer=""
    [ -n "$old" ] && stty "$old" 2>/dev/null
    case "$answer" in
        [yY]*) "$rmm" desktop install || true ;;
        *) echo "Not now. Any time: rmm-tray desktop install [--autostart]" ;;
    esac
else
    echo "Tip: 'rmm-tray desktop install' adds RunMyModel to your app launcher (--autostart: start at login)."
fi
exit 0
