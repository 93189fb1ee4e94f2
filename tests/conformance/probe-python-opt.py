# Conformance probe (Python): opt mode through python3-libnbd (issue 7
# items 9, 12, 13): listing, info, export names, aio option calls with
# completion callbacks, go.
import os

import nbd
from conformance_probe import start_nbdkit, stop_nbdkit, step, say, want, outcome, done

server, sock, tmp = start_nbdkit("--filter=exportname", "memory", "1M",
                                 "exportname=alpha", "exportname=beta",
                                 "exportname-strict=true", "exportname-list=explicit")

try:
    h = nbd.NBD()
    h.set_opt_mode(True)
    step("connect")
    say("connect_unix in opt mode", outcome(h.connect_unix, sock))
    say("negotiating", h.aio_is_negotiating())

    names = []
    step("opt_list")
    say("opt_list", outcome(h.opt_list, lambda name, desc: names.append(name)))
    say("exports listed", ",".join(sorted(names)))

    h.set_export_name("alpha")
    step("opt_info alpha")
    say("opt_info alpha", outcome(h.opt_info))
    say("size after opt_info", outcome(h.get_size))
    h.set_export_name("beta")
    # Upstream since 1.16 (nbd_set_export_name): a different name resets
    # the size learned by opt_info; 1.14 kept it.
    r = outcome(h.get_size)
    want("size after a new export name", "fails", "fails" if r.startswith("error") else r)

    h.set_export_name("nope")
    step("opt_info unknown")
    say("opt_info unknown export", outcome(h.opt_info))

    # aio form: 0 returned, the error comes through the completion.
    seen = []

    def completion(err):
        seen.append(err)
        return 1
    step("aio_opt_info unknown")
    say("aio_opt_info unknown export", outcome(h.aio_opt_info, completion))
    while not seen and h.aio_is_connecting():
        h.poll(2000)
    say("aio_opt_info completion error", seen and os.strerror(seen[0].value
                                                              if hasattr(seen[0], "value")
                                                              else seen[0]))
    contexts = []
    step("opt_list_meta_context")
    say("opt_list_meta_context", outcome(h.opt_list_meta_context,
                                          lambda name: contexts.append(name)))
    say("contexts listed", ",".join(contexts))

    h.set_export_name("beta")
    step("opt_go beta")
    say("opt_go beta", outcome(h.opt_go))
    say("size after go", outcome(h.get_size))
    say("pread after go", len(h.pread(4096, 0)))
    step("shutdown")
    say("shutdown", outcome(h.shutdown))
    del h
    done()
finally:
    stop_nbdkit(server, tmp)
