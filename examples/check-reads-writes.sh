#!/bin/bash
# reads-writes: every step reads back what it wrote, and its writes
# reach the server (checked from another connection); a read-only
# export is refused.
source "$(dirname "$0")/check-lib.sh"
need nbdkit cmp

truncate -s 1M "$tmp/disk.img"
start_nbdkit disk file "$tmp/disk.img"
run reads-writes "$(uri_of disk)"
[ $rc -eq 0 ] || fail "reads-writes failed"
expect "write at 0: read back ok" "write-fua at 65536: read back ok" \
       "zero at 0: read back ok" "trim at 131072: done" "flush: done" \
       "read past the end: refused (EINVAL)" \
       "still connected, block at 65536: read back ok" "ok"
# On the file itself: zeroes at 0, 'b' from 64 KiB.
head -c 65536 /dev/zero > "$tmp/expected"
head -c 65536 /dev/zero | tr '\0' b >> "$tmp/expected"
head -c 131072 "$tmp/disk.img" | cmp - "$tmp/expected" ||
    fail "the file does not hold what was written"

start_nbdkit ro -r memory 1M
run reads-writes "$(uri_of ro)"
[ $rc -eq 1 ] || fail "a read-only export: exit $rc"
expect "the export is read-only"
