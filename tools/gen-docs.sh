#!/bin/sh
# gen-docs.sh -- regenerates the generated sections of docs/PROTOCOL.md
# and docs/CONFIG.md.
#
# Every block between
#     <!-- BEGIN GENERATED name -->
#     <!-- END GENERATED name -->
# is replaced, in place, by the output of `sy-schema --name` (msgtypes:
# --markdown, hexdump: --hexdump).  Everything outside the markers is left
# as written.  `make docs` builds bin/sy-schema and runs this; set
# SY_SCHEMA to use another binary (e.g. build/asan/bin/sy-schema).
# tests/unit/test_protocol_doc.c fails when the file is out of date.
set -eu
cd "$(dirname "$0")/.."
SCHEMA=${SY_SCHEMA:-bin/sy-schema}
DOC=docs/PROTOCOL.md

[ -x "$SCHEMA" ] || { echo "gen-docs: $SCHEMA not built (run make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/sy-gen-docs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$SCHEMA" --markdown >"$tmp/msgtypes"
"$SCHEMA" --hexdump >"$tmp/hexdump"

for name in msgtypes hexdump; do
    b=$(grep -c "^<!-- BEGIN GENERATED $name -->\$" "$DOC" || true)
    e=$(grep -c "^<!-- END GENERATED $name -->\$" "$DOC" || true)
    if [ "$b" != 1 ] || [ "$e" != 1 ]; then
        echo "gen-docs: $DOC needs exactly one BEGIN/END GENERATED $name marker pair" >&2
        exit 1
    fi
done

awk -v dir="$tmp" '
    /^<!-- BEGIN GENERATED [a-z]+ -->$/ {
        print
        f = dir "/" $4
        while ((getline line < f) > 0) print line
        close(f)
        skip = 1
        next
    }
    /^<!-- END GENERATED [a-z]+ -->$/ { skip = 0 }
    !skip { print }
' "$DOC" >"$tmp/doc"

if cmp -s "$tmp/doc" "$DOC"; then
    echo "gen-docs: $DOC up to date"
else
    cp "$tmp/doc" "$DOC"
    echo "gen-docs: $DOC regenerated"
fi

# docs/CONFIG.md: the settings table, from the table in common/config.c
# (tests/unit/test_config.c fails when it is out of date).
BROKER=${SY_BROKER:-bin/sy-broker}
CDOC=docs/CONFIG.md
b=$(grep -c '^<!-- BEGIN GENERATED: config_print_table(markdown) -->$' "$CDOC" || true)
e=$(grep -c '^<!-- END GENERATED -->$' "$CDOC" || true)
if [ "$b" != 1 ] || [ "$e" != 1 ]; then
    # a BEGIN without its END would drop the rest of the file
    echo "gen-docs: $CDOC needs exactly one BEGIN/END GENERATED marker pair" >&2
    exit 1
fi
"$BROKER" --help-config --markdown >"$tmp/config"
awk -v f="$tmp/config" '
    /^<!-- BEGIN GENERATED: config_print_table\(markdown\) -->$/ {
        print
        while ((getline line < f) > 0) print line
        close(f)
        skip = 1
        next
    }
    /^<!-- END GENERATED -->$/ { skip = 0 }
    !skip { print }
' "$CDOC" >"$tmp/config.md"
if cmp -s "$tmp/config.md" "$CDOC"; then
    echo "gen-docs: $CDOC up to date"
else
    cp "$tmp/config.md" "$CDOC"
    echo "gen-docs: $CDOC regenerated"
fi
