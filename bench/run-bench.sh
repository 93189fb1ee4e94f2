#!/usr/bin/env bash
# Compare our libnbd against the system libnbd with the same nbd-bench
# binary, switching implementations with LD_LIBRARY_PATH.
#
# usage: run-bench.sh [--strace] [--callgrind] [--only-modes] [OUR_LIBDIR]
#
#   OUR_LIBDIR     directory holding our libnbd.so.0
#                  (default: "$(dirname "$0")/../lib/.libs")
#   --strace       also count syscalls per op (4k randread, QD 64, null)
#   --callgrind    also count instructions per op (same workload)
#   --only-modes   skip the throughput table (just run the selected modes)
#
# Environment:
#   NBD_BENCH      nbd-bench binary (default: bench/.libs/nbd-bench,
#                  bench/.libs/lt-nbd-bench, then bench/nbd-bench)
#   BENCH_SECONDS  duration of each throughput run (default 2)
#   BENCH_REPEAT   runs per cell, alternating ours/system; best is
#                  reported (default 3)
#   STRACE_OPS     ops for --strace (default 20000; baseline 2000)
#   CALLGRIND_OPS  ops for --callgrind (default 50000; baseline 5000)
#   SYSTEM_LIBDIR  directory of the system libnbd.so.0 (autodetected)

set -u

here="$(cd "$(dirname "$0")" && pwd)"

do_strace=0
do_callgrind=0
do_table=1
ourdir=""
for arg in "$@"; do
    case "$arg" in
        --strace) do_strace=1 ;;
        --callgrind) do_callgrind=1 ;;
        --only-modes) do_table=0 ;;
        -h|--help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
        -*) echo "$0: unknown option $arg" >&2; exit 2 ;;
        *) ourdir="$arg" ;;
    esac
done
[ -n "$ourdir" ] || ourdir="$here/../lib/.libs"
ourdir="$(cd "$ourdir" 2>/dev/null && pwd || echo "$ourdir")"

secs="${BENCH_SECONDS:-2}"
repeat="${BENCH_REPEAT:-3}"
strace_ops="${STRACE_OPS:-20000}"
callgrind_ops="${CALLGRIND_OPS:-50000}"

# ---- locate the real (non-wrapper) binary ----------------------------
is_elf () { [ -f "$1" ] && [ "$(head -c 4 "$1" | tr -d '\000' | tail -c 3)" = "ELF" ]; }
bench="${NBD_BENCH:-}"
if [ -z "$bench" ]; then
    for c in "$here/.libs/nbd-bench" "$here/.libs/lt-nbd-bench" "$here/nbd-bench"; do
        if is_elf "$c"; then bench="$c"; break; fi
    done
fi
if [ -z "$bench" ] || ! is_elf "$bench"; then
    echo "$0: cannot find an nbd-bench ELF binary (set NBD_BENCH=...)" >&2
    exit 1
fi

# ---- locate the system library directory -----------------------------
sysdir="${SYSTEM_LIBDIR:-}"
if [ -z "$sysdir" ]; then
    syslib="$(ldconfig -p 2>/dev/null | awk '/libnbd\.so\.0 .*x86-64|libnbd\.so\.0 / {print $NF; exit}')"
    [ -n "$syslib" ] && sysdir="$(dirname "$syslib")"
    [ -n "$sysdir" ] || sysdir=/usr/lib/x86_64-linux-gnu
fi

