#!/bin/bash
# list-exports: every export of nbdkit's file plugin in directory mode
# (one export per file), each with its own size, all in opt mode on one
# connection; an oldstyle server, which has no list, has one export.
source "$(dirname "$0")/check-lib.sh"
need nbdkit

mkdir "$tmp/dir"
head -c 1024 /dev/zero > "$tmp/dir/alpha"
head -c 8192 /dev/zero > "$tmp/dir/beta"
head -c 3072 /dev/zero > "$tmp/dir/gamma"
start_nbdkit dir file dir="$tmp/dir"
run list-exports "$(uri_of dir)"
[ $rc -eq 0 ] || fail "list-exports failed"
[ "$(sort <<<"$out")" = "$(printf 'alpha 1024\nbeta 8192\ngamma 3072')" ] ||
    fail "wrong export list: $out"

start_nbdkit old --oldstyle memory 1M
run list-exports "$(uri_of old)"
[ $rc -eq 0 ] || fail "an oldstyle server: exit $rc"
expect "oldstyle server: one export, 1048576 bytes"
