#!/bin/bash
# strict-reads: every chunk of every read checked, the whole export read
# exactly once; qemu-nbd answers reads of a sparse file with hole chunks,
# which must read as zeroes.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

start_nbdkit pattern pattern 5M
run strict-reads "$(uri_of pattern)"
[ $rc -eq 0 ] || fail "strict-reads failed"
expect "bytes: 5242880" "hole chunks: 0" "error chunks: 0" "all chunks checked"
reads=$(sed -n 's/^reads: \([0-9]*\) .*/\1/p' <<<"$out")
data=$(sed -n 's/^data chunks: //p' <<<"$out")
[ "$reads" -ge 5 ] && [ "$data" -ge "$reads" ] ||
    fail "$reads reads, $data data chunks"
grep -q "^reads: $reads ($((reads / 2)) with DF)$" <<<"$out" ||
    fail "not every other read used DF"

# A read the server fails makes the program fail with the server's error.
start_nbdkit err --filter=error memory 1M error=EIO error-pread-rate=1
run strict-reads "$(uri_of err)"
[ $rc -eq 1 ] || fail "reads that all fail: exit $rc"
grep -q "Input/output error" <<<"$out" || fail "no EIO in: $out"

if command -v qemu-nbd >/dev/null; then
    truncate -s 4M "$tmp/sparse.img"
    printf 'data' | dd of="$tmp/sparse.img" bs=1 seek=2097152 conv=notrunc 2>/dev/null
    qemu-nbd -t -k "$tmp/q.sock" -f raw -r --pid-file="$tmp/q.pid" \
        "$tmp/sparse.img" &
    server_pids+=($!)
    wait_for_file "$tmp/q.pid" $! qemu-nbd
    run strict-reads "$(uri_of q)"
    [ $rc -eq 0 ] || fail "strict-reads on qemu-nbd failed"
    expect "bytes: 4194304" "all chunks checked"
    holes=$(sed -n 's/^hole chunks: //p' <<<"$out")
    [ "$holes" -gt 0 ] || fail "qemu-nbd sent no hole chunk"
else
    echo "qemu-nbd not found: hole chunks not checked"
fi
