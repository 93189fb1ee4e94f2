# Helpers for the Python conformance probes (the Python side of probe.h):
# check which libnbd.so the interpreter mapped, print observations as
# "key: value" lines (or "key:<TAB>value [want expected]"), and turn a
# hang into a "key: hang" line.
import errno
import os
import sys
import threading
import time

import nbd


def check_mapped_library():
    wanted = os.environ.get("CONFORMANCE_LIB")
    if not wanted:
        sys.stderr.write("probe: CONFORMANCE_LIB is not set: run me through differ.sh\n")
        sys.exit(99)
    found = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            i = line.find("/")
            if i >= 0 and "/libnbd.so" in line[i:]:
                found = os.path.realpath(line[i:].strip())
                break
    if found != os.path.realpath(wanted):
        sys.stderr.write("probe: mapped %s, expected %s\n" % (found, wanted))
        sys.exit(99)
    sys.stderr.write("probe: running on %s\n" % found)


_timer = None
_current = "start"


def step(key, seconds=8):
    """Names the observation in progress; if it has not finished within
    seconds, print "key: hang" and end the probe (the libnbd bindings
    release the GIL in blocking calls, so this thread gets to run)."""
    global _timer, _current
    if _timer:
        _timer.cancel()
    _current = key

    def fire():
        sys.stdout.write("%s: hang (no answer in %d s)\n" % (key, seconds))
        sys.stdout.flush()
        os._exit(0)
    _timer = threading.Timer(seconds, fire)
    _timer.daemon = True
    _timer.start()


def done():
    if _timer:
        _timer.cancel()


def say(key, value):
    print("%s: %s" % (key, value), flush=True)


def want(key, expected, value):
    print("%s:\t%s [want %s]" % (key, value, expected), flush=True)


def outcome(fn, *args):
    """What a binding call did: its value, or "error ENAME"."""
    try:
        r = fn(*args)
        return "ok" if r is None else repr(r)
    except nbd.Error as e:
        return "error " + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "errno=0")


def now():
    return time.monotonic()


def start_nbdkit(*args):
    """nbdkit on a unix socket in a fresh directory, args being the
    filters, plugin and parameters; returns (process, socket, directory).
    It is ready once its pid file exists (nbdkit writes it after it
    listens: the socket file alone appears at bind, before listen)."""
    import shutil
    import subprocess
    import tempfile
    if not shutil.which("nbdkit"):
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="libnbd-conf-")
    sock = os.path.join(tmp, "sock")
    pidfile = os.path.join(tmp, "pid")
    proc = subprocess.Popen(["nbdkit", "-f", "-U", sock, "-P", pidfile] + list(args))
    for _ in range(1000):
        if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
            return proc, sock, tmp
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    sys.stderr.write("probe: nbdkit did not start\n")
    sys.exit(99)


check_mapped_library()


def stop_nbdkit(proc, tmp):
    """Ends nbdkit by its pid (SIGTERM, then SIGKILL if a connection
    still holds it) and removes its directory."""
    import shutil
    import subprocess
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
