#!/usr/bin/env bash
# Install the workbench's menu entry, icons and AppStream metadata for the current user:
#   ~/.local/share/applications/pretrain-workbench.desktop
#   ~/.local/share/icons/hicolor/<size>/apps/pretrain-workbench.{png,svg}
#   ~/.local/share/metainfo/pretrain-workbench.metainfo.xml
# The program itself comes from pip (pip install pretrain-workbench, or the wheel); its entry point is
# found on PATH, or given:  bash install.sh [/path/to/pretrain-workbench]
# Every file written is listed, with its checksum, in ~/.local/share/pretrain-workbench/desktop-files.txt;
# uninstall.sh removes exactly those (and only if unchanged).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
program=${1:-$(command -v pretrain-workbench || true)}
if [ -z "$program" ] || [ ! -x "$program" ]; then
    echo "error: pretrain-workbench is not on PATH; install it first (pip install ...), or give its path" >&2
    exit 2
fi
program=$(cd "$(dirname "$program")" && pwd)/$(basename "$program")
manifest="$data/pretrain-workbench/desktop-files.txt"
mkdir -p "$(dirname "$manifest")"
: > "$manifest.new"

desktop=$(mktemp)
trap 'rm -f "$desktop" "$manifest.new"' EXIT
sed "s|^Exec=.*|Exec=\"$program\"|" "$here/pretrain-workbench.desktop" > "$desktop"
sources=("$desktop" "$here/pretrain-workbench.metainfo.xml")
targets=("$data/applications/pretrain-workbench.desktop" "$data/metainfo/pretrain-workbench.metainfo.xml")
for icon in "$here"/icons/hicolor/*/apps/*; do
    sources+=("$icon")
    targets+=("$data/icons/hicolor/${icon#"$here"/icons/hicolor/}")
done
# First check every target, so a refused install writes nothing.
for target in "${targets[@]}"; do
    if [ -e "$target" ] && ! grep -q " $target\$" "$manifest" 2>/dev/null; then
        echo "error: $target exists and was not installed by this script; not overwriting it" >&2
        exit 2
    fi
done
for i in "${!targets[@]}"; do
    mkdir -p "$(dirname "${targets[$i]}")"
    cp "${sources[$i]}" "${targets[$i]}.partial" && mv "${targets[$i]}.partial" "${targets[$i]}"
    echo "$(sha256sum "${targets[$i]}" | cut -d' ' -f1) ${targets[$i]}" >> "$manifest.new"
done
mv "$manifest.new" "$manifest"

command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
echo "installed the menu entry for $program ($(wc -l < "$manifest") files; uninstall: bash $here/uninstall.sh)"
