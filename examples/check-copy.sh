#!/bin/bash
# copy: a file of random data, zeroes and an odd-sized tail, copied from
# one nbdkit to another, ends up byte for byte in the destination file,
# the zero chunks written without data; a destination that is too small
# is refused before anything is written.
source "$(dirname "$0")/check-lib.sh"
need nbdkit cmp

# 1 MiB random, 1 MiB zeroes, 1234 bytes random.
head -c 1048576 /dev/urandom > "$tmp/src.img"
truncate -s 2M "$tmp/src.img"
head -c 1234 /dev/urandom >> "$tmp/src.img"
size=$(stat -c %s "$tmp/src.img")
head -c "$size" /dev/urandom > "$tmp/dst.img"  # garbage to overwrite
start_nbdkit src -r file "$tmp/src.img"
start_nbdkit dst file "$tmp/dst.img"

run copy "$(uri_of src)" "$(uri_of dst)"
[ $rc -eq 0 ] || fail "copy failed"
expect "copied: $size bytes" \
       "of which zeroed without sending data: 1048576 bytes"
cmp "$tmp/src.img" "$tmp/dst.img" || fail "the copy differs"

start_nbdkit small memory 1M
run copy "$(uri_of src)" "$(uri_of small)"
[ $rc -eq 1 ] || fail "a small destination: exit $rc"
expect "the destination is smaller than the source"
