#!/bin/bash
# test_layers.sh: wardd's modules keep to their layers (HACKING.md): the
# link-time call graph of src/*.o has no cycle, no module calls a layer
# above its own ("layer:" in each file's comment), and no .c file in src/
# or client/ is over 900 lines. tests/layers.py does the work; TAP out.
here=$(cd "$(dirname "$0")/.." && pwd)
src=${WARD_SRCDIR:-$here}
build=${WARD_BUILDDIR:-$here}
exec /usr/bin/python3 "$src/tests/layers.py" --tap "$build/src" "$src/src" \
    "$src/client"