# ---- temp dir, servers, cleanup --------------------------------------
tmp="$(mktemp -d -t nbd-bench.XXXXXX)"
cleanup () {
    for pf in "$tmp"/*.pid; do
        [ -f "$pf" ] || continue
        pid="$(cat "$pf" 2>/dev/null)"
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server_n=0
SOCK=""
# start_server PLUGIN: start a fresh nbdkit, set $SOCK and $SPID.
start_server () {
    server_n=$((server_n + 1))
    local name="srv$server_n"
    SOCK="$tmp/$name.sock"
    local pidfile="$tmp/$name.pid"
    nbdkit --exit-with-parent -U "$SOCK" -P "$pidfile" "$1" 1G \
        >"$tmp/$name.log" 2>&1 &
    local bgpid=$! i
    for i in $(seq 1 200); do
        [ -s "$pidfile" ] && [ -S "$SOCK" ] && break
        kill -0 "$bgpid" 2>/dev/null || break
        sleep 0.02
    done
    if ! [ -s "$pidfile" ]; then
        echo "$0: nbdkit $1 failed to start:" >&2
        cat "$tmp/$name.log" >&2
        exit 1
    fi
    SPID="$(cat "$pidfile")"
    SPIDFILE="$pidfile"
}
stop_server () {
    kill "$SPID" 2>/dev/null
    wait 2>/dev/null
    rm -f "$SPIDFILE"
}

# run_lib WHICH CMD...: run CMD with the environment for "ours" or "system".
run_lib () {
    local which="$1"; shift
    if [ "$which" = ours ]; then
        LD_LIBRARY_PATH="$ourdir" "$@"
    else
        LD_LIBRARY_PATH="$sysdir" "$@"
    fi
}

# ---- which library does each configuration really load? --------------
echo "nbd-bench binary: $bench"
ours_ok=1
ours_lib="$(run_lib ours "$bench" --which-lib 2>/dev/null | sed -n 's/^lib=//p')"
ours_ver="$(run_lib ours timeout 10 "$bench" --which-lib 2>/dev/null | sed -n 's/^version=//p')"
sys_lib="$(run_lib system "$bench" --which-lib 2>/dev/null | sed -n 's/^lib=//p')"
sys_ver="$(run_lib system "$bench" --which-lib 2>/dev/null | sed -n 's/^version=//p')"
echo "ours:   LD_LIBRARY_PATH=$ourdir -> ${ours_lib:-(failed to load)} ${ours_ver:+(version $ours_ver)}"
echo "system: LD_LIBRARY_PATH=$sysdir -> ${sys_lib:-(failed to load)} ${sys_ver:+(version $sys_ver)}"
case "$ours_lib" in
    "$ourdir"/*) ;;
    *) echo "WARNING: our configuration did not load a library from $ourdir;" \
            "'ours' will be reported as n/a"
       ours_ok=0 ;;
esac
if [ -z "$sys_lib" ]; then
    echo "$0: the system libnbd could not be loaded" >&2
    exit 1
fi
case "$sys_lib" in
    "$ourdir"/*) echo "$0: system configuration loaded our library?!" >&2; exit 1 ;;
esac
echo

# run_one WHICH PLUGIN ARGS...: one fresh server + one run; set $V to
# ops/s, or empty on failure.  (Not called in a $(...) subshell, so the
# servers stay children of this shell.)
run_one () {
    local which="$1" plugin="$2"; shift 2
    V=""
    start_server "$plugin"
    local out rc
    out="$(run_lib "$which" timeout $((${secs%.*} + 30)) \
               "$bench" --socket "$SOCK" "$@" --seconds "$secs" 2>"$tmp/err")"
    rc=$?
    stop_server
    if [ $rc -ne 0 ]; then
        echo "  [$which] failed (rc=$rc): $(head -c 300 "$tmp/err")" >&2
        return
    fi
    echo "  [$which] $out" >&2
    V="$(sed -n 's/.*ops_per_sec=\([0-9]*\).*/\1/p' <<<"$out")"
}

# measure_row PLUGIN ARGS...: alternate ours/system BENCH_REPEAT times,
# keep the best of each in $O and $S ("n/a" if no run succeeded).
measure_row () {
    local plugin="$1"; shift
    local r bo="" bs=""
    for r in $(seq 1 "$repeat"); do
        if [ "$ours_ok" = 1 ]; then
            run_one ours "$plugin" "$@"
            if [ -n "$V" ] && { [ -z "$bo" ] || [ "$V" -gt "$bo" ]; }; then bo="$V"; fi
        fi
        run_one system "$plugin" "$@"
        if [ -n "$V" ] && { [ -z "$bs" ] || [ "$V" -gt "$bs" ]; }; then bs="$V"; fi
    done
    O="${bo:-n/a}"; S="${bs:-n/a}"
}

ratio () {
    if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = n/a ] || [ "$2" = n/a ] || [ "$2" = 0 ]; then echo n/a
    else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

if [ "$do_table" = 1 ]; then
    rows=(
        "randread-4k-qd1-memory|memory|--workload randread --bs 4096 --qd 1"
        "randread-4k-qd16-memory|memory|--workload randread --bs 4096 --qd 16"
        "randread-4k-qd64-memory|memory|--workload randread --bs 4096 --qd 64"
        "randwrite-4k-qd1-memory|memory|--workload randwrite --bs 4096 --qd 1"
        "randwrite-4k-qd16-memory|memory|--workload randwrite --bs 4096 --qd 16"
        "randwrite-4k-qd64-memory|memory|--workload randwrite --bs 4096 --qd 64"
        "randread-4k-qd64-null|null|--workload randread --bs 4096 --qd 64"
        "seqread-1M-qd4-memory|memory|--workload seqread --bs 1048576 --qd 4"
        "blockstatus-1M-qd4-memory|memory|--workload blockstatus --bs 1048576 --qd 4"
    )
    results=()
    for row in "${rows[@]}"; do
        IFS='|' read -r name plugin args <<<"$row"
        echo "running $name ..." >&2
        # shellcheck disable=SC2086
        measure_row "$plugin" $args
        results+=("$name|$O|$S|$(ratio "$O" "$S")")
    done
    echo
    printf '%-28s %12s %12s %8s\n' row "ours ops/s" "system ops/s" ratio
    for r in "${results[@]}"; do
        IFS='|' read -r name o s q <<<"$r"
        printf '%-28s %12s %12s %8s\n' "$name" "$o" "$s" "$q"
    done
    echo "(ratio = ours / system; > 1.00 means ours is faster)"
