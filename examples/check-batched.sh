#!/bin/bash
# batched: 32 commands in flight, every completion callback run once
# (written/verified counts), every closure freed once (freed = 2 per
# block), and the data on the server is what was written.
source "$(dirname "$0")/check-lib.sh"
need nbdkit python3

truncate -s 4M "$tmp/disk.img"
start_nbdkit disk file "$tmp/disk.img"
run batched "$(uri_of disk)"
[ $rc -eq 0 ] || fail "batched failed"
expect "blocks: 1024" "written: 1024" "verified: 1024" "wrong: 0" \
       "failed: 0" "freed: 2048" "most in flight: 32 writes, 32 reads"
# Block n holds bytes (7n + i) mod 256: check two blocks on the file.
python3 - "$tmp/disk.img" <<'PY' || fail "the file does not hold the blocks"
import sys
data = open (sys.argv[1], "rb").read ()
for n in (0, 1023):
    block = data[n * 4096:(n + 1) * 4096]
    assert block == bytes ((7 * n + i) % 256 for i in range (4096)), n
PY

# An export that is not a multiple of the block size: the tail is left.
start_nbdkit odd memory $((1024 * 1024 + 100))
run batched "$(uri_of odd)"
[ $rc -eq 0 ] || fail "batched failed"
expect "blocks: 256" "written: 256" "verified: 256" "freed: 512"
