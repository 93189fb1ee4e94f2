# Conformance probe (Python): the corners the API sweep leaves thin.
# Handle names given by nbd_create and after nbd_set_handle_name; the
# debug callback's contexts over a connect, a read and a shutdown (the
# messages themselves legitimately differ, so only which calls they
# come from, in order); LIBNBD_DEBUG; the version's format; the
# "nbd_xxx: " prefix of error messages; nbd_get_uri after a connect
# that failed, over many URI shapes and the nbd_set_uri_allow_*
# restrictions; TLS settings against a server without TLS, with
# missing or malformed key files.
import os
import re
import tempfile

import nbd
from conformance_probe import start_nbdkit, stop_nbdkit, step, say, done


def call(fn, *args):
    """A call's value, or "error ENAME" (never the message text)."""
    try:
        r = fn(*args)
        return "ok" if r is None else repr(r)
    except nbd.Error as e:
        return "error " + (e.errno or "errno=0")
    except Exception as e:
        return "raised " + type(e).__name__


def handle_names():
    # The first name depends on how many handles came before: only the
    # steps between successive handles.
    names = [nbd.NBD().get_handle_name() for _ in range(3)]
    nums = [int(re.sub(r"^nbd", "", n)) if re.match(r"^nbd\d+$", n) else n
            for n in names]
    say("names: form", all(isinstance(n, int) for n in nums))
    say("names: steps", [b - a for a, b in zip(nums, nums[1:])]
        if all(isinstance(n, int) for n in nums) else names)
    h = nbd.NBD()
    say("names: set empty", call(h.set_handle_name, ""))
    say("names: after empty", call(h.get_handle_name))
    say("names: set other", call(h.set_handle_name, "other name"))
    say("names: after other", call(h.get_handle_name))


def debug_contexts(sock):
    log = []
    h = nbd.NBD()
    h.set_debug_callback(lambda ctx, msg: log.append((ctx, msg)))
    say("debug: set_debug", call(h.set_debug, True))
    step("debug: connect")
    h.connect_unix(sock)
    h.pread(512, 0)
    h.shutdown()
    h.set_debug(False)
    # Contexts in order, runs collapsed; each run must begin with the
    # call's "enter:" line and end with its "leave:" line, except the
    # one of set_debug (debugging starts in the middle of it).
    runs = []
    for ctx, msg in log:
        if not runs or runs[-1][0] != ctx:
            runs.append([ctx, []])
        runs[-1][1].append(msg)
    say("debug: context runs", [r[0] for r in runs])
    say("debug: runs enter/leave", [(r[1][0].split(":")[0], r[1][-1].split(":")[0])
                                    for r in runs])
    say("debug: context types", sorted({type(c).__name__ for c, m in log}))
    enter = [m for c, m in log if c == "nbd_pread" and m.startswith("enter:")]
    say("debug: pread enter", enter)
    for value in ("1", "0", "", "yes"):
        os.environ["LIBNBD_DEBUG"] = value
        say("debug: LIBNBD_DEBUG=%r get_debug" % value, nbd.NBD().get_debug())
    del os.environ["LIBNBD_DEBUG"]
    say("debug: LIBNBD_DEBUG unset get_debug", nbd.NBD().get_debug())


def library_facts():
    h = nbd.NBD()
    say("version format", bool(re.match(r"^\d+\.\d+\.\d+$", h.get_version())))
    say("package name", h.get_package_name())
    say("supports_tls", h.supports_tls())
    say("supports_uri", h.supports_uri())


def error_prefixes(sock):
    """Every message starts with the name of the call that failed."""
    h = nbd.NBD()
    cases = [("nbd_pread", h.pread, (512, 0)),
             ("nbd_set_tls", h.set_tls, (9,)),
             ("nbd_get_size", h.get_size, ()),
             ("nbd_get_meta_context", h.get_meta_context, (3,)),
             ("nbd_aio_peek_command_completed", h.aio_peek_command_completed, ()),
             ("nbd_connect_uri", nbd.NBD().connect_uri, ("nbd+unix:///",)),
             ("nbd_connect_unix", nbd.NBD().connect_unix, ("/nonexistent/s",)),
             ("nbd_kill_subprocess", h.kill_subprocess, (0,))]
    for name, fn, args in cases:
        try:
            fn(*args)
            say("prefix: " + name, "no error")
        except nbd.Error as e:
            say("prefix: " + name, (e.string or "").startswith(name + ": "))
    c = nbd.NBD()
    c.connect_unix(sock)
    c.set_strict_mode(0)
    try:
        c.pread(512, 2 * 1024 * 1024)
        say("prefix: server error", "no error")
    except nbd.Error as e:
        say("prefix: server error", "%s %s" % (e.errno, e.string.startswith("nbd_pread: ")))
    c.shutdown()


