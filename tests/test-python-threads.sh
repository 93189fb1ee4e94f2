#!/bin/bash
# Python threads sharing one handle through Debian's nbd module, on the
# library just built: the module releases the GIL around each blocking
# call, and this library does not hold the handle lock while a call
# waits, so 8 threads' reads from a server that takes 200 ms per read
# are in flight together: well under the 1.6 s they take one at a time
# (as on the system library).  Each thread checks it read its own data.
set -u

. "${srcdir:-$(dirname "$0")}/python-prereqs.sh"

ours="${abs_top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}/lib/.libs"
dir=$(mktemp -d /tmp/libnbd-pythreads-XXXXXX)
cleanup () {
    [ -s "$dir/nbdkit.pid" ] && kill "$(cat "$dir/nbdkit.pid")" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

nbdkit -U "$dir/sock" -P "$dir/nbdkit.pid" --filter=delay memory 1M rdelay=200ms ||
    { echo "FAIL: nbdkit"; exit 1; }
for i in $(seq 100); do [ -s "$dir/nbdkit.pid" ] && break; sleep 0.05; done

cat > "$dir/threads.py" <<'PY'
import os, sys, threading, time
import nbd

want = os.path.realpath(sys.argv[1])
mapped = {line.split()[-1] for line in open("/proc/self/maps") if "/libnbd.so" in line}
if {os.path.realpath(m) for m in mapped} != {want}:
    sys.exit("FAIL: mapped %s, not %s" % (sorted(mapped), want))

h = nbd.NBD()
h.connect_unix(sys.argv[2])
for i in range(8):
    h.pwrite(bytes([i + 1]) * 4096, i * 4096)
errors = []

def reader(i):
    try:
        if h.pread(4096, i * 4096) != bytes([i + 1]) * 4096:
            errors.append("thread %d read the wrong data" % i)
    except nbd.Error as e:
        errors.append("thread %d: %s" % (i, e))

threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - t0
h.shutdown()
if errors:
    sys.exit("FAIL: " + "; ".join(errors))
print("8 threads x 1 read of 200 ms: %.2f s" % took)
if took >= 1.0:
    sys.exit("FAIL: the reads did not overlap (one at a time takes 1.6 s)")
PY

LD_LIBRARY_PATH="$ours" $python "$dir/threads.py" "$ours/libnbd.so.0" "$dir/sock"
