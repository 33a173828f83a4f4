#!/bin/sh
# Adds LiverSeg Studio to this user's application menu (no root needed).
set -e
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/liverseg.png" "$icons/liverseg.png"
sed "s|^Exec=liverseg|Exec=\"$here/liverseg\"|" "$here/liverseg-studio.desktop" > "$apps/liverseg-studio.desktop"
chmod +x "$apps/liverseg-studio.desktop"
echo "LiverSeg Studio added to the application menu ($apps/liverseg-studio.desktop)"