fi

# ---- syscall counting --------------------------------------------------
# strace_total OUTFILE: total number of syscalls in an strace -c summary.
strace_total () { awk '$NF == "total" { print $4 }' "$1"; }

if [ "$do_strace" = 1 ]; then
    command -v strace >/dev/null || { echo "$0: strace not installed" >&2; exit 1; }
    small=$((strace_ops / 10))
    echo
    echo "== syscalls per op: randread 4k QD64 on null, --ops $strace_ops" \
         "(baseline --ops $small subtracted) =="
    for which in system ours; do
        if [ "$which" = ours ] && [ "$ours_ok" = 0 ]; then
            printf '%-7s n/a\n' "$which"; continue
        fi
        ok=1
        for n in "$strace_ops" "$small"; do
            start_server null
            run_lib "$which" timeout 300 strace -c -f -o "$tmp/strace.$n" \
                "$bench" --socket "$SOCK" --workload randread --bs 4096 \
                --qd 64 --ops "$n" >/dev/null 2>"$tmp/err" || ok=0
            stop_server
        done
        if [ "$ok" = 0 ]; then
            printf '%-7s n/a (run failed: %s)\n' "$which" "$(head -c 200 "$tmp/err")"
            continue
        fi
        big_t="$(strace_total "$tmp/strace.$strace_ops")"
        small_t="$(strace_total "$tmp/strace.$small")"
        awk -v w="$which" -v B="$big_t" -v S="$small_t" \
            -v nb="$strace_ops" -v ns="$small" 'BEGIN {
            printf "%-7s syscalls/op = %.3f   (raw: %d syscalls / %d ops = %.3f)\n",
                   w, (B - S) / (nb - ns), B, nb, B / nb }'
        # Per-syscall breakdown of the big run (raw, includes setup).
        awk -v nb="$strace_ops" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 + 0 >= nb / 100 {
            printf "          %-12s %.3f/op\n", $NF, $4 / nb }' "$tmp/strace.$strace_ops"
    done
    echo "(note: strace slows the client a lot, which changes how requests"
    echo " batch; compare ours vs system, not against unstraced runs)"
fi

# ---- instruction counting ----------------------------------------------
if [ "$do_callgrind" = 1 ]; then
    command -v valgrind >/dev/null || { echo "$0: valgrind not installed" >&2; exit 1; }
    small=$((callgrind_ops / 10))
    echo
    echo "== instructions per op (callgrind Ir): randread 4k QD64 on null," \
         "--ops $callgrind_ops (baseline --ops $small subtracted) =="
    for which in system ours; do
        if [ "$which" = ours ] && [ "$ours_ok" = 0 ]; then
            printf '%-7s n/a\n' "$which"; continue
        fi
        ok=1
        for n in "$callgrind_ops" "$small"; do
            start_server null
            run_lib "$which" timeout 600 valgrind --tool=callgrind \
                --callgrind-out-file="$tmp/cg.$which.$n" \
                "$bench" --socket "$SOCK" --workload randread --bs 4096 \
                --qd 64 --ops "$n" >/dev/null 2>"$tmp/cg.$which.$n.err" || ok=0
            stop_server
        done
        if [ "$ok" = 0 ]; then
            printf '%-7s n/a (run failed: %s)\n' "$which" \
                "$(grep -v '^==' "$tmp/cg.$which.$small.err" | head -c 200)"
            continue
        fi
        big_i="$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/cg.$which.$callgrind_ops.err")"
        small_i="$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$tmp/cg.$which.$small.err")"
        # Self cost inside the libnbd shared object only (excludes libc,
        # the dynamic loader and the benchmark itself).
        lib_ir () {
            callgrind_annotate --threshold=100 --inclusive=no "$1" 2>/dev/null |
                awk '/libnbd\.so/ { gsub(",", "", $1); s += $1 } END { print s + 0 }'
        }
        big_l="$(lib_ir "$tmp/cg.$which.$callgrind_ops")"
        small_l="$(lib_ir "$tmp/cg.$which.$small")"
        awk -v w="$which" -v B="$big_i" -v S="$small_i" -v BL="$big_l" -v SL="$small_l" \
            -v nb="$callgrind_ops" -v ns="$small" 'BEGIN {
            printf "%-7s Ir/op total = %.0f   Ir/op inside libnbd.so = %.0f   (raw: %d Ir / %d ops = %.0f)\n",
                   w, (B - S) / (nb - ns), (BL - SL) / (nb - ns), B, nb, B / nb }'
    done
fi
exit 0
