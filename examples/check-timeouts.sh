#!/bin/bash
# timeouts: the example starts before its server (the connect timeout
# retries until it listens), then a blocking read and an event-loop read
# of a server that answers reads after 3 s both end with ETIMEDOUT after
# the 500 ms request timeout, and the handle is dead.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

start_example timeouts "$tmp/slow.sock"
sleep 0.5
start_nbdkit slow --filter=delay memory 1M delay-read=3
finish_example
[ $rc -eq 0 ] || fail "timeouts: exit $rc"
expect "connected (connect timeout 10000 ms, request timeout 500 ms)" \
       "blocking read: ETIMEDOUT after about 500 ms, handle dead: yes" \
       "event loop: nbd_ext_aio_notify_timeout: ETIMEDOUT" \
       "event loop: the read completed with ETIMEDOUT after about 500 ms"
# 0.5 s before the server, two reads of 0.5 s: well under one 3 s delay
# each.
[ $ms -lt 4000 ] || fail "took $ms ms"
echo "took $ms ms"
