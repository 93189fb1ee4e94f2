#!/usr/bin/env bash
# Compare our libnbd against the system libnbd with the same benchmark
# binaries (nbd-bench, nbd-bench-threads), switching implementations with
# LD_LIBRARY_PATH.  Every row is explained in README.md next to this file.
#
# usage: run-bench.sh [--strace] [--callgrind] [--only-modes] [OUR_LIBDIR]
#
#   OUR_LIBDIR     directory holding our libnbd.so.0
#                  (default: "$(dirname "$0")/../lib/.libs")
#   --strace       also count syscalls per op (4k randread, QD 64, null)
#   --callgrind    also count instructions per op (same workload)
#   --callgrind    also count instructions per op (same workload), and
#                  for ours with LIBNBD_REQUEST_TIMEOUT=60 as well
#   --only-modes   skip the throughput tables (just run the selected modes)
#
# Environment:
#   NBD_BENCH      nbd-bench binary (default: bench/.libs/nbd-bench,
#                  bench/.libs/lt-nbd-bench, then bench/nbd-bench)
#   NBD_BENCH_THREADS  nbd-bench-threads binary (same search order)
#   BENCH_SECONDS  duration of each throughput run (default 2)
#   BENCH_REPEAT   runs per cell, alternating the two sides; best is
#                  reported, and the min/median of the run-by-run ratios
#                  (default 3)
#   BENCH_ROWS     extended regexp: only run table rows whose name
#                  matches (default: all)
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
row_filter="${BENCH_ROWS:-}"

# ---- locate the real (non-wrapper) binaries ---------------------------
is_elf () { [ -f "$1" ] && [ "$(head -c 4 "$1" | tr -d '\000' | tail -c 3)" = "ELF" ]; }
# find_bin NAME OVERRIDE VARNAME: print the ELF for program NAME.
find_bin () {
    local name="$1" b="$2" c
    if [ -z "$b" ]; then
        for c in "$here/.libs/$name" "$here/.libs/lt-$name" "$here/$name"; do
            if is_elf "$c"; then b="$c"; break; fi
        done
    fi
    if [ -z "$b" ] || ! is_elf "$b"; then
        echo "$0: cannot find a $name ELF binary (set $3=...)" >&2
        exit 1
    fi
    echo "$b"
}
bench="$(find_bin nbd-bench "${NBD_BENCH:-}" NBD_BENCH)" || exit 1
bench_threads="$(find_bin nbd-bench-threads "${NBD_BENCH_THREADS:-}" NBD_BENCH_THREADS)" || exit 1

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

# run_lib WHICH CMD...: run CMD with the environment for "ours",
# "ours-rt60" (ours with a 60 s request timeout from the environment) or
# "system".  The timeout variables are cleared otherwise, so that a
# caller's environment cannot turn "unset" into "set".
run_lib () {
    local which="$1"; shift
    case "$which" in
        ours)      env -u LIBNBD_REQUEST_TIMEOUT -u LIBNBD_CONNECT_TIMEOUT \
                       LD_LIBRARY_PATH="$ourdir" "$@" ;;
        ours-rt60) env -u LIBNBD_CONNECT_TIMEOUT LIBNBD_REQUEST_TIMEOUT=60 \
                       LD_LIBRARY_PATH="$ourdir" "$@" ;;
        *)         env -u LIBNBD_REQUEST_TIMEOUT -u LIBNBD_CONNECT_TIMEOUT \
                       LD_LIBRARY_PATH="$sysdir" "$@" ;;
    esac
}

# ---- which library does each configuration really load? --------------
echo "nbd-bench binary: $bench"
echo "nbd-bench-threads binary: $bench_threads"
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
# Both programs must map the same implementations.
for which in ours system; do
    want="$ours_lib"; [ "$which" = system ] && want="$sys_lib"
    got="$(run_lib "$which" "$bench_threads" --which-lib 2>/dev/null | sed -n 's/^lib=//p')"
    if [ -n "$want" ] && [ "$got" != "$want" ]; then
        echo "$0: nbd-bench-threads loads '$got' for $which, nbd-bench '$want'" >&2
        exit 1
    fi
done
echo

# run_one WHICH PROGRAM PLUGIN ARGS...: one fresh server + one run; set
# $V to ops/s, or empty on failure.  (Not called in a $(...) subshell, so
# the servers stay children of this shell.)
run_one () {
    local which="$1" prog="$2" plugin="$3"; shift 3
    V=""
    start_server "$plugin"
    local out rc
    out="$(run_lib "$which" timeout $((${secs%.*} + 30)) \
               "$prog" --socket "$SOCK" "$@" --seconds "$secs" 2>"$tmp/err")"
    rc=$?
    stop_server
    if [ $rc -ne 0 ]; then
        echo "  [$which] failed (rc=$rc): $(head -c 300 "$tmp/err")" >&2
        return
    fi
    echo "  [$which] $out" >&2
    V="$(sed -n 's/.*ops_per_sec=\([0-9]*\).*/\1/p' <<<"$out")"
}

ratio () {
    if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = n/a ] || [ "$2" = n/a ] || [ "$2" = 0 ]; then echo n/a
    else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; fi
}

