#!/bin/bash
# threads: 4 threads on one handle, each checking its own data, against
# a server that takes 200 ms per request.  16 requests one at a time
# would take 3.2 s; in parallel they take about 0.8 s.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

start_nbdkit slow --filter=delay memory 1M delay-read=200ms delay-write=200ms
run threads "$(uri_of slow)"
[ $rc -eq 0 ] || fail "threads failed"
for i in 0 1 2 3; do expect "thread $i: 2 of 2 reads verified"; done
expect "requests: 16"
ms=$(sed -n 's/^elapsed: \([0-9]*\) ms$/\1/p' <<<"$out")
[ -n "$ms" ] || fail "no elapsed time"
[ "$ms" -ge 750 ] || fail "$ms ms: faster than 4 rounds of 200 ms?"
[ "$ms" -lt 2400 ] || fail "$ms ms: the threads' requests did not overlap"
