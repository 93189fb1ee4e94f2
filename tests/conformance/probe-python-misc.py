# Conformance probe (Python): the corners the API sweep leaves thin.
# Handle names given by nbd_create and after nbd_set_handle_name; the
# debug callback's contexts over a connect, a read and a shutdown (the
# messages themselves legitimately differ, so only which calls they
# come from, in order); LIBNBD_DEBUG; the version's format; the
# "nbd_xxx: " prefix of error messages; nbd_get_uri after a connect
# that failed, over many URI shapes and the nbd_set_uri_allow_*
# restrictions, and once connected (TCP on IPv4 and IPv6, Unix); TLS
# settings against a server without TLS, with missing or malformed key
# files; certificate directories without a CA or with a garbled client
# pair against an X.509 server, without verification; PSK files of
# every shape against a PSK server.
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


def free_port(family, address):
    import socket
    s = socket.socket(family)
    s.bind((address, 0))
    port = str(s.getsockname()[1])
    s.close()
    return port


def start_tcp_nbdkit(address, port, tmp):
    """nbdkit listening on address:port; ready once its pid file is
    written (after it listens)."""
    import subprocess
    import time
    pidfile = os.path.join(tmp, "pid-" + port)
    proc = subprocess.Popen(["nbdkit", "-f", "-i", address, "-p", port,
                             "-P", pidfile, "memory", "1M"])
    for _ in range(500):
        if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0:
            break
        time.sleep(0.01)
    return proc


# P4, P6 and S stand for this run's IPv4 port, IPv6 port and socket.
CONNECTED_URIS = [
    "nbd://127.0.0.1:P4/", "nbd://127.0.0.1:P4", "nbd://127.0.0.1:P4/exp",
    "nbd://127.0.0.1:P4//exp", "nbd://127.0.0.1:P4/a%2Fb%20c%3F%23",
    "nbd://[::1]:P6/", "nbd://[::1]:P6/x", "nbd://u@127.0.0.1:P4/",
    "nbd://localhost:P4/", "nbd://127.0.0.1:P4/?foo=bar",
    "nbd://127.0.0.1:P4/?tls-psk-file=/x", "nbd://127.0.0.1:P4/?",
    "nbd://127.0.0.1:P4/#frag",
    "nbd+unix:///?socket=S", "nbd+unix:///exp?socket=S&foo=bar",
    "nbd+unix://u@/e?socket=S",
    "nbd+unix:///?socket=S&tls-certificates=/nonexistent",
    "nbd+unix:///%C3%A9?socket=S", "nbd+unix:///?socket=S;foo=bar",
    "nbd+unix:///?foo&socket=S", "nbd+unix:///?=x&socket=S",
]


def connected_uris(sock, tmp):
    """nbd_get_uri and the export name once connected, over URI shapes
    and nbd_connect_tcp host spellings."""
    import socket
    p4 = free_port(socket.AF_INET, "127.0.0.1")
    p6 = free_port(socket.AF_INET6, "::1")
    servers = [start_tcp_nbdkit("127.0.0.1", p4, tmp),
               start_tcp_nbdkit("::1", p6, tmp)]

    def masked(r):
        return r.replace(p4, "P4").replace(p6, "P6").replace(sock, "S")
    try:
        for u in CONNECTED_URIS:
            real = u.replace("P4", p4).replace("P6", p6).replace(
                "socket=S", "socket=" + sock)
            h = nbd.NBD()
            step("connected " + u)
            say("connected " + u, "%s; get_uri %s; export %s; size %s" % (
                call(h.connect_uri, real), masked(call(h.get_uri)),
                call(h.get_export_name), call(h.get_size)))
            if h.aio_is_ready():
                h.shutdown()
        for host, port in (("127.0.0.1", p4), ("::1", p6), ("localhost", p4),
                           ("[::1]", p6)):
            h = nbd.NBD()
            h.set_export_name("e/x y")
            step("connect_tcp " + host)
            say("connect_tcp " + host, "%s; get_uri %s" % (
                call(h.connect_tcp, host, port), masked(call(h.get_uri))))
            if h.aio_is_ready():
                h.shutdown()
    finally:
        for server in servers:
            server.terminate()
            server.wait()


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


