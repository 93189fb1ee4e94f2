#!/bin/bash
# The built libnbd.so.0 exports exactly the symbols of symbols.txt, each
# with its symbol-version node, the nodes chain in order, and the soname
# is libnbd.so.0.
set -euo pipefail

: "${abs_top_builddir:?must be set (run via make check)}"
: "${srcdir:=.}"

so="$abs_top_builddir/lib/.libs/libnbd.so.0"
fail=0

test -f "$so" || { echo "$0: $so not found"; exit 1; }
for f in symbols.txt symbols-ext.txt; do
    test -s "$srcdir/$f" || { echo "$0: $srcdir/$f missing or empty"; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Upstream's symbols (symbols.txt), plus this library's extensions, all in
# their own node LIBNBD_EXT_1 (symbols-ext.txt): nothing else.
if grep -v ' LIBNBD_EXT_1$' "$srcdir/symbols-ext.txt"; then
    echo "$0: the extensions above are not in LIBNBD_EXT_1"
    fail=1
fi
if grep -E '^nbd_ext_| LIBNBD_EXT' "$srcdir/symbols.txt"; then
    echo "$0: symbols.txt (upstream's list) names extensions"
    fail=1
fi
expected="$tmp/expected"
cat "$srcdir/symbols.txt" "$srcdir/symbols-ext.txt" > "$expected"

nm -D --defined-only --with-symbol-versions "$so" > "$tmp/nm"

# Every defined dynamic symbol except the version-node markers (type A)
# must be a function with a default (@@) version.
awk '$2 != "A"' "$tmp/nm" > "$tmp/syms"
if awk '$2 != "T" && $2 != "i" { bad = 1; print "not a function:", $0 } END { exit !bad }' "$tmp/syms"; then
    fail=1
fi
if grep -v '@@' "$tmp/syms"; then
    echo "$0: the symbols above lack a default (@@) version"
    fail=1
fi

awk '{ print $3 }' "$tmp/syms" | sed 's/@@*/ /' | LC_ALL=C sort > "$tmp/have"
LC_ALL=C sort "$expected" > "$tmp/want"
if ! diff -u "$tmp/want" "$tmp/have"; then
    echo "$0: exported symbols differ from symbols.txt (- expected, + built)"
    fail=1
fi
n="$(wc -l < "$tmp/have")"
want_n="$(wc -l < "$tmp/want")"
test "$n" -eq "$want_n" || { echo "$0: $n symbols exported, expected $want_n"; fail=1; }
# upstream's list is libnbd 1.24's: 165 functions.
upstream_n="$(wc -l < "$srcdir/symbols.txt")"
test "$upstream_n" -eq 165 || { echo "$0: symbols.txt lists $upstream_n, expected 165"; fail=1; }

# The version-node markers are exactly the nodes named in symbols.txt.
awk '$2 == "A" { print $3 }' "$tmp/nm" | sed 's/@.*//' | LC_ALL=C sort -u > "$tmp/nodes-have"
awk '{ print $2 }' "$expected" | LC_ALL=C sort -u > "$tmp/nodes-want"
if ! diff -u "$tmp/nodes-want" "$tmp/nodes-have"; then
    echo "$0: version nodes differ"
    fail=1
fi

# Each node inherits the one before it (LIBNBD_1.2 from LIBNBD_1.0, ...).
readelf -V "$so" | awk '
    /^Version / { d = /definition/; next }
    d && /Name: LIBNBD_/ { if (node) print node, parent; node = $NF; parent = "-" }
    d && /Parent 1:/ { parent = $NF }
    END { if (node) print node, parent }
' | LC_ALL=C sort > "$tmp/chain-have"
sort -V "$tmp/nodes-want" | awk 'NR == 1 { print $1, "-"; prev = $1; next }
                                 { print $1, prev; prev = $1 }' |
    LC_ALL=C sort > "$tmp/chain-want"
if ! diff -u "$tmp/chain-want" "$tmp/chain-have"; then
    echo "$0: version node inheritance differs (node parent)"
    fail=1
fi

# soname
soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')"
if test "$soname" != "libnbd.so.0"; then
    echo "$0: soname is '$soname', expected libnbd.so.0"
    fail=1
fi
objdump -p "$so" | grep -Eq '^ *SONAME +libnbd\.so\.0$' || {
    echo "$0: objdump -p does not show SONAME libnbd.so.0"; fail=1; }

exit $fail
