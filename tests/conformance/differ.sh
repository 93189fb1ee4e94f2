#!/bin/bash
# Differential driver of the conformance group: runs one probe (a C
# program, or a Python script using python3-libnbd) once on Debian's
# libnbd.so.0 (1.14) and once on the library just built, and compares
# what they printed line by line.  See probe.h for the line format.
#
#   differ.sh ./probe-foo        (automake runs it as LOG_COMPILER)
#   differ.sh probe-foo.py
#
# Exit: 0 same, 1 lines differ (listed as "system:" / "ours:" pairs),
# 77 skipped (no Debian libnbd, or the probe skipped itself), 99 error.
set -u

probe=$1
name=$(basename "$probe")
system_lib=${CONFORMANCE_SYSTEM_LIB:-/usr/lib/x86_64-linux-gnu/libnbd.so.0}
build=${abs_top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
ours_dir=$build/lib/.libs
srcdir=${srcdir:-$(dirname "$0")}

if [ ! -e "$system_lib" ]; then
    echo "$name: $system_lib missing (package libnbd0): skipping"
    exit 77
fi
if [ ! -e "$ours_dir/libnbd.so.0" ]; then
    echo "$name: $ours_dir/libnbd.so.0 not built"
    exit 99
fi

case $probe in
    *.py)
        # Debian's binaries (python3 and its libnbd module) cannot load a
        # sanitizer build of the library.
        if [ -n "${SANITIZER_CFLAGS:-}" ]; then
            echo "$name: sanitizer build: skipping"
            exit 77
        fi
        python=/usr/bin/python3
        if ! $python -c 'import nbd' 2>/dev/null; then
            echo "$name: python3-libnbd missing: skipping"
            exit 77
        fi
        cmd=(env PYTHONPATH="$srcdir" "$python" "$probe") ;;
    */*) cmd=("$probe") ;;
    *)   cmd=("./$probe") ;;
esac

out=$(mktemp -d /tmp/libnbd-differ-XXXXXX)
trap 'rm -rf "$out"' EXIT

# run LABEL LIBFILE [LD_LIBRARY_PATH]: the probe's stdout in $out/LABEL.raw
run () {
    local label=$1 lib=$2 path=${3:-}
    export CONFORMANCE_ROLE
    if [ -n "$path" ]; then
        env LD_LIBRARY_PATH="$path" CONFORMANCE_LIB="$lib" LIBNBD_DEBUG= \
            timeout -k 5 120 "${cmd[@]}" > "$out/$label.raw" 2> "$out/$label.err"
    else
        env -u LD_LIBRARY_PATH CONFORMANCE_LIB="$lib" LIBNBD_DEBUG= \
            timeout -k 5 120 "${cmd[@]}" > "$out/$label.raw" 2> "$out/$label.err"
    fi
    echo $? > "$out/$label.rc"
}

CONFORMANCE_ROLE=reference run system "$system_lib"
CONFORMANCE_ROLE=candidate run ours "$ours_dir/libnbd.so.0" "$ours_dir"

for label in system ours; do
    rc=$(cat "$out/$label.rc")
    case $rc in
        77) echo "$name: skipped on $label:"; cat "$out/$label.err"; exit 77 ;;
        99) echo "$name: probe error on $label:"; cat "$out/$label.err"; exit 99 ;;
    esac
done

# Expected-value lines ("key:<TAB>value [want expected]"): ours must give
# the expected value; 1.14's value is shown for information only.
normalize () {   # normalize LABEL
    awk -v label="$1" '
        match ($0, / \[want .*\]$/) {
            value = substr ($0, 1, RSTART - 1)
            expected = substr ($0, RSTART + 7, RLENGTH - 8)
            tab = index (value, "\t")
            key = substr (value, 1, tab - 2)
            got = substr (value, tab + 1)
            if (label == "system") {
                print "(1.14 gives \"" got "\" for expected-value line " key ")" > "/dev/stderr"
                print key ": as expected"
            } else if (got == expected)
                print key ": as expected"
            else
                print key ": " got " (expected " expected ")"
            next
        }
        { print }
    ' "$out/$1.raw" 2>> "$out/info"
    rc=$(cat "$out/$1.rc")
    case $rc in
        0) ;;
        124|137) echo "exit: timeout" ;;
        *) if [ "$rc" -gt 128 ]; then echo "exit: signal $((rc - 128))"
           else echo "exit: $rc"; fi ;;
    esac
}
normalize system > "$out/system.txt"
normalize ours > "$out/ours.txt"

echo "== $name: $(wc -l < "$out/system.txt") observations on 1.14, $(wc -l < "$out/ours.txt") on ours"
[ -s "$out/info" ] && sed 's/^/   /' "$out/info"
if diff -q "$out/system.txt" "$out/ours.txt" >/dev/null; then
    echo "$name: same behaviour on both libraries"
    exit 0
fi
echo "$name: DIFFERENT lines (system = Debian libnbd 1.14, ours = lib/.libs):"
diff --old-line-format='  system: %L' --new-line-format='  ours:   %L' \
     --unchanged-line-format='' "$out/system.txt" "$out/ours.txt"
echo "-- stderr on 1.14:"; sed 's/^/   /' "$out/system.err"
echo "-- stderr on ours:"; sed 's/^/   /' "$out/ours.err"
exit 1