URIS = [
    "nbd+unix:///?socket=/nonexistent/s",
    "nbd+unix:///exp?socket=/nonexistent/s",
    "nbd+unix:///a%2Fb%20c?socket=/nonexistent/s",
    "nbd+unix:///a/b?socket=/nonexistent/s",
    "nbd+unix://?socket=/nonexistent/s",
    "nbd+unix:/?socket=/nonexistent/s",
    "nbd+unix:///?socket=/nonexistent/s&socket=/nonexistent/t",
    "nbd+unix:///?socket=/nonexistent/s&foo=bar",
    "nbd+unix:///?socket=%2Fnonexistent%2Fs",
    "nbd+unix:///",
    "nbd+unix://host/?socket=/nonexistent/s",
    "nbds+unix:///?socket=/nonexistent/s",
    "nbd+unix:///?socket=/nonexistent/s&tls-certificates=/nonexistent/dir",
    "nbd://127.0.0.1:1/",
    "nbd://127.0.0.1:1",
    "nbd://127.0.0.1:1/exp",
    "nbd://127.0.0.1:1//exp",
    "nbd://[::1]:1/",
    "nbd://[::1/",
    "nbd://127.0.0.1:notaport/",
    "nbd:///",
    "nbd://",
    "nbd://127.0.0.1:1/?socket=/x",
    "nbds://127.0.0.1:1/",
    "nbd+vsock://x/",
    "nbd+foo://x/",
    "",
    "nbd://u@127.0.0.1:1/",
    "nbd://u:p@127.0.0.1:1/",
]


def uris():
    def after(label, fn):
        h = nbd.NBD()
        step(label)
        r = call(fn, h)
        say(label, "%s; get_uri %s; export %s; tls %d" % (
            r, call(h.get_uri), call(h.get_export_name), h.get_tls()))
    after("uri: connect_unix missing", lambda h: h.connect_unix("/nonexistent/s"))
    after("uri: connect_tcp refused", lambda h: h.connect_tcp("127.0.0.1", "1"))
    for u in URIS:
        after("uri %r" % u, lambda h: h.connect_uri(u))
    for allow, u in [(nbd.ALLOW_TRANSPORT_UNIX, "nbd://127.0.0.1:1/"),
                     (nbd.ALLOW_TRANSPORT_TCP, "nbd+unix:///?socket=/x"),
                     (nbd.ALLOW_TRANSPORT_UNIX, "nbd+vsock://1/"),
                     (nbd.ALLOW_TRANSPORT_TCP, "nbd+foo://x/")]:
        h = nbd.NBD()
        h.set_uri_allow_transports(allow)
        say("uri allow %d %s" % (allow, u), "%s; get_uri %s" % (
            call(h.connect_uri, u), call(h.get_uri)))
    for tls, u in [(nbd.TLS_DISABLE, "nbds://127.0.0.1:1/"),
                   (nbd.TLS_REQUIRE, "nbd://127.0.0.1:1/"),
                   (nbd.TLS_ALLOW, "nbds://127.0.0.1:1/"),
                   (nbd.TLS_ALLOW, "nbd://127.0.0.1:1/")]:
        h = nbd.NBD()
        h.set_uri_allow_tls(tls)
        say("uri allow tls %d %s" % (tls, u), "%s; tls %d" % (
            call(h.connect_uri, u), h.get_tls()))
    for lf, u in [(False, "nbd+unix:///?socket=/x&tls-psk-file=/y"),
                  (True, "nbds+unix:///?socket=/x&tls-psk-file=/y")]:
        h = nbd.NBD()
        h.set_uri_allow_local_file(lf)
        say("uri local file %s %s" % (lf, u), call(h.connect_uri, u))


def tls_settings(sock, tmp):
    bad = os.path.join(tmp, "bad.psk")
    with open(bad, "w") as f:
        f.write("no colon on this line\n")
    badhex = os.path.join(tmp, "badhex.psk")
    with open(badhex, "w") as f:
        f.write("alice:zz\n")
    setups = [("nothing", lambda h: None),
              ("missing psk", lambda h: h.set_tls_psk_file("/nonexistent/psk")),
              ("bad psk", lambda h: h.set_tls_psk_file(bad)),
              ("badhex psk", lambda h: (h.set_tls_psk_file(badhex),
                                        h.set_tls_username("alice"))),
              ("missing certs", lambda h: h.set_tls_certificates("/nonexistent/dir")),
              ("empty certs dir", lambda h: h.set_tls_certificates(tmp))]
    for tls in (nbd.TLS_ALLOW, nbd.TLS_REQUIRE):
        for label, setup in setups:
            key = "tls %d %s" % (tls, label)
            h = nbd.NBD()
            h.set_tls(tls)
            setup(h)
            step(key)
            say(key, "negotiated before %s; connect %s; negotiated %s; ready %s" % (
                call(h.get_tls_negotiated), call(h.connect_unix, sock),
                call(h.get_tls_negotiated), h.aio_is_ready()))
            if h.aio_is_ready():
                h.shutdown()
        for label, setup in setups[:3]:
            key = "tls %d opt %s" % (tls, label)
            h = nbd.NBD()
            h.set_tls(tls)
            setup(h)
            h.set_opt_mode(True)
            step(key)
            # The connect's errno in opt mode with TLS required is
            # covered (and known to differ) in probe-python-api.py.
            r = call(h.connect_unix, sock)
            say(key, "connect %s; list %s; go %s; negotiated %s" % (
                "error" if r.startswith("error") else r,
                call(h.opt_list, lambda n, d: 0), call(h.opt_go),
                call(h.get_tls_negotiated)))
    h = nbd.NBD()
    say("tls: set_tls_username empty", call(h.set_tls_username, ""))
    say("tls: get_tls_username after empty", call(h.get_tls_username))


def main():
    handle_names()
    library_facts()
    server, sock, tmp = start_nbdkit("memory", "1M")
    try:
        debug_contexts(sock)
        error_prefixes(sock)
        uris()
        with tempfile.TemporaryDirectory(prefix="libnbd-conf-tls-") as keys:
            tls_settings(sock, keys)
    finally:
        stop_nbdkit(server, tmp)


main()
done()
