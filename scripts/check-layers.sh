#!/usr/bin/env bash
# Checks that no file under src/ includes a header of a layer above its own.
# The order (lowest first) is the one in src/README.md; a layer may include
# its own headers and those of any layer below it. Prints every violation
# and exits 1 if there is one. Run by ctest as "layers".
set -euo pipefail
cd "$(dirname "$0")/../src"
order=(base proto cache net cluster store script svc node cmd admin daemon)
rank() {
    local i
    for i in "${!order[@]}"; do
        [ "${order[$i]}" = "$1" ] && { echo "$i"; return; }
    done
    echo -1
}
bad=0
for dir in */; do
    layer=${dir%/}
    r=$(rank "$layer")
    if [ "$r" -lt 0 ]; then
        echo "layers: src/$layer is not in the layer order of scripts/check-layers.sh"
        bad=1
        continue
    fi
    for f in "$layer"/*.c "$layer"/*.h; do
        [ -e "$f" ] || continue
        while read -r hdr; do
            owner=$(ls -d */"$hdr" 2>/dev/null | head -n 1 | cut -d/ -f1)
            [ -n "$owner" ] || continue # a system or library header
            if [ "$(rank "$owner")" -gt "$r" ]; then
                echo "layers: src/$f includes $owner/$hdr, a layer above $layer"
                bad=1
            fi
        done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
    done
done
[ "$bad" -eq 0 ] && echo "layers: every include points down or sideways"
exit "$bad"
