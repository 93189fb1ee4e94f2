#!/bin/bash
# <libnbd.h> declares every call with the compiler attributes libnbd 1.24
# gives it (attributes.txt: name, then its attributes or "-"), and defines
# the constants 1.24 defines with the same values (constants.txt).
set -euo pipefail

: "${abs_top_srcdir:?must be set (run via make check)}"
: "${srcdir:=.}"

header="$abs_top_srcdir/include/libnbd.h"
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One line per declaration: the call's name, then each LIBNBD_ATTRIBUTE_*
# use in the order written.  Declarations may span several lines.
awk '
    /^extern [^"]/ && !/forward declaration/ { decl = ""; in_decl = 1 }
    in_decl { decl = decl " " $0 }
    in_decl && /;[[:space:]]*$/ {
        in_decl = 0
        if (!match (decl, /nbd_[a-z0-9_]+ \(/)) next
        name = substr (decl, RSTART, RLENGTH - 2)
        attrs = ""
        rest = decl
        while (match (rest, /LIBNBD_ATTRIBUTE_[A-Z_]+ \([^)]*\)/)) {
            attrs = attrs (attrs == "" ? "" : " ") substr (rest, RSTART, RLENGTH)
            rest = substr (rest, RSTART + RLENGTH)
        }
        print name "  " (attrs == "" ? "-" : attrs)
    }
' "$header" | LC_ALL=C sort > "$tmp/have"

test "$(wc -l < "$tmp/have")" -ge 160 || {
    echo "$0: only $(wc -l < "$tmp/have") declarations found in $header"; exit 1; }

# Every call the header declares carries exactly its attributes.  (That
# the header declares every call is test-symbols.sh's business.)
LC_ALL=C sort "$srcdir/attributes.txt" > "$tmp/want"
awk '{ print $1 }' "$tmp/have" > "$tmp/names"
grep -F -w -f "$tmp/names" "$tmp/want" > "$tmp/want-declared" || true
if ! diff -u "$tmp/want-declared" "$tmp/have"; then
    echo "$0: declaration attributes differ from attributes.txt (- expected, + header)"
    fail=1
fi

# The constants: every #define LIBNBD_* except the feature macros
# (LIBNBD_HAVE_*), the include guard and the attribute machinery.
sed -n 's/^#define \(LIBNBD_[A-Z0-9_]*\)[[:space:]]\{1,\}\(.*[^[:space:]]\)[[:space:]]*$/\1 \2/p' "$header" |
    grep -Ev '^LIBNBD_(HAVE_|H |GCC_VERSION|ATTRIBUTE_)' | LC_ALL=C sort > "$tmp/const-have"
LC_ALL=C sort "$srcdir/constants.txt" > "$tmp/const-want"
if ! diff -u "$tmp/const-want" "$tmp/const-have"; then
    echo "$0: constants differ from libnbd 1.24's (- expected, + header)"
    fail=1
fi

exit $fail
