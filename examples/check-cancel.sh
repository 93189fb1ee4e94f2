#!/bin/bash
# cancel: a blocking read of a server that answers after 3 s returns
# ECANCELED soon after a timer signal, or after Ctrl-C (SIGINT); without
# a signal the whole export is read.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

start_nbdkit slow --filter=delay memory 1M delay-read=3
start=$(date +%s%N)
run cancel "$(uri_of slow)" 0.3
ms=$(ms_since $start)
[ $rc -eq 2 ] || fail "cancel by timer: exit $rc"
expect "cancelled after 0 of 1048576 bytes" "handle dead: yes"
[ $ms -lt 2500 ] || fail "the cancel took $ms ms"

start_example cancel "$(uri_of slow)"
# Signal only once the handler is installed (the program says so).
for _ in $(seq 200); do
    grep -q "^reading" "$tmp/out" && break
    kill -0 $example 2>/dev/null || break
    sleep 0.05
done
sleep 0.2   # and the read has started
start=$(date +%s%N)
kill -INT $example
finish_example
[ $rc -eq 2 ] || fail "cancel by SIGINT: exit $rc"
expect "cancelled after 0 of 1048576 bytes" "handle dead: yes"
[ $ms -lt 2000 ] || fail "SIGINT took $ms ms to stop the read"

start_nbdkit fast memory 3M
run cancel "$(uri_of fast)"
[ $rc -eq 0 ] || fail "cancel without a signal: exit $rc"
expect "read all 3145728 bytes"
