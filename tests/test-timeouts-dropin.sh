#!/bin/bash
# The timeout extensions without code changes: Debian's nbdinfo and
# nbdcopy, run unchanged on the library just built, end with a clear
# error when LIBNBD_CONNECT_TIMEOUT / LIBNBD_REQUEST_TIMEOUT are set and
# the server stalls (upstream libnbd would wait for ever).
set -u

if [ -n "${SANITIZER_CFLAGS:-}" ]; then
    echo "sanitizer build: Debian's binaries cannot load it: skipping"
    exit 77
fi
for p in nbdkit nbdinfo nbdcopy python3; do
    command -v $p >/dev/null || { echo "$p missing: skipping"; exit 77; }
done

ours="${abs_top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}/lib/.libs"
dir=$(mktemp -d /tmp/libnbd-tmo-XXXXXX)
pids=()
cleanup () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail () { echo "FAIL: $*"; exit 1; }

# Our library is the one loaded.
v=$(LD_LIBRARY_PATH="$ours" nbdinfo --version 2>&1 | sed -n 's/^libnbd //p')
sysv=$(nbdinfo --version 2>&1 | sed -n 's/^libnbd //p')
[ -n "$v" ] && [ "$v" != "$sysv" ] ||
    fail "nbdinfo did not load the library just built (libnbd '$v', system '$sysv')"

# A server that accepts connections and never says a word.
python3 - "$dir/stall.sock" <<'PY' &
import socket, sys, time
s = socket.socket (socket.AF_UNIX, socket.SOCK_STREAM)
s.bind (sys.argv[1]); s.listen (8)
conns = []
while True:
    c, _ = s.accept (); conns.append (c)
PY
pids+=($!)
for i in $(seq 100); do [ -S "$dir/stall.sock" ] && break; sleep 0.05; done

start=$(date +%s%N)
out=$(LIBNBD_CONNECT_TIMEOUT=1 LD_LIBRARY_PATH="$ours" timeout 20 \
      nbdinfo "nbd+unix:///?socket=$dir/stall.sock" 2>&1)
rc=$?
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -ne 0 ] || fail "nbdinfo succeeded against a stalled server"
[ $rc -ne 124 ] || fail "nbdinfo still hung with LIBNBD_CONNECT_TIMEOUT=1"
[ $took_ms -lt 10000 ] || fail "nbdinfo took $took_ms ms with LIBNBD_CONNECT_TIMEOUT=1"
echo "$out" | grep -q "timed out" || fail "no timeout message: $out"
echo "nbdinfo, stalled greeting: exit $rc after $took_ms ms: $out"

# A server that never answers a block status request: nbdinfo --map
# waits in a blocking call.  (Programs with their own poll loop on
# nbd_aio_get_fd, such as nbdcopy, see deadlines only if they ask
# nbd_ext_aio_get_timeout: see libnbd-ext(3).)
nbdkit -U "$dir/slow.sock" -P "$dir/slow.pid" --filter=delay memory 1M delay-extents=30 ||
    fail "nbdkit"
for i in $(seq 100); do [ -s "$dir/slow.pid" ] && break; sleep 0.05; done
pids+=("$(cat "$dir/slow.pid")")
out=$(LIBNBD_REQUEST_TIMEOUT=0.5 LD_LIBRARY_PATH="$ours" timeout 20 \
      nbdinfo --map "nbd+unix:///?socket=$dir/slow.sock" 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "nbdinfo --map succeeded against a server that never replies"
[ $rc -ne 124 ] || fail "nbdinfo --map still hung with LIBNBD_REQUEST_TIMEOUT=0.5"
echo "$out" | grep -q "timed out" || fail "no timeout message: $out"
echo "nbdinfo --map, stalled block status: exit $rc: $out"

# A program with its own poll loop (nbdcopy polls nbd_aio_get_fd and
# never asks nbd_ext_aio_get_timeout): the request timeout still ends it,
# through the watchdog.  (pattern: no extents, so nbdcopy must read.)
nbdkit -U "$dir/slowread.sock" -P "$dir/slowread.pid" --filter=delay pattern 1M rdelay=30 ||
    fail "nbdkit"
for i in $(seq 100); do [ -s "$dir/slowread.pid" ] && break; sleep 0.05; done
pids+=("$(cat "$dir/slowread.pid")")
start=$(date +%s%N)
out=$(LIBNBD_REQUEST_TIMEOUT=0.5 LD_LIBRARY_PATH="$ours" timeout 20 \
      nbdcopy "nbd+unix:///?socket=$dir/slowread.sock" "$dir/copy.img" 2>&1)
rc=$?
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc -ne 0 ] || fail "nbdcopy succeeded against a server that never replies"
[ $rc -ne 124 ] || fail "nbdcopy still hung with LIBNBD_REQUEST_TIMEOUT=0.5"
echo "$out" | grep -qi "timed out" || fail "no timeout message: $out"
echo "nbdcopy, stalled reads: exit $rc after $took_ms ms: $(echo "$out" | head -1)"

# Timeouts set against healthy servers change nothing: nbdinfo prints
# the same as without them, and nbdcopy (many requests in flight on
# several connections, its own poll loop, the watchdog thread started
# with its first command) copies 64 MiB intact and exits 0.
serve () {  # serve NAME PLUGIN ARGS...: nbdkit on $dir/NAME.sock
    local name=$1; shift
    nbdkit -U "$dir/$name.sock" -P "$dir/$name.pid" "$@" || fail "nbdkit $name"
    for i in $(seq 100); do [ -s "$dir/$name.pid" ] && break; sleep 0.05; done
    pids+=("$(cat "$dir/$name.pid")")
}
serve src pattern 64M
serve dst memory 64M
src="nbd+unix:///?socket=$dir/src.sock"
dst="nbd+unix:///?socket=$dir/dst.sock"
LD_LIBRARY_PATH="$ours" nbdinfo --map "$src" > "$dir/plain.txt" 2>&1 ||
    fail "nbdinfo --map without timeouts"
LIBNBD_CONNECT_TIMEOUT=5 LIBNBD_REQUEST_TIMEOUT=5 LD_LIBRARY_PATH="$ours" \
    nbdinfo --map "$src" > "$dir/timeouts.txt" 2>&1 ||
    fail "nbdinfo --map with timeouts: $(cat "$dir/timeouts.txt")"
cmp -s "$dir/plain.txt" "$dir/timeouts.txt" ||
    { diff "$dir/plain.txt" "$dir/timeouts.txt"; fail "nbdinfo --map differs with timeouts set"; }
LIBNBD_CONNECT_TIMEOUT=5 LIBNBD_REQUEST_TIMEOUT=5 LD_LIBRARY_PATH="$ours" \
    timeout 60 nbdcopy "$src" "$dst" || fail "nbdcopy with timeouts set: exit $?"
want=$(nbdcopy "$src" - | md5sum)
got=$(nbdcopy "$dst" - | md5sum)
[ "$want" = "$got" ] || fail "copy with timeouts set differs: $got vs $want"
echo "healthy servers with timeouts set: nbdinfo --map unchanged, nbdcopy of 64 MiB intact"
