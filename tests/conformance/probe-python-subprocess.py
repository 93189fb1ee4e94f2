# Conformance probe (Python): connect_command + kill_subprocess, in
# python3-libnbd and in nbdsh (issue 7 item 1).
import os
import signal
import subprocess
import sys

import nbd
from conformance_probe import step, say, outcome, now, done

NBDKIT = ["nbdkit", "-s", "--exit-with-parent", "memory", "1M"]


def children_left():
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        return "one still running" if pid == 0 else "one left unreaped"
    except ChildProcessError:
        return "none"


for name, sig in (("signal 0", 0), ("SIGTERM", signal.SIGTERM)):
    h = nbd.NBD()
    step(name + ": connect_command")
    say(name + ": connect_command", outcome(h.connect_command, NBDKIT))
    step(name + ": kill_subprocess")
    t = now()
    say(name + ": kill_subprocess", outcome(h.kill_subprocess, sig))
    say(name + ": kill_subprocess returned within 2 s", "yes" if now() - t < 2 else "no")
    step(name + ": close")
    del h           # the last reference: nbd_close
    say(name + ": children after close", children_left())

# A stopped server: kill_subprocess must not wait for it.
h = nbd.NBD()
step("SIGSTOP: connect_command")
h.connect_command(NBDKIT)
step("SIGSTOP: kill_subprocess")
say("SIGSTOP: kill_subprocess", outcome(h.kill_subprocess, signal.SIGSTOP))
step("SIGSTOP: continue")
say("SIGSTOP: kill_subprocess SIGCONT", outcome(h.kill_subprocess, signal.SIGCONT))
say("SIGSTOP: pread after SIGCONT", len(h.pread(512, 0)))
h.kill_subprocess(0)
step("SIGSTOP: close")
del h
say("SIGSTOP: children after close", children_left())

# The same from nbdsh, as a user would type it; the child checks that it
# runs on the same library as this interpreter.
code = """
import os
lib = [l[l.find('/'):].strip() for l in open('/proc/self/maps') if '/libnbd.so' in l][0]
assert os.path.realpath(lib) == os.path.realpath(os.environ['CONFORMANCE_LIB']), lib
h.connect_command(%r)
print('size', h.get_size())
h.kill_subprocess(0)
print('killed')
""" % NBDKIT
step("nbdsh: connect_command + kill_subprocess", 15)
try:
    # nbdsh runs "python3" from PATH: Debian's, which has the nbd module.
    env = dict(os.environ, PATH="/usr/bin:" + os.environ.get("PATH", ""))
    p = subprocess.run(["nbdsh", "-c", code], capture_output=True, text=True,
                       timeout=10, env=env)
    say("nbdsh: output", p.stdout.strip().replace("\n", "; "))
    say("nbdsh: exit status", p.returncode)
    if p.returncode:
        sys.stderr.write(p.stderr)
except subprocess.TimeoutExpired:
    say("nbdsh: output", "hang (no answer in 10 s)")
done()
