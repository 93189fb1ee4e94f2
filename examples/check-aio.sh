#!/bin/bash
# aio-poll: eight reads issued at once and completed by the program's
# own poll loop return the right data.  Also: a connection refused by
# the server fails cleanly, without a hang.
source "$(dirname "$0")/check-lib.sh"
check_pattern_reads aio-poll

run aio-poll "nbd+unix:///?socket=$tmp/nothing-here.sock"
[ $rc -eq 1 ] || fail "connecting to no server: exit $rc"
grep -q "nothing-here.sock" <<<"$out" || fail "the error names no socket: $out"
