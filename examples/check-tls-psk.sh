#!/bin/bash
# tls-psk: TLS negotiated with the right key; a wrong key, an unknown
# user and a server without TLS are all refused (TLS is required).
source "$(dirname "$0")/check-lib.sh"
need nbdkit psktool

psktool -u alice -p "$tmp/keys.psk" >/dev/null || fail "psktool"
psktool -u alice -p "$tmp/other.psk" >/dev/null || fail "psktool"
start_nbdkit tls --tls=require --tls-psk="$tmp/keys.psk" memory 1M
start_nbdkit plain memory 1M

run tls-psk "$tmp/keys.psk" alice "$tmp/tls.sock"
[ $rc -eq 0 ] || fail "tls-psk with the right key failed"
expect "tls: yes" "read back: ok"

run tls-psk "$tmp/other.psk" alice "$tmp/tls.sock"
[ $rc -eq 1 ] || fail "a wrong key: exit $rc"
grep -q "tls: yes" <<<"$out" && fail "connected with a wrong key"

run tls-psk "$tmp/keys.psk" bob "$tmp/tls.sock"
[ $rc -eq 1 ] || fail "an unknown user: exit $rc"

run tls-psk "$tmp/keys.psk" alice "$tmp/plain.sock"
[ $rc -eq 1 ] || fail "a server without TLS: exit $rc"
grep -q "read back" <<<"$out" && fail "data went over a plain connection"
exit 0