# measure_row A B PROGRAM PLUGIN ARGS...: alternate configurations A and B
# BENCH_REPEAT times, keep the best of each in $O and $S ("n/a" if no run
# succeeded), and in $PMIN / $PMED the min and median of the ratios of
# the runs made one after the other (each pair saw about the same load
# from the rest of the machine, so their spread shows the noise).
measure_row () {
    local a="$1" b="$2" prog="$3" plugin="$4"; shift 4
    local r bo="" bs="" va pairs=()
    for r in $(seq 1 "$repeat"); do
        va=""
        if [ "$ours_ok" = 1 ] || [ "${a#ours}" = "$a" ]; then
            run_one "$a" "$prog" "$plugin" "$@"; va="$V"
            if [ -n "$V" ] && { [ -z "$bo" ] || [ "$V" -gt "$bo" ]; }; then bo="$V"; fi
        fi
        V=""
        if [ "$ours_ok" = 1 ] || [ "${b#ours}" = "$b" ]; then
            run_one "$b" "$prog" "$plugin" "$@"
            if [ -n "$V" ] && { [ -z "$bs" ] || [ "$V" -gt "$bs" ]; }; then bs="$V"; fi
        fi
        if [ -n "$va" ] && [ -n "$V" ] && [ "$V" != 0 ]; then
            pairs+=("$(ratio "$va" "$V")")
        fi
    done
    O="${bo:-n/a}"; S="${bs:-n/a}"
    PMIN=n/a; PMED=n/a
    if [ "${#pairs[@]}" -gt 0 ]; then
        read -r PMIN PMED < <(printf '%s\n' "${pairs[@]}" | sort -g |
            awk '{ v[NR] = $1 } END {
                 m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                 printf "%.2f %.2f\n", v[1], m }')
    fi
}

# run_table TITLE COL_A COL_B ROW...: each ROW is
# "name|A|B|program|plugin|args"; measure them all, then print a table.
run_table () {
    local title="$1" col_a="$2" col_b="$3"; shift 3
    local row name a b prog plugin args results=() r o s q pmin pmed
    for row in "$@"; do
        IFS='|' read -r name a b prog plugin args <<<"$row"
        if [ -n "$row_filter" ] && ! grep -Eq -- "$row_filter" <<<"$name"; then
            continue
        fi
        echo "running $name ($a vs $b) ..." >&2
        # shellcheck disable=SC2086
        measure_row "$a" "$b" "$prog" "$plugin" $args
        results+=("$name|$O|$S|$(ratio "$O" "$S")|$PMIN|$PMED")
    done
    [ "${#results[@]}" -gt 0 ] || return 0
    echo
    echo "== $title =="
    printf '%-30s %12s %12s %8s %16s\n' row "$col_a" "$col_b" ratio "run ratios min/med"
    for r in "${results[@]}"; do
        IFS='|' read -r name o s q pmin pmed <<<"$r"
        printf '%-30s %12s %12s %8s %16s\n' "$name" "$o" "$s" "$q" "$pmin / $pmed"
    done
}

if [ "$do_table" = 1 ]; then
    vs="ours|system|$bench"
    run_table "asynchronous commands at a fixed queue depth (nbd-bench)" \
        "ours ops/s" "system ops/s" \
        "randread-4k-qd1-memory|$vs|memory|--workload randread --bs 4096 --qd 1" \
        "randread-4k-qd16-memory|$vs|memory|--workload randread --bs 4096 --qd 16" \
        "randread-4k-qd64-memory|$vs|memory|--workload randread --bs 4096 --qd 64" \
        "randwrite-4k-qd1-memory|$vs|memory|--workload randwrite --bs 4096 --qd 1" \
        "randwrite-4k-qd16-memory|$vs|memory|--workload randwrite --bs 4096 --qd 16" \
        "randwrite-4k-qd64-memory|$vs|memory|--workload randwrite --bs 4096 --qd 64" \
        "randread-4k-qd64-null|$vs|null|--workload randread --bs 4096 --qd 64" \
        "seqread-1M-qd4-memory|$vs|memory|--workload seqread --bs 1048576 --qd 4" \
        "blockstatus-1M-qd4-memory|$vs|memory|--workload blockstatus --bs 1048576 --qd 4"

    vs="ours|system|$bench_threads"
    run_table "threads doing blocking reads on one shared handle (nbd-bench-threads)" \
        "ours ops/s" "system ops/s" \
        "threads1-randread-4k-memory|$vs|memory|--threads 1 --bs 4096" \
        "threads4-randread-4k-memory|$vs|memory|--threads 4 --bs 4096" \
        "threads16-randread-4k-memory|$vs|memory|--threads 16 --bs 4096"

    run_table "request timeout unset vs LIBNBD_REQUEST_TIMEOUT=60 (ours only)" \
        "unset ops/s" "60 s ops/s" \
        "timeout-randread-4k-qd64-mem|ours|ours-rt60|$bench|memory|--workload randread --bs 4096 --qd 64"
    echo
    echo "(ratio = best of column 1 / best of column 2; > 1.00 means the first"
    echo " is faster; run ratios = min and median over runs made back to back)"
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
    for which in system ours ours-rt60; do
        if [ "${which#ours}" != "$which" ] && [ "$ours_ok" = 0 ]; then
            printf '%-9s n/a\n' "$which"; continue
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
            printf '%-9s n/a (run failed: %s)\n' "$which" \
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
            printf "%-9s Ir/op total = %.0f   Ir/op inside libnbd.so = %.0f   (raw: %d Ir / %d ops = %.0f)\n",
                   w, (B - S) / (nb - ns), (BL - SL) / (nb - ns), B, nb, B / nb }'
    done
    echo "(ours-rt60: ours with LIBNBD_REQUEST_TIMEOUT=60; the difference to"
    echo " ours is what the deadline bookkeeping costs when a timeout is set)"
fi
exit 0
