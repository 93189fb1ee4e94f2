#!/bin/bash
# Drop-in check: Debian's own nbdinfo and nbdcopy, built against the
# system libnbd, run unchanged on the library just built and give the
# same results as on the system library.
set -u

# Debian's binaries are not built with the sanitizers, so they cannot load
# a sanitizer build of the library.
if [ -n "${SANITIZER_CFLAGS:-}" ]; then
    echo "sanitizer build: skipping"
    exit 77
fi

for p in nbdkit nbdinfo nbdcopy md5sum; do
    if ! command -v $p >/dev/null; then
        echo "$p missing: skipping"
        exit 77
    fi
done

ours="${abs_top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}/lib/.libs"
dir=$(mktemp -d /tmp/libnbd-dropin-XXXXXX)
pids=()
cleanup () {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$dir"
}
trap cleanup EXIT

start () {  # start NAME ARGS...: nbdkit on $dir/NAME.sock
    local name=$1; shift
    nbdkit -U "$dir/$name.sock" -P "$dir/$name.pid" "$@" || exit 1
    for i in $(seq 100); do
        [ -s "$dir/$name.pid" ] && break
        sleep 0.05
    done
    pids+=("$(cat "$dir/$name.pid")")
}
fail () { echo "FAIL: $*"; exit 1; }

# The binaries really load our library (and the system one without it).
LD_LIBRARY_PATH=$ours ldd "$(command -v nbdinfo)" | grep -q "$ours/libnbd.so.0" ||
    fail "nbdinfo does not load $ours/libnbd.so.0"

start src pattern 64M
start dst memory 64M
start named --filter=exportname memory 1M exportname=alpha exportname=beta
src="nbd+unix:///?socket=$dir/src.sock"
dst="nbd+unix:///?socket=$dir/dst.sock"
named="nbd+unix:///alpha?socket=$dir/named.sock"

# nbdinfo: every output mode identical on both libraries.
for args in "" "--json" "--size" "--map" "--list" "--can flush" "--is read-only"; do
    for uri in "$src" "$named"; do
        LD_LIBRARY_PATH=$ours nbdinfo $args "$uri" > "$dir/ours.txt" 2>&1; r1=$?
        nbdinfo $args "$uri" > "$dir/system.txt" 2>&1; r2=$?
        [ $r1 = $r2 ] || fail "nbdinfo $args $uri: exit $r1 (ours) vs $r2 (system)"
        cmp -s "$dir/ours.txt" "$dir/system.txt" ||
            { diff "$dir/ours.txt" "$dir/system.txt"; fail "nbdinfo $args $uri differs"; }
    done
done

# nbdcopy: 64 MiB server to server through our library (several
# connections, many requests in flight), then read back and compare.
LD_LIBRARY_PATH=$ours nbdcopy "$src" "$dst" || fail "nbdcopy src dst"
want=$(nbdcopy "$src" - | md5sum)
got=$(LD_LIBRARY_PATH=$ours nbdcopy "$dst" - | md5sum)
[ "$want" = "$got" ] || fail "copied data differs: $got vs $want"
# And through a single connection with a deep queue.
LD_LIBRARY_PATH=$ours nbdcopy --connections=1 --requests=64 --request-size=65536 \
    "$src" "$dir/copy.img" || fail "nbdcopy to a file"
[ "$(md5sum < "$dir/copy.img")" = "$want" ] || fail "file copy differs"

# nbdkit's nbd plugin (a server that is itself a libnbd client) on our
# library, in front of a backend; nbdinfo and nbdcopy on the system
# library talk to it and must see what the same plugin shows on the
# system library.
forward () {  # forward NAME LIBDIR BACKEND: nbd plugin on $dir/NAME.sock
    local name=$1 libdir=$2 backend=$3
    if [ -n "$libdir" ]; then
        LD_LIBRARY_PATH=$libdir start "$name" nbd socket="$dir/$backend.sock"
        grep -q "$libdir/libnbd.so.0" "/proc/$(cat "$dir/$name.pid")/maps" ||
            fail "the nbd plugin did not load $libdir/libnbd.so.0"
    else
        start "$name" nbd socket="$dir/$backend.sock"
    fi
}
if [ -e "$(nbdkit --dump-config | sed -n 's/^plugindir=//p')/nbdkit-nbd-plugin.so" ]; then
    start sparse memory 8M
    # Data in two places of an otherwise empty disk: a map with holes.
    printf 'x%.0s' $(seq 65536) > "$dir/chunk"
    nbdcopy "$dir/chunk" "nbd+unix:///?socket=$dir/sparse.sock" ||
        fail "nbdcopy to the sparse backend"
    forward fw-ours "$ours" sparse
    forward fw-sys "" sparse
    for args in "" "--map" "--map=base:allocation --totals" "--can trim" "--can zero"; do
        nbdinfo $args "nbd+unix:///?socket=$dir/fw-ours.sock" 2>&1 |
            sed "s|fw-ours|fw|" > "$dir/ours.txt"
        nbdinfo $args "nbd+unix:///?socket=$dir/fw-sys.sock" 2>&1 |
            sed "s|fw-sys|fw|" > "$dir/system.txt"
        cmp -s "$dir/ours.txt" "$dir/system.txt" ||
            { diff "$dir/ours.txt" "$dir/system.txt"; fail "nbd plugin: nbdinfo $args differs"; }
    done
    # Writes through the plugin on our library, read back directly.
    forward copy-ours "$ours" dst
    nbdcopy "$src" "nbd+unix:///?socket=$dir/copy-ours.sock" ||
        fail "nbdcopy through the nbd plugin"
    got=$(nbdcopy "$dst" - | md5sum)
    [ "$want" = "$got" ] || fail "copy through the nbd plugin differs: $got vs $want"
    got=$(nbdcopy "nbd+unix:///?socket=$dir/copy-ours.sock" - | md5sum)
    [ "$want" = "$got" ] || fail "read through the nbd plugin differs: $got vs $want"
else
    echo "nbdkit's nbd plugin is not installed: that part skipped"
fi

echo "test-dropin: nbdinfo, nbdcopy and nbdkit's nbd plugin behave the same on both libraries"
