# Conformance probe (Python): a server that breaks the protocol or hangs
# up, fault by fault (the project's nbd-test-server), as a program sees
# it through python3-libnbd: whether the connect or the read fails,
# with which errno (none, as libnbd, for a protocol violation or an end
# of stream inside a message), and the state the handle is left in.
# Only faults whose outcome does not depend on timing are here
# (close-after-greeting may be a reset or an end of stream).
import os
import subprocess
import time

import nbd
from conformance_probe import step, say, outcome, done

build = os.environ.get("abs_top_builddir") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
server_prog = os.path.join(build, "tests", "nbd-test-server")


def state(h):
    return h.connection_state().split(":")[0].split(".")[0]


def run(fault, extra=()):
    tmp = "/tmp/libnbd-probe-faults-%d" % os.getpid()
    os.makedirs(tmp, exist_ok=True)
    sock = os.path.join(tmp, "sock")
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([server_prog, "--unix", sock, "--fault", fault] + list(extra),
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        name = fault + ("".join(" " + a for a in extra))
        h = nbd.NBD()
        step(name)
        r = outcome(h.connect_unix, sock)
        say(name + ": connect", r)
        if r == "ok":
            say(name + ": pread", outcome(h.pread, 512, 0))
        # A closed handle reads as "CLOSED", a dead one as "DEAD".
        say(name + ": state", "closed" if h.aio_is_closed() else
            "dead" if h.aio_is_dead() else "other")
        say(name + ": pread again", outcome(h.pread, 512, 0))
        del h
    finally:
        p.kill()
        p.wait()
        if os.path.exists(sock):
            os.unlink(sock)
        os.rmdir(tmp)


for fault in ["close-after-magic", "close-in-option", "bad-magic",
              "close-before-reply", "bad-reply-magic", "unknown-cookie"]:
    run(fault)
for fault in ["huge-length", "short-error-message", "stray-chunk"]:
    run(fault, ["--no-extended-headers"])
run("close-before-reply", ["--no-structured-replies"])
done()
