#!/usr/bin/env bash
# Remove what install.sh installed for the current user: exactly the files its list names, and only those
# still as it wrote them (a file changed since is kept and reported). The program itself stays (pip uninstall).
set -euo pipefail
data=${XDG_DATA_HOME:-$HOME/.local/share}
manifest="$data/pretrain-workbench/desktop-files.txt"
if [ ! -f "$manifest" ]; then
    echo "nothing to remove: $manifest does not exist (install.sh was not run for this user)"
    exit 0
fi
removed=0
kept=0
while read -r sum path; do
    if [ ! -e "$path" ]; then
        continue
    elif [ "$(sha256sum "$path" | cut -d' ' -f1)" = "$sum" ]; then
        rm -f "$path"                 # folders stay: they may hold other programs' files
        removed=$((removed + 1))
    else
        echo "kept $path: it changed since it was installed"
        kept=$((kept + 1))
    fi
done < "$manifest"
rm -f "$manifest"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$data/applications" 2>/dev/null || true
if [ "$kept" -gt 0 ]; then
    echo "removed $removed files, kept $kept changed ones"
else
    echo "removed $removed files"
fi
