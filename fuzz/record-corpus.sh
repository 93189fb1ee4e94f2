#!/bin/bash
# Record the seed corpus of fuzz-server and fuzz-replies from real
# servers: fuzz-record runs the targets' client sessions against nbdkit
# (several plugins and filters, so the seeds hold data, holes, errors,
# block sizes, export lists) and against the project's nbd-test-server
# (extended headers, which Debian 12's servers lack, and scripted
# faults) and qemu-nbd (sparse reads), through a proxy
# that keeps the server's bytes.  Rewrites corpus/server and
# corpus/replies.  Run from the build tree's fuzz/ directory:
#   ../../fuzz/record-corpus.sh   (or: fuzz/record-corpus.sh in-tree)
set -euo pipefail

srcdir=$(cd "$(dirname "$0")" && pwd)
record=./fuzz-record
test_server=../tests/nbd-test-server
for p in "$record" "$test_server"; do
    if ! test -x "$p"; then
        echo "$0: $p not built (make -C fuzz check_PROGRAMS; make -C tests nbd-test-server)" >&2
        exit 1
    fi
done

tmp=$(mktemp -d)
pid=
cleanup () {
    if test -n "$pid"; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

wait_pidfile () {
    for _ in $(seq 100); do
        if test -s "$tmp/pid"; then pid=$(cat "$tmp/pid"); return 0; fi
        sleep 0.1
    done
    echo "$0: server did not start" >&2
    exit 1
}

stop_server () {
    if test -n "$pid"; then
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    fi
    pid=
    rm -f "$tmp/pid" "$tmp/sock"
}

# nbdkit NAME SETTINGS... -- NBDKIT-ARGS...: one server, many sessions.
with_nbdkit () {
    local name=$1; shift
    local settings=()
    while test "$1" != "--"; do settings+=("$1"); shift; done
    shift
    nbdkit -f -U "$tmp/sock" -P "$tmp/pid" "$@" 2>>"$tmp/nbdkit.log" &
    wait_pidfile
    for s in "${settings[@]}"; do
        case "$s" in
            replies:*) $record replies "${s#replies:}" "$tmp/sock" \
                           "$srcdir/corpus/replies/$name-mode${s#replies:}" ;;
            *) $record server "$s" "$tmp/sock" \
                   "$srcdir/corpus/server/$name-$(printf %02x "$s")" ;;
        esac
    done
    stop_server
}

# nbd-test-server serves one client: a server per session.
with_test_server () {
    local name=$1 s=$2; shift 2
    $test_server --unix "$tmp/sock" --pidfile "$tmp/pid" "$@" &
    wait_pidfile
    case "$s" in
        replies:*) $record replies "${s#replies:}" "$tmp/sock" \
                       "$srcdir/corpus/replies/$name-mode${s#replies:}" ;;
        *) $record server "$s" "$tmp/sock" \
               "$srcdir/corpus/server/$name-$(printf %02x "$s")" ;;
    esac
    wait "$pid" 2>/dev/null || true
    pid=
    rm -f "$tmp/pid" "$tmp/sock"
}

rm -rf "$srcdir/corpus/server" "$srcdir/corpus/replies"
mkdir -p "$srcdir/corpus/server" "$srcdir/corpus/replies"

# Settings bytes (harness.h): 01 structured, 02 extended, 04 opt mode,
# 08 meta contexts, 10 not strict, 20 full info, 40 TLS allowed,
# 80 client handshake flags 0.
with_nbdkit memory 0x00 0x01 0x09 0x0d 0x19 0x29 0x2d 0x49 0x81 0x04 0x3d 0x7f \
    replies:0 replies:1 replies:0x81 -- memory size=1M
with_nbdkit sparse 0x09 0x0d 0x2d 0x19 replies:1 -- -r \
    --filter=blocksize-policy sparse-random size=1M \
    blocksize-minimum=512 blocksize-preferred=4096 blocksize-maximum=65536
with_nbdkit errors 0x09 0x0c replies:1 -- --filter=error memory size=1M \
    error=EIO error-pread-rate=50% error-extents-rate=30%
with_nbdkit nosr 0x09 0x0d replies:0 -- --no-sr memory size=1M
for s in 0x0b 0x0f 0x2f 0x1b 0x03 replies:2 replies:0x82; do
    with_test_server testsrv "$s" --pattern --description "fuzz seed" \
        --block-size 512,4096,1048576
done
for s in 0x0b replies:2; do
    with_test_server testsrv-ro "$s" --read-only --export ""
done
# Scripted faults: starting points past the checks real servers never
# reach (split reads, error chunks, stray and duplicate replies).
for fault in overlap-chunks gap-chunks stray-chunk unknown-chunk \
             unknown-error-chunk error-reply duplicate-reply big-extent \
             short-error-message; do
    for s in 0x0b replies:1; do
        with_test_server "fault-$fault" "$s" --fault "$fault" --pattern
    done
done

# qemu-nbd: reads split into data and hole chunks (a sparse file with
# data in [64K,68K) and [76K,80K), inside the 16.5K read at 64K), and
# qemu:allocation-depth beside base:allocation.
if command -v qemu-nbd >/dev/null; then
    truncate -s 1M "$tmp/disk"
    for off in 64 76; do
        dd if=/dev/urandom of="$tmp/disk" bs=1K seek=$off count=4 conv=notrunc status=none
    done
    qemu-nbd -f raw -t -k "$tmp/sock" --pid-file="$tmp/pid" "$tmp/disk" 2>>"$tmp/qemu.log" &
    wait_pidfile
    while ! test -S "$tmp/sock"; do sleep 0.05; done
    for s in 0x09 0x0d 0x19 0x2d replies:1 replies:0; do
        case "$s" in
            replies:*) $record replies "${s#replies:}" "$tmp/sock" \
                           "$srcdir/corpus/replies/qemu-mode${s#replies:}" ;;
            *) $record server "$s" "$tmp/sock" \
                   "$srcdir/corpus/server/qemu-$(printf %02x "$s")" ;;
        esac
    done
    stop_server
fi
ls -l "$srcdir/corpus/server" "$srcdir/corpus/replies"
