# Conformance probe (Python): closures through python3-libnbd (issue 7
# item 7).  The binding keeps a reference to each callable until libnbd
# calls the closure's .free, so a weak reference shows when .free ran:
# at retirement, not at completion.
import gc
import weakref

import nbd
from conformance_probe import start_nbdkit, stop_nbdkit, step, say, outcome, done

server, sock, tmp = start_nbdkit("pattern", "1M")


class Callback:
    """A callable that logs its calls and returns a fixed value."""
    def __init__(self, log, name, result):
        self.log, self.name, self.result = log, name, result

    def __call__(self, *args):
        self.log.append(self.name)
        return self.result


def wait_completed(h, cookie):
    while h.aio_peek_command_completed() != cookie:
        h.poll(2000)


try:
    h = nbd.NBD()
    step("connect")
    h.connect_unix(sock)

    # Completion returns 0: the command stays until aio_command_completed.
    log = []
    cb = Callback(log, "done", 0)
    ref = weakref.ref(cb)
    buf = nbd.Buffer(4096)
    step("keep: aio_pread")
    cookie = h.aio_pread(buf, 0, completion=cb)
    del cb
    wait_completed(h, cookie)
    gc.collect()
    say("keep: callback log", ",".join(log))
    say("keep: callable alive after completion, before retiring", ref() is not None)
    say("keep: aio_command_completed", outcome(h.aio_command_completed, cookie))
    gc.collect()
    say("keep: callable alive after retiring", ref() is not None)
    say("keep: data", bytes(buf.to_bytearray()[:4]).hex())

    # Chunk and completion on a structured read, completion retires.
    log = []
    chunk = Callback(log, "chunk", 0)
    comp = Callback(log, "done", 1)
    refs = (weakref.ref(chunk), weakref.ref(comp))
    step("retire: aio_pread_structured")
    cookie = h.aio_pread_structured(nbd.Buffer(65536), 0, chunk, completion=comp)
    del chunk, comp
    while h.aio_in_flight() > 0:
        h.poll(2000)
    gc.collect()
    say("retire: callback log", ",".join(log))
    say("retire: callables alive", [r() is not None for r in refs])
    say("retire: aio_command_completed", outcome(h.aio_command_completed, cookie))

    # Completed, never retired: closing the handle releases the callable.
    log = []
    cb = Callback(log, "done", 0)
    ref = weakref.ref(cb)
    step("close: aio_pread")
    cookie = h.aio_pread(nbd.Buffer(512), 0, completion=cb)
    del cb
    wait_completed(h, cookie)
    gc.collect()
    say("close: callable alive before close", ref() is not None)
    step("close")
    del h
    gc.collect()
    say("close: callable alive after close", ref() is not None)
    done()
finally:
    stop_nbdkit(server, tmp)
