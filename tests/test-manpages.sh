#!/bin/bash
# Every exported function has docs/nbd_<name>.3; each page renders
# without warnings and has the standard sections.
set -euo pipefail

: "${abs_top_builddir:?must be set (run via make check)}"
: "${top_srcdir:?must be set (run via make check)}"
: "${srcdir:=.}"

so="$abs_top_builddir/lib/.libs/libnbd.so.0"
docs="$top_srcdir/docs"
fail=0

if ! command -v man >/dev/null 2>&1 && ! command -v groff >/dev/null 2>&1; then
    echo "$0: SKIP: neither man nor groff installed"
    exit 77
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The functions: those the library exports, and those symbols.txt lists.
{
    nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "i" { sub(/@.*/, "", $3); print $3 }'
    awk '{ print $1 }' "$srcdir/symbols.txt"
} | LC_ALL=C sort -u > "$tmp/functions"
n="$(wc -l < "$tmp/functions")"
test "$n" -ge 160 || { echo "$0: only $n functions found"; exit 1; }

# Calls without a handle have no HANDLE STATE section.
no_handle=" nbd_create nbd_close nbd_get_error nbd_get_errno "

render () {
    if command -v man >/dev/null 2>&1; then
        LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$1"
    else
        groff -t -man -ww -Tutf8 "$1"
    fi
}

checked=0
while read -r fn; do
    page="$docs/$fn.3"
    if ! test -f "$page"; then
        echo "$0: $fn: missing man page $page"
        fail=1
        continue
    fi
    if ! render "$page" > "$tmp/out" 2> "$tmp/err"; then
        echo "$0: $fn: rendering failed"
        cat "$tmp/err"
        fail=1
        continue
    fi
    if test -s "$tmp/err"; then
        echo "$0: $fn: warnings while rendering $page:"
        cat "$tmp/err"
        fail=1
    fi
    # groff's own check, independent of man's settings.
    if command -v groff >/dev/null 2>&1; then
        if ! groff -t -man -ww -z "$page" 2> "$tmp/err" || test -s "$tmp/err"; then
            echo "$0: $fn: groff -man -ww -z complains:"
            cat "$tmp/err"
            fail=1
        fi
    fi
    sections="NAME|SYNOPSIS|DESCRIPTION|RETURN VALUE|ERRORS|VERSION|SEE ALSO"
    case "$no_handle" in
        *" $fn "*) ;;
        *) sections="$sections|HANDLE STATE" ;;
    esac
    IFS='|' read -r -a list <<< "$sections"
    for s in "${list[@]}"; do
        # Section headings are rendered unindented.
        if ! grep -qx "$s" "$tmp/out"; then
            echo "$0: $fn: section '$s' missing from $page"
            fail=1
        fi
    done
    # NAME names the function itself.
    if ! grep -A1 -x NAME "$tmp/out" | grep -Eq "^ *$fn +- "; then
        echo "$0: $fn: NAME section does not start with '$fn - '"
        fail=1
    fi
    # The synopsis shows the prototype.
    if ! grep -q "$fn (" "$tmp/out"; then
        echo "$0: $fn: synopsis lacks the prototype"
        fail=1
    fi
    checked=$((checked + 1))
done < "$tmp/functions"

# And no page for a function that does not exist.
for page in "$docs"/nbd_*.3; do
    fn="$(basename "$page" .3)"
    if ! grep -qx "$fn" "$tmp/functions"; then
        echo "$0: $page documents $fn, which is not exported"
        fail=1
    fi
done

# The hand-written overview pages render without warnings too.
for page in "$docs"/libnbd*.3; do
    if ! render "$page" > "$tmp/out" 2> "$tmp/err" || test -s "$tmp/err"; then
        echo "$0: $(basename "$page"): warnings while rendering:"
        cat "$tmp/err"
        fail=1
    fi
    if command -v groff >/dev/null 2>&1 &&
       { ! groff -t -man -ww -z "$page" 2> "$tmp/err" || test -s "$tmp/err"; }; then
        echo "$0: $(basename "$page"): groff -man -ww -z complains:"
        cat "$tmp/err"
        fail=1
    fi
done

# Every reference to one of this library's pages (nbd_*(3), libnbd*(3),
# the hyphen written "\-" or "-") names a page that exists.
for page in "$docs"/nbd_*.3 "$docs"/libnbd*.3; do
    for ref in $(grep -o '\\fB\(nbd_[a-z0-9_]*\|libnbd\(\\\?-[a-z]*\)*\)\\fR(3)' "$page" |
                 sed 's/^\\fB//; s/\\fR(3)$//; s/\\-/-/g' | LC_ALL=C sort -u); do
        if ! test -f "$docs/$ref.3"; then
            echo "$0: $(basename "$page") refers to $ref(3), which does not exist"
            fail=1
        fi
    done
done

echo "$0: checked $checked man pages"
test "$checked" -eq "$n" || fail=1
exit $fail
