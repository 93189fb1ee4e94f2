#!/bin/bash
# block-status-map: the map of an export with two data areas in zeroes
# is the one Debian's nbdinfo --map prints; data and holes are where the
# export put them; a server without base:allocation is refused clearly.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

# nbdkit's data plugin: bytes at 64 KiB and at 1 MiB, zeroes elsewhere.
start_nbdkit data data "@65536 1 @1048576 2 3 4" size=3M
run block-status-map "$(uri_of data)"
[ $rc -eq 0 ] || fail "block-status-map failed"
map=$(awk '{ print $1, $2, $3, $4 }' <<<"$out")

# Runs must tile the export: each starts where the last ended.
awk 'BEGIN { next_start = 0 }
     { if ($1 != next_start) exit 1; next_start = $1 + $2 }
     END { if (next_start != 3145728) exit 1 }' <<<"$map" ||
    fail "the runs do not cover the export exactly: $map"
# The first run is a hole, the bytes written are in data runs.
[ "$(head -1 <<<"$map" | cut -d' ' -f1,4)" = "0 hole,zero" ] ||
    fail "the map does not start with a hole: $map"
for off in 65536 1048576; do
    awk -v o=$off '$1 <= o && o < $1 + $2 && $4 == "data" { found = 1 }
                   END { exit !found }' <<<"$map" ||
        fail "offset $off is not in a data run: $map"
done

if command -v nbdinfo >/dev/null; then
    theirs=$(nbdinfo --map "$(uri_of data)" | awk '{ print $1, $2, $3, $4 }')
    [ "$map" = "$theirs" ] || fail "nbdinfo --map says: $theirs"
    echo "the same map as nbdinfo --map"
fi

# Without structured replies (--no-sr) there are no meta contexts.
start_nbdkit nosr --no-sr memory 1M
run block-status-map "$(uri_of nosr)"
[ $rc -eq 1 ] || fail "a server without meta contexts: exit $rc"
expect "the server does not report base:allocation"
