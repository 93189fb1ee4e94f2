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


def step(key, seconds=5):
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


check_mapped_library()
