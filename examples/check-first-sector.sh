#!/bin/bash
# first-sector writes exactly the first 512 bytes of the export; an
# export shorter than a sector is an error, not a short or padded read.
source "$(dirname "$0")/check-lib.sh"
need nbdkit cmp

head -c 4096 /dev/urandom > "$tmp/disk.img"
start_nbdkit disk file "$tmp/disk.img"
timeout 20 "$builddir/first-sector" "$(uri_of disk)" > "$tmp/sector" ||
    fail "first-sector failed"
head -c 512 "$tmp/disk.img" > "$tmp/expected"
cmp "$tmp/sector" "$tmp/expected" || fail "the sector differs from the file's start"
echo "first-sector: 512 bytes, equal to the file's first sector"

start_nbdkit tiny memory 100
run first-sector "$(uri_of tiny)"
[ $rc -eq 1 ] || fail "a 100-byte export: exit $rc"
grep -qi "nbd_pread" <<<"$out" || fail "no error from nbd_pread: $out"