def x509_without_verification(keys):
    """A certificates directory that is missing, empty or a file holds
    no CA: the system's are used, so without verification the
    connection to a server with its own CA succeeds."""
    import shutil
    import subprocess
    if not shutil.which("certtool"):
        say("x509", "skipped (no certtool)")
        return
    srv = os.path.join(keys, "x509-server")
    empty = os.path.join(keys, "empty")
    os.makedirs(srv)
    os.makedirs(empty)
    with open(os.path.join(srv, "ca.info"), "w") as f:
        f.write("cn = probe CA\nca\ncert_signing_key\nexpiration_days = 2\n")
    with open(os.path.join(srv, "server.info"), "w") as f:
        f.write("cn = localhost\ndns_name = localhost\ntls_www_server\n"
                "encryption_key\nsigning_key\nexpiration_days = 2\n")
    for args in (["--generate-privkey", "--key-type=ecdsa", "--outfile", "ca-key.pem"],
                 ["--generate-self-signed", "--load-privkey", "ca-key.pem",
                  "--template", "ca.info", "--outfile", "ca-cert.pem"],
                 ["--generate-privkey", "--key-type=ecdsa", "--outfile", "server-key.pem"],
                 ["--generate-certificate", "--load-ca-certificate", "ca-cert.pem",
                  "--load-ca-privkey", "ca-key.pem", "--load-privkey", "server-key.pem",
                  "--template", "server.info", "--outfile", "server-cert.pem"]):
        subprocess.run(["certtool"] + args, cwd=srv, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server, sock, tmp = start_nbdkit("--tls=require", "--tls-certificates=" + srv,
                                     "memory", "1M")
    try:
        garbled = os.path.join(keys, "garbled")
        os.makedirs(garbled)
        shutil.copy(os.path.join(srv, "ca-cert.pem"), garbled)
        for name in ("client-cert.pem", "client-key.pem"):
            with open(os.path.join(garbled, name), "w") as f:
                f.write("not PEM\n")
        for label, d in (("missing dir", "/nonexistent/dir"), ("empty dir", empty),
                         ("a file", os.path.join(srv, "ca.info")),
                         ("garbled client pair", garbled)):
            h = nbd.NBD()
            h.set_tls(nbd.TLS_REQUIRE)
            h.set_tls_verify_peer(False)
            h.set_tls_certificates(d)
            step("x509 " + label)
            say("x509 %s, no verification" % label, "connect %s; negotiated %s" % (
                call(h.connect_unix, sock), call(h.get_tls_negotiated)))
            if h.aio_is_ready():
                h.shutdown()
    finally:
        stop_nbdkit(server, tmp)


def psk_files(keys):
    """Key files of every shape against a server with the user's key."""
    import shutil
    import subprocess
    if not shutil.which("psktool"):
        say("psk", "skipped (no psktool)")
        return
    good = os.path.join(keys, "keys.psk")
    subprocess.run(["psktool", "-u", "alice", "-p", good], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = [("missing", "/nonexistent/psk"), ("a directory", keys),
             ("good", good)]
    for label, text in (("no colon", "no colon on this line\n"),
                        ("not hex", "alice:zz\n"), ("empty key", "alice:\n"),
                        ("other user", "bob:0123456789abcdef\n"), ("empty", "")):
        path = os.path.join(keys, label.replace(" ", "-") + ".psk")
        with open(path, "w") as f:
            f.write(text)
        files.append((label, path))
    server, sock, tmp = start_nbdkit("--tls=require", "--tls-psk=" + good,
                                     "memory", "1M")
    try:
        for label, path in files:
            for opt in (False, True):
                key = "psk %s%s" % (label, ", opt mode" if opt else "")
                h = nbd.NBD()
                h.set_tls(nbd.TLS_REQUIRE)
                h.set_tls_psk_file(path)
                h.set_tls_username("alice")
                h.set_opt_mode(opt)
                step(key)
                r = "connect %s" % call(h.connect_unix, sock)
                if opt:
                    r += "; list %s; go %s" % (call(h.opt_list, lambda n, d: 0),
                                              call(h.opt_go))
                say(key, r + "; negotiated %s" % call(h.get_tls_negotiated))
                if h.aio_is_ready():
                    h.shutdown()
    finally:
        stop_nbdkit(server, tmp)


def main():
    handle_names()
    library_facts()
    server, sock, tmp = start_nbdkit("memory", "1M")
    try:
        debug_contexts(sock)
        error_prefixes(sock)
        uris()
        connected_uris(sock, tmp)
        with tempfile.TemporaryDirectory(prefix="libnbd-conf-tls-") as keys:
            tls_settings(sock, keys)
            x509_without_verification(keys)
            psk_files(keys)
    finally:
        stop_nbdkit(server, tmp)


main()
done()
