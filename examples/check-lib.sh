# Sourced by every check-*.sh: a private temporary directory, servers
# started on Unix sockets in it and killed by PID at exit, and helpers
# to run an example and check its output.
set -u

builddir=${builddir:-$(cd "$(dirname "$0")" && pwd)}
tmp=$(mktemp -d /tmp/nbd-examples-XXXXXX)
server_pids=()

cleanup () {
    for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${server_pids[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail () { echo "FAIL: $*"; exit 1; }
skip () { echo "SKIP: $*"; exit 77; }
need () {
    for tool; do command -v "$tool" >/dev/null || skip "$tool not found"; done
}

# start_nbdkit NAME ARGS...: nbdkit serving ARGS on $tmp/NAME.sock.
# It runs in the foreground (-f) as our child, so its PID is $! and the
# cleanup can wait for it; -P writes the pid file once it is listening.
start_nbdkit () {
    local name=$1; shift
    nbdkit -f -U "$tmp/$name.sock" -P "$tmp/$name.pid" "$@" &
    server_pids+=($!)
    wait_for_file "$tmp/$name.pid" $! "nbdkit $*"
}

# wait_for_file FILE PID WHAT: wait (10 s at most) for a server to be ready.
wait_for_file () {
    for _ in $(seq 200); do
        [ -s "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || fail "$3 exited before it was ready"
        sleep 0.05
    done
    fail "$3 not ready after 10 s"
}

uri_of () { echo "nbd+unix:///?socket=$tmp/$1.sock"; }

# run EXAMPLE ARGS...: run one example (20 s at most); sets $out (its
# stdout and stderr) and $rc.
run () {
    local prog=$1; shift
    [ -x "$builddir/$prog" ] || fail "$prog was not built"
    out=$(timeout 20 "$builddir/$prog" "$@" 2>&1)
    rc=$?
    [ $rc -ne 124 ] || fail "$prog $* did not finish in 20 s: $out"
    echo "--- $prog $*: exit $rc"
    echo "$out"
}

# start_example EXAMPLE ARGS...: run one example in the background (20 s
# at most), its output going to $tmp/out; $example is its PID.
# finish_example: wait for it; sets $out, $rc and $ms (milliseconds
# since start_example, or since $start if the caller resets it).
start_example () {
    local prog=$1; shift
    [ -x "$builddir/$prog" ] || fail "$prog was not built"
    start=$(date +%s%N)
    # $example is the PID of timeout(1), which passes signals on to it.
    (exec timeout 20 "$builddir/$prog" "$@") > "$tmp/out" 2>&1 &
    example=$!
}
finish_example () {
    wait "$example"
    rc=$?
    ms=$(ms_since "$start")
    out=$(cat "$tmp/out")
    echo "--- background example: exit $rc after $ms ms"
    echo "$out"
    [ $rc -ne 124 ] || fail "the example did not finish in 20 s"
}

# expect LINE...: each LINE is a whole line of $out.
expect () {
    for line; do
        grep -qxF -- "$line" <<<"$out" || fail "no line \"$line\" in: $out"
    done
}

# ms_since START_NS: milliseconds since a $(date +%s%N) time.
ms_since () { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# check_pattern_reads EXAMPLE: the 8 reads of aio-poll, glib-loop and
# libev-loop against nbdkit's pattern plugin, where each big-endian
# 8-byte word holds its own offset.
check_pattern_reads () {
    need nbdkit
    start_nbdkit pattern pattern 4M
    run "$1" "$(uri_of pattern)"
    [ $rc -eq 0 ] || fail "$1 failed"
    [ "$(wc -l <<<"$out")" -eq 8 ] || fail "expected 8 lines"
    for i in $(seq 0 7); do
        off=$((i * 524288))
        expect "read at $off: first word $off, last word $((off + 65528))"
    done
}
