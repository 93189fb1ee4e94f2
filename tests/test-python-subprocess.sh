#!/bin/bash
# Python's nbd module (Debian's python3-libnbd, built against the system
# libnbd) on the library just built: connect_command to nbdkit -s, then
# kill_subprocess.  kill_subprocess only sends the signal and returns (it
# used to wait for the child, which waits for the socket to close: a
# hang); SIGSTOP returns too; the child is reaped when the handle is
# closed.  The same script runs on the system library and must print
# the same lines; each run checks which libnbd it mapped.
set -u

. "${srcdir:-$(dirname "$0")}/python-prereqs.sh"

ours="${abs_top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}/lib/.libs"
system=$($python -c 'import nbd, libnbdmod; print(libnbdmod.__file__)' |
             xargs ldd | awk '$1 == "libnbd.so.0" { print $3 }')
[ -n "$system" ] || { echo "FAIL: cannot find the system libnbd"; exit 1; }
dir=$(mktemp -d /tmp/libnbd-python-XXXXXX)
trap 'rm -rf "$dir"' EXIT

cat > "$dir/subprocess.py" <<'PY'
import os, signal, sys, time
import nbd

# The library this process mapped must be the one asked for.
want = os.path.realpath(sys.argv[1])
mapped = {line.split()[-1] for line in open("/proc/self/maps")
          if "/libnbd.so" in line}
if [os.path.realpath(m) for m in mapped] != [want]:
    sys.exit("mapped %s, expected %s" % (sorted(mapped), want))

signal.alarm(30)                # a hang becomes a failure

def children():
    me, found = os.getpid(), []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                stat = open("/proc/%s/stat" % p).read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(p))
    return found

def exists(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False

def prompt(what, call):
    t0 = time.monotonic()
    call()
    elapsed = time.monotonic() - t0
    print("%s returned%s" % (what, "" if elapsed < 5 else
                             " after %.1f s" % elapsed), flush=True)

for signals in ([0], [signal.SIGSTOP, signal.SIGCONT]):
    h = nbd.NBD()
    h.connect_command(["nbdkit", "-s", "--exit-with-parent", "memory", "1M"])
    print("size", h.get_size())
    kids = children()
    print("subprocesses", len(kids))
    for s in signals:
        prompt("kill_subprocess(%d)" % s, lambda: h.kill_subprocess(s))
    print("child still unreaped before close:", all(exists(k) for k in kids))
    del h                       # nbd_close
    print("child reaped by close:", not any(exists(k) for k in kids))
PY

run () {  # run LIBDIR OUTPUT
    LD_LIBRARY_PATH=$1 timeout 90 $python "$dir/subprocess.py" "$2" \
        > "$3" 2>&1
}
run "$ours" "$ours/libnbd.so.0" "$dir/ours.txt"; r1=$?
run "" "$system" "$dir/system.txt"; r2=$?
cat "$dir/ours.txt"
if [ $r1 != 0 ] || [ $r2 != 0 ]; then
    echo "FAIL: exit $r1 (ours), $r2 (system)"
    cat "$dir/system.txt"
    exit 1
fi
if ! cmp -s "$dir/ours.txt" "$dir/system.txt"; then
    diff "$dir/ours.txt" "$dir/system.txt"
    echo "FAIL: output differs between the libraries"
    exit 1
fi
grep -q "child reaped by close: True" "$dir/ours.txt" ||
    { echo "FAIL: unexpected output"; exit 1; }
if grep -q "after\|False" "$dir/ours.txt"; then
    echo "FAIL: unexpected output"
    exit 1
fi
echo "test-python-subprocess.sh: all tests passed"
