#!/bin/bash
# connect-command: a server run as a subprocess over a socketpair;
# connect-uri: the export name, size and transport taken from a URI;
# both fail cleanly when there is nothing to connect to.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

run connect-command nbdkit -s --exit-with-parent pattern 3M
[ $rc -eq 0 ] || fail "connect-command failed"
expect "size: 3145728" "0: 0" "1048576: 1048576" "2097152: 2097152"
[ "$(wc -l <<<"$out")" -eq 4 ] || fail "expected 4 lines"

run connect-command /nonexistent/nbd-server
[ $rc -eq 1 ] || fail "a command that cannot run: exit $rc"

# nbdkit's memory plugin takes any export name, so the name in the URI's
# path must come back from nbd_get_export_name.
start_nbdkit mem memory 2M
uri="nbd+unix:///scratch?socket=$tmp/mem.sock"
run connect-uri "$uri"
[ $rc -eq 0 ] || fail "connect-uri failed"
expect 'export: "scratch"' "size: 2097152" "tls: no" "uri: $uri"

run connect-uri "nbd+unix:///scratch?socket=$tmp/absent.sock"
[ $rc -eq 1 ] || fail "a socket that does not exist: exit $rc"
run connect-uri "http://example.com/"
[ $rc -eq 1 ] || fail "not an NBD URI: exit $rc"
