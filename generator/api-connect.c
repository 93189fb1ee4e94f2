/* libnbd API description: connecting, option negotiation, shutdown
 * and the asynchronous main-loop helpers.
 */
#include "api.h"

/* Handle states used repeatedly below. */
#define ST_NEW  ST_CREATED
#define ST_OPT  ST_NEGOTIATING

/* Every connect call, blocking or not, starts from a new handle. */
#define CONNECT_CALL \
  .ret = RET_ERR, \
  .permitted = ST_NEW

/* The last paragraph of each blocking connect call. */
#define CONNECT_OPT_MODE_NOTE \
  "The call blocks until the handshake has finished and the handle is " \
  "ready for commands, or, when L<nbd_set_opt_mode(3)> is enabled, " \
  "only until the handle is negotiating."

/* The last paragraph of each asynchronous connect call. */
#define AIO_CONNECT_NOTE \
  "The call returns without waiting for the handshake, which then " \
  "proceeds as the caller's main loop drives the handle; use " \
  "L<nbd_aio_is_connecting(3)> and L<nbd_aio_is_ready(3)> to find out " \
  "when the connection has been set up."

/* The nbd_aio_opt_* calls (but nbd_aio_opt_abort) take an optional
 * completion closure and run while negotiating.
 */
#define AIO_OPT_CALL \
  .optargs = { O_CLOSURE ("completion") }, \
  .ret = RET_ERR, \
  .permitted = ST_OPT, \
  .is_async = true

/* How an nbd_aio_opt_* request is seen to finish. */
#define AIO_OPT_NOTE \
  "The request is finished when L<nbd_aio_is_connecting(3)> returns " \
  "false.  If supplied, the C<completion> callback is called once at " \
  "that point, receiving any error in its C<error> argument, and is " \
  "then retired whatever it returns.  Once the call has returned 0 it " \
  "reports nothing more itself: a later failure, even a lost " \
  "connection, reaches the caller only through the callback.  Against " \
  "a server that is not using fixed newstyle, every option but go and " \
  "abort fails at once with C<ENOTSUP>, sending nothing; the closures " \
  "are then freed without being called."

#define AIO_OPT_ONLY_ERROR_NOTE \
  "Only the C<completion> callback can tell whether the server " \
  "reported an error."

/* An nbd_aio_is_* state query: name, first version, summary,
 * description and see-also list.
 */
#define STATE_QUERY(nm, ver, summ, desc, also) \
  { \
    .name = nm, \
    .ret = RET_BOOL, \
    .permitted = 0, \
    .version = ver, \
    .summary = summ, \
    .description = desc, \
    .see_also = also, \
    .cannot_fail = true, \
  }

const struct call api_connect_calls[] = {
  /* ---------------------------------------------------------------- */
  /* Blocking connect calls. */

  {
    .name = "connect_uri",
    .args = { A_STRING ("uri") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to NBD URI",
    .description =
      "Parse the NBD URI C<uri> (see the NBD URI specification) and connect "
      "to the server it names, blocking until the connection is usable.  "
      "Fields of the URI are applied to the handle as if the matching "
      "setter had been called: the path becomes the export name "
      "(L<nbd_set_export_name(3)>), the scheme selects the transport and "
      "the TLS policy (L<nbd_set_tls(3)>), a user name is used for TLS "
      "authentication, and query parameters such as C<socket=>, "
      "C<tls-certificates=> and C<tls-psk-file=> are honoured.\n\n"
      "Recognised schemes:\n\n"
      "- C<nbd:> and C<nbds:> use TCP (default port 10809), the second "
      "one insisting on TLS;\n"
      "- C<nbd+unix:> and C<nbds+unix:> use a Unix domain socket given by "
      "the mandatory C<socket=> query parameter;\n"
      "- C<nbd+vsock:> and C<nbds+vsock:> use C<AF_VSOCK>, where the host "
      "part is the numeric CID;\n"
      "- C<nbd+ssh:> and C<nbds+ssh:> tunnel NBD through L<ssh(1)>: the "
      "authority C<[user@]server[:port]> names the SSH login (port 22 by "
      "default), and the remote end runs C<nc> to reach either the Unix "
      "socket given by C<socket=> or TCP port C<nbd-port=> (default 10809) "
      "on the remote machine.  This needs C<ssh> locally and the nmap or "
      "OpenBSD C<nc> remotely.\n\n"
      "Query parameter names are not case sensitive.  Besides C<socket=>:\n\n"
      "- C<tls-certificates=DIR>, C<tls-psk-file=FILE> (both need "
      "L<nbd_set_uri_allow_local_file(3)>), C<tls-hostname=NAME>, "
      "C<tls-verify-peer=false> and C<tls-username=USER>, as the matching "
      "setters.  Outside the ssh schemes the user name of the authority is "
      "the TLS user name too, and C<tls-username=> overrides it.\n"
      "- C<tls-priority=PRIORITY>, as L<nbd_set_tls_priority(3)>; refused with "
      "C<EPERM> unless L<nbd_set_uri_allow_tls_priority(3)> allowed it.\n"
      "- C<nbd-port=PORT>: the NBD port, instead of the one in the authority "
      "(which for ssh stays the SSH port); with vsock any 32-bit port.\n"
      "- C<compress=true>: compress the SSH connection (C<ssh -C>).\n\n"
      "Nothing in a URI can become an option of C<ssh> or a command of the "
      "remote shell: the server name is passed after C<-->, an SSH user name "
      "containing C<%> is refused, and so are C<socket=> and C<nbd-port=> "
      "values containing white space, control characters or shell "
      "metacharacters (C<EINVAL>, before anything runs).\n\n"
      "Which transports, TLS modes and local-file references a URI may use "
      "can be restricted beforehand with L<nbd_set_uri_allow_transports(3)>, "
      "L<nbd_set_uri_allow_tls(3)> and L<nbd_set_uri_allow_local_file(3)>; "
      "a URI breaking those rules is refused with C<EPERM>.  A URI that "
      "cannot be parsed gives C<EINVAL>, and C<ENOTSUP> is reported when "
      "the library was built without URI support (see "
      "L<nbd_supports_uri(3)>) or a TLS scheme is used without TLS support "
      "(L<nbd_supports_tls(3)>).\n\n"
      CONNECT_OPT_MODE_NOTE "  In option mode the export name from the "
      "URI may still be overridden before L<nbd_opt_go(3)>."
      "\n\n"
      "A minimal program connects, uses the export and disconnects; "
      "every failure is reported through L<nbd_get_error(3)>:\n\n"
      "  struct nbd_handle *nbd = nbd_create ();\n"
      "  if (nbd == NULL ||\n"
      "      nbd_connect_uri (nbd, \"nbd+unix:///disk?socket=/tmp/sock\") == -1) {\n"
      "    fprintf (stderr, \"%s\\n\", nbd_get_error ());\n"
      "    exit (EXIT_FAILURE);\n"
      "  }\n"
      "  printf (\"size: %\" PRIi64 \"\\n\", nbd_get_size (nbd));\n"
      "  nbd_shutdown (nbd, 0);\n"
      "  nbd_close (nbd);",
    .see_also = "nbd_aio_connect_uri(3) nbd_get_uri(3) nbd_set_export_name(3) "
                "nbd_set_tls(3) nbd_set_uri_allow_transports(3) "
                "nbd_set_uri_allow_tls(3) nbd_set_uri_allow_local_file(3) "
                "nbd_set_uri_allow_tls_priority(3) nbd_supports_uri(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "connect_unix",
    .args = { A_PATH ("unixsocket") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to NBD server over a Unix domain socket",
    .description =
      "Open a connection to a local NBD server listening on the Unix domain "
      "socket whose path is C<unixsocket>, and block until it is usable.  "
      "Errors from L<socket(2)> or L<connect(2)> (for example C<ENOENT> or "
      "C<ECONNREFUSED>) are passed back through the usual error "
      "functions.\n\n"
      CONNECT_OPT_MODE_NOTE
      "\n\n"
      "This is the usual way to reach a server on the same machine, "
      "for instance C<nbdkit -U /tmp/sock ...> or C<qemu-nbd -k "
      "/tmp/sock ...>.  A path longer than a Unix socket address can "
      "hold fails with C<ENAMETOOLONG>.  A connection refused or a "
      "failed handshake leaves the handle dead "
      "(L<nbd_aio_is_dead(3)>).  With a connect timeout set "
      "(L<nbd_ext_set_connect_timeout(3)>) the call keeps retrying "
      "while the socket does not exist yet or refuses, which saves a "
      "program that has just started its server from writing a wait "
      "loop.\n\n"
      "L<nbd_aio_connect_unix(3)> is the form that returns at once, "
      "for programs with their own event loop; it does not retry.",
    .see_also = "nbd_aio_connect_unix(3) nbd_connect_uri(3) "
                "nbd_set_opt_mode(3) nbd_create(3)",
  },

  {
    .name = "connect_vsock",
    .args = { A_UINT32 ("cid"), A_UINT32 ("port") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect to NBD server over AF_VSOCK protocol",
    .description =
      "Open an C<AF_VSOCK> connection, typically from inside a virtual "
      "machine to a server on its hypervisor, and block until it is "
      "usable.  C<cid> is the context ID of the peer (2 addresses the "
      "host) and C<port> the vsock port the server listens on, often "
      "10809.  On platforms lacking C<AF_VSOCK> the call fails with "
      "C<ENOTSUP>.\n\n"
      CONNECT_OPT_MODE_NOTE
      "\n\n"
      "C<VMADDR_CID_HOST> (2) reaches the hypervisor from a guest, "
      "and C<VMADDR_CID_LOCAL> (1) the local machine, which is handy "
      "for tests when the Linux C<vsock_loopback> module is loaded.  "
      "Errors from the kernel, for example when no vsock transport "
      "is available or nothing listens on the port, are passed back "
      "as the call's error and leave the handle dead.\n\n"
      "L<nbd_aio_connect_vsock(3)> is the form that does not wait.",
    .see_also = "nbd_aio_connect_vsock(3) nbd_connect_uri(3) "
                "nbd_set_opt_mode(3) vsock(7)",
  },

  {
    .name = "connect_tcp",
    .args = { A_STRING ("hostname"), A_STRING ("port") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to NBD server over a TCP port",
    .description =
      "Resolve C<hostname> with L<getaddrinfo(3)> and connect to the NBD "
      "server there, trying each returned address in turn until one "
      "accepts.  C<port> is a string: either a decimal number such as "
      "C<\"10809\"> or a service name such as C<\"nbd\">.  Name resolution "
      "failures and connection errors from the last address tried are "
      "reported as errors.\n\n"
      CONNECT_OPT_MODE_NOTE
      "\n\n"
      "The host name is kept for TLS: when L<nbd_set_tls(3)> asks "
      "for TLS with certificates, the server's certificate must "
      "match it unless L<nbd_set_tls_hostname(3)> names another host "
      "or L<nbd_set_tls_verify_peer(3)> turns the check off.  The "
      "name lookup makes L<nbd_get_errno(3)> 0 when it fails for a "
      "reason other than a system error; the message from "
      "L<nbd_get_error(3)> then names the resolver's reason.\n\n"
      "L<nbd_aio_connect_tcp(3)> "
      "starts the connection without waiting (the name lookup still "
      "blocks).",
    .see_also = "nbd_aio_connect_tcp(3) nbd_connect_uri(3) "
                "nbd_set_opt_mode(3) getaddrinfo(3)",
  },

  {
    .name = "connect_socket",
    .args = { A_FD ("sock") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect directly to a connected socket",
    .description =
      "Talk NBD over C<sock>, a socket (or similar bidirectional file "
      "descriptor) which the caller has already connected to a server by "
      "whatever means it likes.  A negative descriptor is rejected with "
      "C<EBADF>.\n\n"
      "When the call succeeds the handle owns C<sock>: it is closed by "
      "L<nbd_close(3)> and the caller must not read, write or close it "
      "afterwards.\n\n"
      CONNECT_OPT_MODE_NOTE
      "\n\n"
      "Typical uses are a socket inherited from a parent process, "
      "one created by a proxy library, or one end of a "
      "L<socketpair(2)> whose other end is given to a server running "
      "in the same program for tests.  If the call fails before "
      "taking the socket (a negative descriptor, or one that cannot "
      "be made non-blocking) it remains the caller's to close.  "
      "Since the handle has no address for the server, "
      "L<nbd_get_uri(3)> cannot describe the connection and TLS has "
      "no host name to check unless L<nbd_set_tls_hostname(3)> "
      "supplies one.  L<nbd_aio_connect_socket(3)> does not wait.",
    .see_also = "nbd_aio_connect_socket(3) nbd_connect_command(3) "
                "nbd_set_opt_mode(3) nbd_close(3)",
  },

  {
    .name = "connect_command",
    .args = { A_STRING_LIST ("argv") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to NBD server command",
    .description =
      "Start the NBD server program described by C<argv> (a NULL-terminated "
      "list whose first element is the program, found and run as "
      "L<execvp(3)> does: searched in C<PATH>, and a file without C<#!> "
      "run by C</bin/sh>) as a "
      "child process, with one end of a socket pair as its standard input "
      "and output, and speak NBD over the other end.  This suits servers "
      "that can serve a single client on stdin/stdout, such as "
      "C<nbdkit -s> or L<nbd-server(1)> with port 0.  For "
      "L<qemu-nbd(8)> use L<nbd_connect_systemd_socket_activation(3)> "
      "instead.  An empty C<argv> is rejected with C<EINVAL>.  A program "
      "that cannot be run makes the child print why on the standard "
      "error it shares with the caller and exit, so the connection "
      "fails as the server closing it during the handshake.\n\n"
      "The child is killed when the handle is closed; see also "
      "L<nbd_kill_subprocess(3)> and L<nbd_get_subprocess_pid(3)>.\n\n"
      CONNECT_OPT_MODE_NOTE,
    .see_also = "nbd_aio_connect_command(3) "
                "nbd_connect_systemd_socket_activation(3) "
                "nbd_kill_subprocess(3) nbd_get_subprocess_pid(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "connect_systemd_socket_activation",
    .args = { A_STRING_LIST ("argv") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect using systemd socket activation",
    .description =
      "Create a listening Unix domain socket in a private temporary "
      "directory, start the server program described by C<argv> as a "
      "child process handing it that socket through the systemd socket "
      "activation protocol (C<LISTEN_FDS>, C<LISTEN_PID> and "
      "C<LISTEN_FDNAMES>, see L<nbd_set_socket_activation_name(3)>), then "
      "connect to it.  Servers supporting this include L<qemu-nbd(8)> and "
      "L<nbdkit(1)>; L<nbd-server(1)> does not, so use "
      "L<nbd_connect_command(3)> for it.  An empty C<argv> gives "
      "C<EINVAL>.\n\n"
      "The child is killed when the handle is closed.\n\n"
      CONNECT_OPT_MODE_NOTE,
    .see_also = "nbd_aio_connect_systemd_socket_activation(3) "
                "nbd_connect_command(3) nbd_set_socket_activation_name(3) "
                "nbd_kill_subprocess(3) nbd_get_subprocess_pid(3) "
                "nbd_set_opt_mode(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Asynchronous connect calls. */

  {
    .name = "aio_connect",
    .args = { A_SOCKADDR ("addr", "addrlen") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to the NBD server",
    .description =
      "Start a non-blocking connection to the socket address C<addr> of "
      "length C<addrlen>; any address family usable with L<connect(2)> "
      "works.  The address is copied, so the caller may free it as soon "
      "as the call returns.\n\n"
      "The call does not wait: the handle moves to the connecting state "
      "and the caller's main loop drives it on with "
      "L<nbd_aio_notify_read(3)>, L<nbd_aio_notify_write(3)> or "
      "L<nbd_poll(3)>.  L<nbd_aio_is_connecting(3)> stays true while the "
      "handshake runs; afterwards L<nbd_aio_is_ready(3)> (or "
      "L<nbd_aio_is_negotiating(3)> in option mode) becomes true, or "
      "L<nbd_aio_is_dead(3)> if it failed."
      "\n\n"
      "Only the socket creation and the start of the connection "
      "happen in the call; an immediate failure of L<connect(2)> "
      "(for example C<ENOENT> or C<ECONNREFUSED> for a Unix socket) "
      "makes it return -1 with that error and leaves the handle "
      "dead.  A connection still in progress completes when the "
      "socket becomes writable: the event loop waits for that as "
      "L<nbd_aio_get_direction(3)> asks and calls "
      "L<nbd_aio_notify_write(3)>.  Unlike L<nbd_aio_connect_tcp(3)> "
      "no name is known for TLS, so for certificate checks set one "
      "with L<nbd_set_tls_hostname(3)>.",
    .see_also = "nbd_aio_is_connecting(3) nbd_aio_is_ready(3) "
                "nbd_aio_connect_tcp(3) nbd_aio_connect_unix(3) "
                "nbd_connect_tcp(3)",
  },

  {
    .name = "aio_connect_uri",
    .args = { A_STRING ("uri") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to an NBD URI",
    .description =
      "Non-blocking form of L<nbd_connect_uri(3)>: the URI is parsed and "
      "checked (with the same restrictions and errors) and the handle "
      "settings it implies are applied immediately, then the connection is "
      "started and the call returns.\n\n"
      AIO_CONNECT_NOTE "  In option mode, L<nbd_aio_is_negotiating(3)> "
      "becomes true instead of L<nbd_aio_is_ready(3)>."
      "\n\n"
      "Parsing and policy errors (a malformed URI with C<EINVAL>, a "
      "transport, TLS mode or local file refused by the "
      "C<nbd_set_uri_allow_*> settings with C<EPERM>, a URI "
      "requiring TLS in a build without it with C<ENOTSUP>) are "
      "reported by this call, before anything is connected.  For TCP "
      "URIs (C<nbd:> and C<nbds:>) the host name lookup happens "
      "inside the call and may block, as for "
      "L<nbd_aio_connect_tcp(3)>; for C<nbd+ssh:> the SSH command is "
      "started here.  Later failures, during the connection or "
      "handshake, surface through the call that drives the handle "
      "and L<nbd_aio_is_dead(3)>.",
    .see_also = "nbd_connect_uri(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_connect_unix",
    .args = { A_PATH ("unixsocket") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to the NBD server over a Unix domain socket",
    .description =
      "Begin connecting to the Unix domain socket C<unixsocket> without "
      "blocking; this is the asynchronous counterpart of "
      "L<nbd_connect_unix(3)>.  A path too long for C<sun_path> is "
      "rejected with C<ENAMETOOLONG>.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "For a Unix socket the kernel usually accepts or refuses the "
      "connection at once, so a missing socket (C<ENOENT>), a socket "
      "nobody listens on (C<ECONNREFUSED>) or missing permission "
      "(C<EACCES>) is normally reported by this call itself, leaving "
      "the handle dead.  Failures during the handshake arrive later: "
      "the call that drives the handle (L<nbd_aio_notify_read(3)>, "
      "L<nbd_poll(3)>...) returns -1 and L<nbd_aio_is_dead(3)> "
      "becomes true.  Unlike L<nbd_connect_unix(3)>, this form never "
      "waits, so it is safe to call from a program's event loop; use "
      "L<nbd_aio_get_fd(3)> and L<nbd_aio_get_direction(3)> to learn "
      "what to wait for.",
    .see_also = "nbd_connect_unix(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3) nbd_aio_connect(3)",
  },

  {
    .name = "aio_connect_vsock",
    .args = { A_UINT32 ("cid"), A_UINT32 ("port") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect to the NBD server over AF_VSOCK socket",
    .description =
      "Begin an C<AF_VSOCK> connection to C<cid>:C<port> without waiting "
      "for it; see L<nbd_connect_vsock(3)> for the meaning of the "
      "arguments.  C<ENOTSUP> is reported where the platform has no vsock "
      "support.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "Errors that the kernel reports straight away, for instance "
      "when no vsock transport is loaded, make this call fail and "
      "the handle dead; a connection that is still in progress "
      "finishes later, and a refusal then shows as a failure of the "
      "call that drives the handle (L<nbd_aio_notify_write(3)> or "
      "L<nbd_poll(3)>) with L<nbd_aio_is_dead(3)> becoming true.  "
      "Use L<nbd_supports_vsock(3)> to find out beforehand whether "
      "the library has vsock support at all.",
    .see_also = "nbd_connect_vsock(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3)",
  },

  {
    .name = "aio_connect_tcp",
    .args = { A_STRING ("hostname"), A_STRING ("port") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to the NBD server over a TCP port",
    .description =
      "Asynchronous form of L<nbd_connect_tcp(3)>.  The host name and "
      "port (number or service name) are looked up and the first "
      "connection attempt is started; the state machine falls back to "
      "later addresses by itself if earlier ones fail.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "Note that the name lookup itself is done with "
      "L<getaddrinfo(3)> inside this call and can block, for "
      "instance on a slow DNS server; only the connection attempts "
      "and the handshake are asynchronous.  A program that must "
      "never block can resolve the name itself and pass each address "
      "to L<nbd_aio_connect(3)>.\n\n"
      "A name that cannot be resolved makes the call fail at once; "
      "the message gives the resolver's reason, and "
      "L<nbd_get_errno(3)> is 0 unless the resolver hit a system "
      "error.  Refusals of individual addresses are not reported: "
      "the next address is tried, and only when all have failed does "
      "the driving call (L<nbd_aio_notify_write(3)>, "
      "L<nbd_poll(3)>...) return -1 with the error of the last "
      "attempt.  The host name is remembered for TLS certificate "
      "checks (L<nbd_get_tls_hostname(3)>) and for L<nbd_get_uri(3)>.",
    .see_also = "nbd_connect_tcp(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3) nbd_aio_connect(3)",
  },

  {
    .name = "aio_connect_socket",
    .args = { A_FD ("sock") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect directly to a connected socket",
    .description =
      "Hand the already connected descriptor C<sock> to the handle and "
      "start the NBD handshake on it without blocking.  As with "
      "L<nbd_connect_socket(3)>, a successful call transfers ownership "
      "of C<sock> to the handle, which closes it when the handle is "
      "closed.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "The descriptor must be a connected stream socket (or another "
      "bidirectional descriptor, such as one end of a C<socketpair>) "
      "whose other end speaks NBD as a server; the handle puts it in "
      "non-blocking mode and starts the handshake by reading the "
      "server's greeting.  This is the way to use a connection made "
      "by other means, for example one inherited from a parent "
      "process or set up through a proxy.  A negative C<sock> fails "
      "with C<EBADF>.\n\n"
      "If the call fails the handle does not take the descriptor, "
      "and the caller remains responsible for closing it.  Since the "
      "handle knows nothing about where the socket leads, "
      "L<nbd_get_uri(3)> cannot describe such a connection, and TLS "
      "has no host name to check unless L<nbd_set_tls_hostname(3)> "
      "supplies one.",
    .see_also = "nbd_connect_socket(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3)",
  },

  {
    .name = "aio_connect_command",
    .args = { A_STRING_LIST ("argv") },
    CONNECT_CALL,
    .version = "1.0",
    .summary = "connect to the NBD server",
    .description =
      "Fork the server program given by C<argv>, wired to the handle "
      "through its standard input and output, and start the handshake "
      "without waiting for it to finish.  The child process exists by the "
      "time this call returns.  See L<nbd_connect_command(3)> for details "
      "and for the C<EINVAL> given by an empty C<argv>.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "The server program must speak NBD on its standard input and "
      "output, as C<nbdkit -s> or C<nbd-server> with a suitable "
      "configuration do.  Its standard error is left connected to "
      "the caller's, so its messages appear there.  The child "
      "belongs to the handle: L<nbd_get_subprocess_pid(3)> returns "
      "its process ID, L<nbd_kill_subprocess(3)> signals it, and "
      "L<nbd_close(3)> waits for it to exit.  Errors of "
      "L<socketpair(2)> or L<fork(2)> are reported by this call; a "
      "program that cannot be run only shows up as a failed "
      "handshake later.",
    .see_also = "nbd_connect_command(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3) nbd_kill_subprocess(3)",
  },

  {
    .name = "aio_connect_systemd_socket_activation",
    .args = { A_STRING_LIST ("argv") },
    CONNECT_CALL,
    .version = "1.2",
    .summary = "connect using systemd socket activation",
    .description =
      "Non-blocking form of L<nbd_connect_systemd_socket_activation(3)>: "
      "the listening socket is prepared, the server in C<argv> is started "
      "with it, and the connection attempt begins; the call then returns "
      "without waiting for the handshake.\n\n"
      AIO_CONNECT_NOTE
      "\n\n"
      "Creating the socket, forking and starting the server all "
      "happen inside this call, and failures there (the errors of "
      "L<socket(2)>, L<bind(2)> or L<fork(2)>, or C<ENAMETOOLONG> "
      "when the temporary directory's path does not fit in a socket "
      "address) are reported by it; an empty C<argv> fails with "
      "C<EINVAL>.  The server process belongs to the handle: "
      "L<nbd_get_subprocess_pid(3)> gives its ID, "
      "L<nbd_kill_subprocess(3)> signals it, and L<nbd_close(3)> "
      "reaps it.",
    .see_also = "nbd_connect_systemd_socket_activation(3) "
                "nbd_aio_is_connecting(3) nbd_aio_is_ready(3) "
                "nbd_set_socket_activation_name(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Subprocess control. */

  {
    .name = "kill_subprocess",
    .args = { A_INT ("signum") },
    .ret = RET_ERR,
    .permitted = 0,
    .version = "1.0",
    .summary = "kill server running as a subprocess",
    .description =
      "Send signal C<signum> to the server child process started by "
      "L<nbd_connect_command(3)> or "
      "L<nbd_connect_systemd_socket_activation(3)> (or their asynchronous "
      "versions).  Passing 0 sends C<SIGTERM>.  The call returns once the "
      "signal is sent, without waiting for the child: the child is reaped "
      "by L<nbd_close(3)>, after the socket is closed.\n\n"
      "This is rarely needed, since closing the handle already terminates "
      "the child; it helps only with servers that keep running after their "
      "socket is closed.  The call fails with C<ESRCH> when there is no "
      "child process and with C<EINVAL> for a negative C<signum>."
      "\n\n"
      "Use it for instance to stop a server that hangs, before "
      "closing the handle, or to test how a program copes with a "
      "server that dies: the connection then breaks and commands in "
      "flight fail.  The signal is sent with L<kill(2)>, whose "
      "error, such as C<EPERM>, is passed back if it fails.",
    .see_also = "nbd_connect_command(3) nbd_get_subprocess_pid(3) "
                "nbd_close(3) signal(7)",
  },

  {
    .name = "get_subprocess_pid",
    .ret = RET_INT64,
    .permitted = 0,
    .version = "1.22",
    .summary = "get the process ID of the subprocess",
    .description =
      "Return the process ID of the server that the handle started "
      "itself, with L<nbd_connect_command(3)>, "
      "L<nbd_connect_systemd_socket_activation(3)>, their "
      "C<nbd_aio_*> forms, or a URI that runs a command "
      "(C<nbd+ssh:>).  It is mostly a debugging aid, for instance to "
      "attach L<gdb(1)> to a misbehaving server or to look at it in "
      "C<ps>.\n\n"
      "The child belongs to the handle: L<nbd_close(3)> reaps it, "
      "and L<nbd_kill_subprocess(3)> sends it a signal, so the "
      "program should not wait for it or kill it by this number "
      "itself.  The call fails with C<ESRCH> when the handle has no "
      "child process (it connected in another way, or has not "
      "connected yet).",
    .see_also = "nbd_connect_command(3) nbd_kill_subprocess(3) "
                "nbd_create(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Option negotiation, blocking forms. */

  {
    .name = "opt_go",
    .ret = RET_ERR,
    .permitted = ST_OPT,
    .version = "1.4",
    .summary = "end negotiation and move on to using an export",
    .description =
      "Only usable in option mode (L<nbd_set_opt_mode(3)>).  Send "
      "C<NBD_OPT_GO> for the export currently selected with "
      "L<nbd_set_export_name(3)> (or taken from the URI), requesting the "
      "meta contexts registered with L<nbd_add_meta_context(3)> if "
      "L<nbd_set_request_meta_context(3)> allows it, and wait for the "
      "answer.  On success the handle leaves negotiation and is ready for "
      "data commands.\n\n"
      "If the server refuses, the call fails; a modern server normally "
      "keeps the negotiation open so another export or option can be "
      "tried, but an old server may drop the connection instead."
      "\n\n"
      "With a server that is not fixed newstyle, this sends the old "
      "C<NBD_OPT_EXPORT_NAME> instead, after which the server either "
      "goes straight to transmission or hangs up, so a failure then "
      "leaves the handle dead rather than negotiating.  After "
      "success, the export's size, flags and block sizes are fixed "
      "for the connection (L<nbd_get_size(3)>, "
      "L<nbd_can_flush(3)>...), and the contexts the server accepted "
      "are those L<nbd_can_meta_context(3)> reports.\n\n"
      "The call blocks until the answer is in and fails with "
      "C<EDEADLK> from a callback of the same handle.  The server's "
      "refusal is reported with an error number translated from its "
      "reply (for example C<ENOENT> for an unknown export, C<EPERM> "
      "when access is denied, or C<ENOTSUP> when the server requires "
      "TLS first); L<nbd_aio_opt_go(3)> is the form that does not "
      "wait.",
    .see_also = "nbd_aio_opt_go(3) nbd_opt_info(3) nbd_opt_abort(3) "
                "nbd_set_opt_mode(3) nbd_set_export_name(3) "
                "nbd_aio_is_negotiating(3)",
  },

  {
    .name = "opt_abort",
    .ret = RET_ERR,
    .permitted = ST_OPT,
    .version = "1.4",
    .summary = "end negotiation and close the connection",
    .description =
      "Only usable in option mode (L<nbd_set_opt_mode(3)>), while "
      "the handle is negotiating.  Send C<NBD_OPT_ABORT> to tell the "
      "server that the client is giving up without using any export, "
      "wait for the server's acknowledgement if it sends one, and "
      "close the socket.  The handle is then closed "
      "(L<nbd_aio_is_closed(3)>): no export can be used on it, and a "
      "new handle is needed to connect again.\n\n"
      "This is the polite way to end a session that was only used to "
      "ask questions, for example after L<nbd_opt_list(3)> or "
      "L<nbd_opt_info(3)>; simply closing the handle works too but "
      "leaves the server to notice a dropped connection.  It is sent "
      "even to servers that do not use fixed newstyle.\n\n"
      "The call blocks until the exchange is over; called from a "
      "callback of the same handle it fails with C<EDEADLK>.  "
      "L<nbd_aio_opt_abort(3)> is the form that does not wait.",
    .see_also = "nbd_aio_opt_abort(3) nbd_opt_go(3) nbd_shutdown(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_starttls",
    .ret = RET_BOOL,
    .permitted = ST_OPT,
    .version = "1.16",
    .summary = "request the server to initiate TLS",
    .description =
      "Only usable in option mode.  Ask the server to upgrade the "
      "connection with C<NBD_OPT_STARTTLS> and, if it agrees, perform "
      "the TLS handshake using the credentials configured on the handle "
      "(L<nbd_set_tls_certificates(3)>, L<nbd_set_tls_psk_file(3)> and "
      "so on).  Returns true when TLS is now in use and false when the "
      "server declined, in which case negotiation continues in "
      "plaintext; a failed TLS handshake is an error.\n\n"
      "Since the library already does this automatically during "
      "connection whenever L<nbd_set_tls(3)> asks for TLS, manual use "
      "normally requires setting C<LIBNBD_TLS_DISABLE> first.  It also "
      "fails (C<ENOTSUP>) when the library lacks TLS support "
      "(L<nbd_supports_tls(3)>), and is pointless once TLS is already "
      "active.\n\n"
      "After a successful upgrade the server starts negotiation afresh, "
      "and so does the handle: structured replies and extended headers "
      "count as not negotiated, and meta contexts, export size and flags "
      "learned in plaintext are forgotten."
      "\n\n"
      "Against a server that is not fixed newstyle the call fails "
      "with C<ENOTSUP> and sends nothing.  When the server agrees "
      "but the TLS handshake then fails (a certificate that does not "
      "verify, a wrong pre-shared key), the connection cannot "
      "continue and the handle is dead.  The call blocks until the "
      "upgrade is over and fails with C<EDEADLK> from a callback of "
      "the same handle; L<nbd_aio_opt_starttls(3)> does not wait and "
      "reports the outcome through its completion callback.",
    .see_also = "nbd_aio_opt_starttls(3) nbd_set_tls(3) "
                "nbd_get_tls_negotiated(3) nbd_supports_tls(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_extended_headers",
    .ret = RET_BOOL,
    .permitted = ST_OPT,
    .version = "1.18",
    .summary = "request the server to enable extended headers",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_EXTENDED_HEADERS> to "
      "ask for 64-bit request and reply headers.  Returns true if the "
      "server accepted (this also implies structured replies), false if it "
      "refused, and -1 for other failures.\n\n"
      "The library normally requests extended headers by itself while "
      "connecting, so to control this step by hand turn that off with "
      "L<nbd_set_request_extended_headers(3)> before connecting.  The "
      "outcome is also available from "
      "L<nbd_get_extended_headers_negotiated(3)>."
      "\n\n"
      "Against a server that does not use fixed newstyle the call "
      "fails with C<ENOTSUP> and sends nothing.  Some servers refuse "
      "a repeated request even though the first one succeeded; the "
      "library keeps using extended headers once they were agreed, "
      "whatever a later call returns.  With extended headers, "
      "requests such as L<nbd_zero(3)>, L<nbd_trim(3)> and "
      "L<nbd_block_status_64(3)> may cover more than 4 GiB and "
      "L<nbd_block_status_filter(3)> becomes possible.  The call "
      "blocks until the reply arrives and fails with C<EDEADLK> from "
      "a callback of the same handle; "
      "L<nbd_aio_opt_extended_headers(3)> does not wait.",
    .see_also = "nbd_aio_opt_extended_headers(3) "
                "nbd_set_request_extended_headers(3) "
                "nbd_get_extended_headers_negotiated(3) "
                "nbd_opt_structured_reply(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_structured_reply",
    .ret = RET_BOOL,
    .permitted = ST_OPT,
    .version = "1.16",
    .summary = "request the server to enable structured replies",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_STRUCTURED_REPLY>, "
      "asking for the reply format that allows sparse reads, block status "
      "and meta contexts.  Returns true if the server agreed and false if "
      "it declined.\n\n"
      "Connecting normally requests this automatically; clear "
      "L<nbd_set_request_structured_replies(3)> beforehand to manage it "
      "yourself.  The result can later be read back with "
      "L<nbd_get_structured_replies_negotiated(3)>."
      "\n\n"
      "Against a server that does not use fixed newstyle the call "
      "fails with C<ENOTSUP> without sending anything; a lost "
      "connection also makes it fail.  A server may refuse a second "
      "request as redundant: once one request has succeeded, "
      "structured replies stay in use whatever later calls return.  "
      "Once extended headers are in use, structured replies are "
      "implied and asking again is pointless.  The call blocks until "
      "the reply arrives and fails with C<EDEADLK> from a callback "
      "of the same handle; L<nbd_aio_opt_structured_reply(3)> does "
      "not wait.",
    .see_also = "nbd_aio_opt_structured_reply(3) "
                "nbd_set_request_structured_replies(3) "
                "nbd_get_structured_replies_negotiated(3) "
                "nbd_opt_extended_headers(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_list",
    .args = { A_CLOSURE ("list") },
    .ret = RET_INT,
    .permitted = ST_OPT,
    .version = "1.4",
    .summary = "request the server to list all exports during negotiation",
    .description =
      "Only usable in option mode.  Ask the server for its exports with "
      "C<NBD_OPT_LIST>.  The C<list> callback runs once for each export "
      "with its C<name> and C<description> (the latter is an empty string "
      "when the server supplies none).  The strings are only valid during "
      "the callback, which may not make blocking calls on the same "
      "handle (they fail with C<EDEADLK>); its return value is currently "
      "ignored.  On success the "
      "number of exports reported is returned.\n\n"
      "Servers may refuse the request, may return an empty list on "
      "purpose, or may fail part way through, so callbacks can have run "
      "even when the call fails.  The list may be long."
      "\n\n"
      "Against a server that does not use fixed newstyle the call "
      "fails with C<ENOTSUP> and sends nothing.  Like every blocking "
      "C<nbd_opt_*> call it waits for the whole answer and fails "
      "with C<EDEADLK> when made from a callback of the same handle; "
      "L<nbd_aio_opt_list(3)> is the form that "
      "returns at once and reports the outcome through its "
      "completion callback.\n\n"
      "A program listing the exports of a server enables option mode "
      "before connecting, lists, and then either picks an export "
      "with L<nbd_opt_go(3)> or ends politely with "
      "L<nbd_opt_abort(3)>:\n\n"
      "  static int\n"
      "  show_export (void *user_data, const char *name,\n"
      "               const char *description)\n"
      "  {\n"
      "    printf (\"export \\\"%s\\\" (%s)\\n\", name, description);\n"
      "    return 0;\n"
      "  }\n\n"
      "  nbd_set_opt_mode (nbd, true);\n"
      "  if (nbd_connect_uri (nbd, \"nbd://example.com\") == -1 ||\n"
      "      nbd_opt_list (nbd, (nbd_list_callback) {\n"
      "                           .callback = show_export }) == -1) {\n"
      "    fprintf (stderr, \"%s\\n\", nbd_get_error ());\n"
      "    exit (EXIT_FAILURE);\n"
      "  }\n"
      "  nbd_opt_abort (nbd);",
    .see_also = "nbd_aio_opt_list(3) nbd_opt_info(3) nbd_opt_go(3) "
                "nbd_set_export_name(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_info",
    .ret = RET_ERR,
    .permitted = ST_OPT,
    .version = "1.4",
    .summary = "request the server for information about an export",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_INFO> for the export "
      "currently selected with L<nbd_set_export_name(3)>.  On success the "
      "handle's view of that export (size, flags, block sizes, meta "
      "contexts) is filled in, so L<nbd_get_size(3)>, "
      "L<nbd_is_read_only(3)> and similar calls answer for it while the "
      "handle stays in negotiation.\n\n"
      "A later L<nbd_opt_go(3)> on the same export usually sees the same "
      "details, but not every server guarantees it, and some servers "
      "reject the request even though C<NBD_OPT_GO> would work."
      "\n\n"
      "The request is C<NBD_OPT_INFO>, which asks for the same "
      "information as C<NBD_OPT_GO> (export size and flags, plus the "
      "optional items from L<nbd_set_full_info(3)> and "
      "L<nbd_set_request_block_size(3)>) but leaves the server in "
      "negotiation.  It is the way to inspect several exports before "
      "choosing one: set the name with L<nbd_set_export_name(3)>, "
      "call this, read the answers, then move on to the next name.  "
      "When L<nbd_set_request_meta_context(3)> is true the contexts "
      "in the handle's list are also selected for the export, so "
      "L<nbd_can_meta_context(3)> can be asked too.\n\n"
      "Against a server that is not fixed newstyle the call fails "
      "with C<ENOTSUP> and sends nothing; a refusal by the server "
      "fails the call with the translated error while the handle "
      "stays negotiating.  It blocks until the answer is in and "
      "fails with C<EDEADLK> from a callback of the same handle; "
      "L<nbd_aio_opt_info(3)> does not wait.",
    .see_also = "nbd_aio_opt_info(3) nbd_opt_go(3) nbd_opt_list(3) "
                "nbd_get_size(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_list_meta_context",
    .args = { A_CLOSURE ("context") },
    .ret = RET_INT,
    .permitted = ST_OPT,
    .version = "1.6",
    .summary = "list available meta contexts, using implicit query list",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_LIST_META_CONTEXT> for "
      "the current export, using as queries the names previously added "
      "with L<nbd_add_meta_context(3)>.  An empty query list usually makes "
      "the server list everything it supports; otherwise it answers only "
      "the matching names.  The C<context> callback is invoked once per "
      "name returned; it must copy any string it wants to keep and must "
      "not modify the handle.  The number of replies is returned.\n\n"
      "A listed name may stand for a whole family of contexts, so "
      "L<nbd_can_meta_context(3)> after connecting remains the "
      "authoritative answer.  As with L<nbd_opt_list(3)>, partial results "
      "are possible on failure."
      "\n\n"
      "Against a server that is not fixed newstyle the call fails "
      "with C<ENOTSUP> and sends nothing, and a server without "
      "structured replies usually refuses the option.  The call "
      "blocks until the whole list has arrived and fails with "
      "C<EDEADLK> from a callback of the same handle; "
      "L<nbd_aio_opt_list_meta_context(3)> returns at once and "
      "reports the outcome through its completion callback.  See "
      "L<nbd_opt_list_meta_context_queries(3)> for an example "
      "callback.",
    .see_also = "nbd_aio_opt_list_meta_context(3) "
                "nbd_opt_list_meta_context_queries(3) "
                "nbd_opt_set_meta_context(3) nbd_add_meta_context(3) "
                "nbd_can_meta_context(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_list_meta_context_queries",
    .args = { A_STRING_LIST ("queries"), A_CLOSURE ("context") },
    .ret = RET_INT,
    .permitted = ST_OPT,
    .version = "1.16",
    .summary = "list available meta contexts, using explicit query list",
    .description =
      "Only usable in option mode.  Send "
      "C<NBD_OPT_LIST_META_CONTEXT> for the current export, like "
      "L<nbd_opt_list_meta_context(3)>, but with the query strings "
      "taken from C<queries>, a C<NULL>-terminated array of strings, "
      "instead of from the handle's list built with "
      "L<nbd_add_meta_context(3)> (which stays as it was).  An empty "
      "array usually asks the server to list every context it has "
      "for the export; a query such as C<\"qemu:\"> asks for every "
      "context in that namespace.\n\n"
      "The C<context> callback runs once for each name the server "
      "returns, with the name as a string valid only during the "
      "call; it must copy anything it wants to keep and must not "
      "call libnbd on the same handle.  On success the number of "
      "names returned is the result.\n\n"
      "  static int\n"
      "  print_context (void *user_data, const char *name)\n"
      "  {\n"
      "    printf (\"%s\\n\", name);\n"
      "    return 0;\n"
      "  }\n\n"
      "  char *queries[] = { \"qemu:\", NULL };\n"
      "  nbd_opt_list_meta_context_queries (nbd, queries,\n"
      "    (nbd_context_callback) { .callback = print_context });\n\n"
      "A server without fixed newstyle makes the call fail with "
      "C<ENOTSUP> without sending anything; a server that refuses "
      "the option makes it fail, leaving the handle negotiating.  "
      "The call blocks until the answer is in; from a callback of "
      "the same handle it fails with C<EDEADLK>.",
    .see_also = "nbd_aio_opt_list_meta_context_queries(3) "
                "nbd_opt_list_meta_context(3) "
                "nbd_opt_set_meta_context_queries(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_set_meta_context",
    .args = { A_CLOSURE ("context") },
    .ret = RET_INT,
    .permitted = ST_OPT,
    .version = "1.16",
    .summary = "select specific meta contexts, using implicit query list",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_SET_META_CONTEXT> for "
      "the current export with the names registered by "
      "L<nbd_add_meta_context(3)>.  Each context the server accepts is "
      "passed to the C<context> callback and becomes available to "
      "L<nbd_can_meta_context(3)> and L<nbd_block_status(3)> once the "
      "export is in use; the number of accepted contexts is returned.\n\n"
      "L<nbd_opt_go(3)> already does this when structured replies or "
      "extended headers are negotiated, so this call matters mainly for "
      "testing unusual sequences, usually together with "
      "L<nbd_set_request_meta_context(3)> set to false.  Selecting "
      "another export afterwards discards the result."
      "\n\n"
      "Against a server that is not fixed newstyle the call fails "
      "with C<ENOTSUP> and sends nothing.  Like the other blocking "
      "option calls it waits for the full answer and fails with "
      "C<EDEADLK> from a callback of the same handle; "
      "L<nbd_aio_opt_set_meta_context(3)> does not wait.",
    .see_also = "nbd_aio_opt_set_meta_context(3) "
                "nbd_opt_set_meta_context_queries(3) "
                "nbd_set_request_meta_context(3) nbd_add_meta_context(3) "
                "nbd_can_meta_context(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "opt_set_meta_context_queries",
    .args = { A_STRING_LIST ("queries"), A_CLOSURE ("context") },
    .ret = RET_INT,
    .permitted = ST_OPT,
    .version = "1.16",
    .summary = "select specific meta contexts, using explicit query list",
    .description =
      "Only usable in option mode.  Send C<NBD_OPT_SET_META_CONTEXT> "
      "for the current export, like L<nbd_opt_set_meta_context(3)>, "
      "but request the names in C<queries>, a C<NULL>-terminated "
      "array of strings, instead of those in the handle's list "
      "(which is not changed).  Each context the server accepts is "
      "reported to the C<context> callback and becomes usable for "
      "L<nbd_block_status(3)> once the export is entered with "
      "L<nbd_opt_go(3)>; the number accepted is returned.\n\n"
      "A successful call replaces any contexts selected before, and "
      "selecting a different export with L<nbd_set_export_name(3)> "
      "forgets them.  Since L<nbd_opt_go(3)> would normally send the "
      "handle's own list again, pair this call with "
      "L<nbd_set_request_meta_context(3)> set to false when the "
      "explicit choice must survive.\n\n"
      "Without fixed newstyle the call fails with C<ENOTSUP> and "
      "sends nothing; a server that supports neither structured "
      "replies nor extended headers usually refuses the option.  The "
      "call blocks until the answer is in; from a callback of the "
      "same handle it fails with C<EDEADLK>.",
    .see_also = "nbd_aio_opt_set_meta_context_queries(3) "
                "nbd_opt_set_meta_context(3) "
                "nbd_opt_list_meta_context_queries(3) nbd_set_opt_mode(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Option negotiation, asynchronous forms. */

  {
    .name = "aio_opt_go",
    AIO_OPT_CALL,
    .version = "1.4",
    .summary = "end negotiation and move on to using an export",
    .description =
      "Queue the request made by L<nbd_opt_go(3)> and return at once.  "
      AIO_OPT_NOTE "  Without the callback, failure shows only as the "
      "handle still being negotiating (L<nbd_aio_is_negotiating(3)>).",
    .see_also = "nbd_opt_go(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_negotiating(3) nbd_aio_is_ready(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_abort",
    .ret = RET_ERR,
    .permitted = ST_OPT,
    .version = "1.4",
    .summary = "end negotiation and close the connection",
    .description =
      "Queue the C<NBD_OPT_ABORT> request of L<nbd_opt_abort(3)> and "
      "return at once, without waiting for the server.  The "
      "program's event loop then drives the handle "
      "(L<nbd_aio_notify_read(3)>, L<nbd_aio_notify_write(3)> or "
      "L<nbd_poll(3)>) until L<nbd_aio_is_connecting(3)> becomes "
      "false, by which time the connection has been closed and "
      "L<nbd_aio_is_closed(3)> is true.\n\n"
      "Unlike the other C<nbd_aio_opt_*> calls this one takes no "
      "completion callback: ending the session cannot usefully fail "
      "from the client's point of view.  A return of -1 means the "
      "request was not queued, for instance because the handle is "
      "not negotiating.",
    .see_also = "nbd_opt_abort(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_closed(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_starttls",
    AIO_OPT_CALL,
    .version = "1.16",
    .summary = "request the server to initiate TLS",
    .description =
      "Start the TLS upgrade described in L<nbd_opt_starttls(3)> and "
      "return immediately.  " AIO_OPT_NOTE "  A server that declines "
      "TLS completes the request with C<ENOTSUP>.  Whether TLS ended up "
      "active can be checked with L<nbd_get_tls_negotiated(3)>.",
    .see_also = "nbd_opt_starttls(3) nbd_get_tls_negotiated(3) "
                "nbd_aio_is_connecting(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_extended_headers",
    AIO_OPT_CALL,
    .version = "1.18",
    .summary = "request the server to enable extended headers",
    .description =
      "Asynchronous counterpart of L<nbd_opt_extended_headers(3)>.  "
      AIO_OPT_NOTE "  A refusal completes the request with C<ENOTSUP>.  "
      "Use L<nbd_get_extended_headers_negotiated(3)> to see the outcome.",
    .see_also = "nbd_opt_extended_headers(3) "
                "nbd_get_extended_headers_negotiated(3) "
                "nbd_aio_is_connecting(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_structured_reply",
    AIO_OPT_CALL,
    .version = "1.16",
    .summary = "request the server to enable structured replies",
    .description =
      "Asynchronous counterpart of L<nbd_opt_structured_reply(3)>.  "
      AIO_OPT_NOTE "  A refusal completes the request with C<ENOTSUP>.  "
      "The outcome is available from "
      "L<nbd_get_structured_replies_negotiated(3)>.",
    .see_also = "nbd_opt_structured_reply(3) "
                "nbd_get_structured_replies_negotiated(3) "
                "nbd_aio_is_connecting(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_list",
    .args = { A_CLOSURE ("list") },
    AIO_OPT_CALL,
    .version = "1.4",
    .summary = "request the server to list all exports during negotiation",
    .description =
      "Queue the export listing of L<nbd_opt_list(3)> and return without "
      "waiting.  The C<list> callback is called for every export as the "
      "replies arrive.  " AIO_OPT_NOTE "  " AIO_OPT_ONLY_ERROR_NOTE,
    .see_also = "nbd_opt_list(3) nbd_aio_is_connecting(3) "
                "nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_info",
    AIO_OPT_CALL,
    .version = "1.4",
    .summary = "request the server for information about an export",
    .description =
      "Queue the C<NBD_OPT_INFO> request of L<nbd_opt_info(3)> and return "
      "immediately.  " AIO_OPT_NOTE "  After success the export details "
      "can be queried as usual.",
    .see_also = "nbd_opt_info(3) nbd_aio_is_connecting(3) "
                "nbd_get_size(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_list_meta_context",
    .args = { A_CLOSURE ("context") },
    AIO_OPT_CALL,
    .version = "1.6",
    .summary = "list available meta contexts, using implicit query list",
    .description =
      "Non-blocking form of L<nbd_opt_list_meta_context(3)>.  Each reply "
      "is handed to the C<context> callback as it arrives.  " AIO_OPT_NOTE
      "  " AIO_OPT_ONLY_ERROR_NOTE,
    .see_also = "nbd_opt_list_meta_context(3) nbd_aio_is_connecting(3) "
                "nbd_add_meta_context(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_list_meta_context_queries",
    .args = { A_STRING_LIST ("queries"), A_CLOSURE ("context") },
    AIO_OPT_CALL,
    .version = "1.16",
    .summary = "list available meta contexts, using explicit query list",
    .description =
      "Non-blocking form of L<nbd_opt_list_meta_context_queries(3)>: the "
      "names in C<queries> are sent and each matching context reported by "
      "the server is passed to C<context>.  " AIO_OPT_NOTE,
    .see_also = "nbd_opt_list_meta_context_queries(3) "
                "nbd_aio_is_connecting(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_set_meta_context",
    .args = { A_CLOSURE ("context") },
    AIO_OPT_CALL,
    .version = "1.16",
    .summary = "select specific meta contexts, using implicit query list",
    .description =
      "Non-blocking form of L<nbd_opt_set_meta_context(3)>.  Every "
      "context the server selects is passed to C<context>.  " AIO_OPT_NOTE,
    .see_also = "nbd_opt_set_meta_context(3) nbd_aio_is_connecting(3) "
                "nbd_can_meta_context(3) nbd_set_opt_mode(3)",
  },

  {
    .name = "aio_opt_set_meta_context_queries",
    .args = { A_STRING_LIST ("queries"), A_CLOSURE ("context") },
    AIO_OPT_CALL,
    .version = "1.16",
    .summary = "select specific meta contexts, using explicit query list",
    .description =
      "Non-blocking form of L<nbd_opt_set_meta_context_queries(3)>, "
      "requesting the names listed in C<queries>.  Selected contexts go "
      "to the C<context> callback.  " AIO_OPT_NOTE,
    .see_also = "nbd_opt_set_meta_context_queries(3) "
                "nbd_aio_is_connecting(3) nbd_set_opt_mode(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Disconnecting. */

  {
    .name = "shutdown",
    .optargs = { O_FLAGS ("flags", "shutdown", 0) },
    .ret = RET_ERR,
    .permitted = ST_OPT | ST_CONNECTED,
    .version = "1.0",
    .summary = "disconnect from the NBD server",
    .description =
      "Disconnect cleanly and wait until the connection is closed.  If "
      "the handle is ready for commands, a C<NBD_CMD_DISC> is sent (see "
      "L<nbd_aio_disconnect(3)>); if it is still in option negotiation, "
      "the negotiation is aborted as with L<nbd_aio_opt_abort(3)>.  A "
      "clean disconnect is a courtesy to the server; for the client it is "
      "no better than simply calling L<nbd_close(3)>.\n\n"
      "C<flags> may contain:\n\n"
      "- C<LIBNBD_SHUTDOWN_ABANDON_PENDING>: commands queued but not yet "
      "sent to the server (see L<nbd_aio_in_flight(3)>) are dropped "
      "instead of being transmitted before the disconnect request.\n\n"
      "Unknown bits are rejected with C<EINVAL>; C<LIBNBD_SHUTDOWN_MASK> "
      "holds every flag this version understands."
      "\n\n"
      "The call waits until the server has closed the connection (or "
      "it breaks), driving the handle meanwhile so that replies to "
      "commands still in flight are processed and their completion "
      "callbacks run.  It then returns 0, and "
      "L<nbd_aio_is_closed(3)> is true.  Commands issued afterwards "
      "fail with C<EINVAL>.  Called from a callback of the same "
      "handle it fails with C<EDEADLK>; a program with its own event "
      "loop uses L<nbd_aio_disconnect(3)> instead, which only queues "
      "the request.",
    .see_also = "nbd_aio_disconnect(3) nbd_aio_opt_abort(3) nbd_close(3) "
                "nbd_aio_in_flight(3) nbd_create(3)",
  },

  {
    .name = "aio_disconnect",
    .optargs = { O_FLAGS ("flags", "cmd_flags", NO_FLAGS) },
    .ret = RET_ERR,
    .permitted = ST_CONNECTED,
    .version = "1.0",
    .summary = "disconnect from the NBD server",
    .description =
      "Queue an C<NBD_CMD_DISC> request and return.  The server does not "
      "answer this command; instead wait for L<nbd_aio_is_closed(3)> to "
      "become true.  After this call no further commands can be issued "
      "on the handle.\n\n"
      "Commands still in flight are not cancelled, but the protocol "
      "recommends disconnecting only once L<nbd_aio_in_flight(3)> "
      "reaches zero so that the server can shut down cleanly.  C<flags> "
      "is reserved and must be 0 (C<EINVAL> otherwise).  The blocking "
      "L<nbd_shutdown(3)> uses this call when appropriate."
      "\n\n"
      "Once the request is queued, L<nbd_aio_is_closed(3)> becomes "
      "true after the request has been written and the server has "
      "closed its end.  Commands issued afterwards fail with "
      "C<EINVAL>, and a second disconnect request fails with "
      "C<EINVAL> too.  Replies to commands still in flight may still "
      "be received while the connection shuts down; commands that "
      "get no reply complete with an error.  Compared with "
      "L<nbd_shutdown(3)>, which waits, this call only queues the "
      "request, so a program's event loop must keep driving the "
      "handle until it is closed.",
    .see_also = "nbd_shutdown(3) nbd_aio_is_closed(3) "
                "nbd_aio_in_flight(3) nbd_create(3)",
  },

  /* ---------------------------------------------------------------- */
  /* Main-loop integration. */

  {
    .name = "poll",
    .args = { A_INT ("timeout") },
    .ret = RET_INT,
    .permitted = 0,
    .version = "1.0",
    .summary = "poll the handle once",
    .description =
      "Wait with L<poll(2)> for the handle's socket to become ready in "
      "the direction given by L<nbd_aio_get_direction(3)>, then let the "
      "state machine handle the event.  C<timeout> is in milliseconds, "
      "with -1 meaning no limit.  The result is 1 if the state machine "
      "made progress and 0 if the timeout expired first.\n\n"
      "Be careful with an infinite timeout: when nothing is pending, for "
      "example a connected handle with no commands in flight, the call "
      "never returns.  The blocking calls of the library are built on "
      "this function; applications with their own event loop should "
      "rather use L<nbd_aio_get_fd(3)> and the notify calls."
      "\n\n"
      "It returns -1 with C<EDEADLK> from a callback of the same "
      "handle, with C<EINVAL> when there is nothing to wait for (the "
      "handle is not connected, or is closed or dead), and with the "
      "connection's error when servicing the socket breaks the "
      "connection.  If another thread is already waiting on the "
      "handle, for instance inside a blocking call, this call waits "
      "for that thread to make progress rather than reading the "
      "socket itself.",
    .see_also = "nbd_poll2(3) nbd_aio_get_fd(3) nbd_aio_get_direction(3) "
                "nbd_aio_notify_read(3) nbd_aio_notify_write(3)",
  },

  {
    .name = "poll2",
    .args = { A_INT ("fd"), A_INT ("timeout") },
    .ret = RET_INT,
    .permitted = 0,
    .version = "1.16",
    .summary = "poll the handle once, with fd",
    .description =
      "Like L<nbd_poll(3)>, but additionally watch the caller's file "
      "descriptor C<fd> for readability, which lets another thread wake a "
      "blocked poller (for instance through a pipe or eventfd).  Pass -1 "
      "as C<fd> to watch nothing extra, which makes the call behave "
      "exactly like L<nbd_poll(3)>.\n\n"
      "C<timeout> is in milliseconds, or -1 to wait indefinitely.  The "
      "return value is 0 on timeout and 1 if the handle made progress or "
      "C<fd> became readable; reading from C<fd> is left to the caller."
      "\n\n"
      "The call takes part in the handle's waiting like a blocking "
      "call: if another thread is already waiting on the handle, "
      "this one waits for that thread to make progress instead of "
      "polling the socket itself.  It fails with C<EDEADLK> from a "
      "callback of the same handle, and with C<EINVAL> when there is "
      "nothing to wait for (the handle has no connection, or it is "
      "closed or dead).  A typical use is a thread that runs the "
      "handle's event loop and must also react to requests from "
      "other threads, which write a byte to a pipe whose read end is "
      "C<fd>.",
    .see_also = "nbd_poll(3) nbd_aio_get_fd(3) nbd_aio_get_direction(3)",
  },

  {
    .name = "aio_get_fd",
    .ret = RET_FD,
    .permitted = 0,
    .version = "1.0",
    .summary = "return file descriptor associated with this connection",
    .description =
      "Return the socket the handle uses to talk to the server, so that "
      "an external event loop can wait on it and then call "
      "L<nbd_aio_notify_read(3)> or L<nbd_aio_notify_write(3)>; which "
      "events to wait for is given by L<nbd_aio_get_direction(3)>.  The "
      "descriptor still belongs to the handle: do not read, write, close "
      "or otherwise modify it.\n\n"
      "The call fails if no connection has been started yet."
      "\n\n"
      "The descriptor exists from the moment a connect call has "
      "started the connection (for L<nbd_connect_command(3)> and "
      "socket activation, once the child has been started); before "
      "that the call fails with C<EINVAL>.  It stays the same for "
      "the whole connection, so it only needs to be registered with "
      "C<epoll> or a main loop once; but a TCP connection that falls "
      "back to another address gets a new descriptor, so fetch it "
      "again after L<nbd_aio_is_connecting(3)> becomes false.\n\n"
      "A typical loop waits on it like this:\n\n"
      "  struct pollfd pfd = { .fd = nbd_aio_get_fd (nbd) };\n"
      "  unsigned dir = nbd_aio_get_direction (nbd);\n"
      "  pfd.events = (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |\n"
      "               (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);\n"
      "  if (poll (&pfd, 1, -1) > 0) {\n"
      "    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))\n"
      "      nbd_aio_notify_read (nbd);\n"
      "    else if (pfd.revents & POLLOUT)\n"
      "      nbd_aio_notify_write (nbd);\n"
      "  }",
    .see_also = "nbd_aio_get_direction(3) nbd_aio_notify_read(3) "
                "nbd_aio_notify_write(3) nbd_poll(3)",
  },

  {
    .name = "aio_get_direction",
    .ret = RET_UINT,
    .permitted = 0,
    .version = "1.0",
    .summary = "return the read or write direction",
    .description =
      "Report which socket events the state machine is waiting for:\n\n"
      "- 0: none; polling the socket would not help and progress must "
      "come from another call such as one of the connect calls;\n"
      "- C<LIBNBD_AIO_DIRECTION_READ>: wait for C<POLLIN> (or "
      "C<POLLHUP>) and then call L<nbd_aio_notify_read(3)>;\n"
      "- C<LIBNBD_AIO_DIRECTION_WRITE>: wait for C<POLLOUT> and then call "
      "L<nbd_aio_notify_write(3)>;\n"
      "- C<LIBNBD_AIO_DIRECTION_BOTH>: wait for either; if both are "
      "signalled, prefer notifying the read, as handling a reply may "
      "change what needs writing.\n\n"
      "A ready handle reports the read direction even with no commands "
      "in flight, in which case a single-threaded program should not poll "
      "until it has issued a command.  In multi-threaded programs the "
      "direction can change when another thread submits a command, so the "
      "polling thread needs a way to be woken (see L<nbd_poll2(3)>).",
    .see_also = "nbd_aio_get_fd(3) nbd_aio_notify_read(3) "
                "nbd_aio_notify_write(3) nbd_aio_in_flight(3) nbd_poll2(3)",
    .cannot_fail = true,
  },

  {
    .name = "aio_notify_read",
    .ret = RET_ERR,
    .permitted = 0,
    .version = "1.0",
    .summary = "notify that the connection is readable",
    .description =
      "For programs with their own event loop: tell the library that "
      "the socket from L<nbd_aio_get_fd(3)> is readable (or has hung "
      "up).  The library then reads whatever has arrived, advances "
      "the handshake or processes replies, runs the completion and "
      "chunk callbacks of commands that finished.  It never waits "
      "for more data than "
      "is already there.\n\n"
      "Call it after C<poll>, C<epoll> or a similar mechanism "
      "reported the descriptor readable while "
      "L<nbd_aio_get_direction(3)> included "
      "C<LIBNBD_AIO_DIRECTION_READ>.  A spurious call, when nothing "
      "is actually readable, is harmless.\n\n"
      "It fails with C<EDEADLK> when called from a callback of the "
      "same handle.  Otherwise -1 means the connection broke while "
      "it was being serviced (a read error, the server hanging up, "
      "or a protocol violation); the handle is then dead "
      "(L<nbd_aio_is_dead(3)>) and the commands still in flight have "
      "been failed.",
    .see_also = "nbd_aio_notify_write(3) nbd_aio_get_fd(3) "
                "nbd_aio_get_direction(3)",
  },

  {
    .name = "aio_notify_write",
    .ret = RET_ERR,
    .permitted = 0,
    .version = "1.0",
    .summary = "notify that the connection is writable",
    .description =
      "For programs with their own event loop: tell the library that "
      "the socket from L<nbd_aio_get_fd(3)> can accept more data.  "
      "The library then writes as much of the pending requests (or "
      "handshake data) as the socket takes, and carries on with "
      "whatever follows, without waiting.\n\n"
      "Call it only after the descriptor was reported writable while "
      "L<nbd_aio_get_direction(3)> included "
      "C<LIBNBD_AIO_DIRECTION_WRITE>: if the handle is not waiting "
      "to write the call fails with C<EINVAL> and changes nothing.  "
      "From a callback of the same handle it fails with C<EDEADLK>.  "
      "A failure while writing makes the handle dead "
      "(L<nbd_aio_is_dead(3)>) and fails the commands in flight.",
    .see_also = "nbd_aio_notify_read(3) nbd_aio_get_fd(3) "
                "nbd_aio_get_direction(3)",
  },

  /* ---------------------------------------------------------------- */
  /* State queries. */

  STATE_QUERY ("aio_is_created", "1.0",
               "check if the connection has just been created",
               "Return true while the handle is in its initial state: "
               "made by L<nbd_create(3)> and not yet connecting.  This is "
               "the only state in which the connect calls and most "
               "settings (such as L<nbd_set_tls(3)> or "
               "L<nbd_set_opt_mode(3)>) are accepted.\n\n"
               "Like the other C<nbd_aio_is_*> calls it only reads the "
               "state, never blocks and cannot fail, so it may be used "
               "from any thread or callback.  Exactly one of the state "
               "queries is true at any moment.",
               "nbd_aio_is_connecting(3) nbd_create(3) "
               "nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_connecting", "1.0",
               "check if the connecting is in progress",
               "Return true while a connection attempt or handshake is "
               "under way: from the moment a connect call (or its "
               "C<nbd_aio_connect_*> form) has started, through the "
               "socket connection, the newstyle or oldstyle greeting, "
               "the option exchange and any TLS handshake.  In option "
               "mode it is also true while an C<nbd_opt_*> or "
               "C<nbd_aio_opt_*> request is waiting for the server's "
               "answer.\n\n"
               "A program driving the handshake with its own event loop "
               "keeps calling L<nbd_aio_notify_read(3)> or "
               "L<nbd_aio_notify_write(3)> (as L<nbd_aio_get_direction(3)> "
               "asks) while this is true.  It becomes false when the "
               "handle reaches the negotiating, ready, closed or dead "
               "state; the last one means the attempt failed, and "
               "L<nbd_get_error(3)> after the failing call says why.",
               "nbd_aio_is_negotiating(3) nbd_aio_is_ready(3) "
               "nbd_aio_connect(3) nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_negotiating", "1.4",
               "check if connection is ready to send handshake option",
               "Return true when the handle is in option mode "
               "(L<nbd_set_opt_mode(3)>) and idle in the negotiation "
               "phase, meaning the next step is up to the client: an "
               "C<nbd_opt_*> or C<nbd_aio_opt_*> call.\n\n"
               "The handle gets here when a connect call finishes the "
               "greeting in option mode, and comes back here after each "
               "option request completes, including a failed "
               "L<nbd_opt_go(3)>, so that another export or setting can "
               "be tried.  It leaves the state with a successful "
               "L<nbd_opt_go(3)> (to ready) or with L<nbd_opt_abort(3)> "
               "(to closed).  Without option mode, or with an oldstyle "
               "server, the handle never enters it.",
               "nbd_set_opt_mode(3) nbd_opt_go(3) "
               "nbd_aio_is_connecting(3) nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_ready", "1.0",
               "check if the connection is in the ready state",
               "Return true when the handshake is over and the connection "
               "is idle and able to accept new commands: nothing is "
               "partially sent or being received.  Note that commands may "
               "still be waiting for their replies (see "
               "L<nbd_aio_in_flight(3)>).",
               "nbd_aio_is_processing(3) nbd_aio_is_connecting(3) "
               "nbd_aio_in_flight(3) nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_processing", "1.0",
               "check if the connection is processing a command",
               "Return true when the connection is established and is part "
               "way through transmitting a request or reading a reply.  "
               "Together with L<nbd_aio_is_ready(3)> this covers every "
               "state in which commands may be issued.",
               "nbd_aio_is_ready(3) nbd_aio_in_flight(3) "
               "nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_dead", "1.0",
               "check if the connection is dead",
               "Return true if the connection failed irrecoverably: the "
               "socket connection or handshake failed, the server broke "
               "the protocol or hung up, a read or write on the socket "
               "failed, or the connection was ended by a timeout or by "
               "L<nbd_ext_cancel(3)> (see L<libnbd-ext(3)>).  Every command "
               "still in flight is then completed with an error, so its "
               "completion callback sees a non-zero C<*error>.\n\n"
               "The reason is reported by the call that noticed the "
               "failure, through L<nbd_get_error(3)> and "
               "L<nbd_get_errno(3)>; later calls that need a connection "
               "fail with C<EINVAL>.  A dead handle cannot be reconnected: "
               "close it with L<nbd_close(3)> and create a new one.",
               "nbd_aio_is_closed(3) nbd_close(3) nbd_get_error(3) "
               "nbd_connection_state(3)"),

  STATE_QUERY ("aio_is_closed", "1.0",
               "check if the connection is closed",
               "Return true once the connection has been shut down in an "
               "orderly way: the client asked to end the session with "
               "L<nbd_shutdown(3)> or L<nbd_aio_disconnect(3)> (which send "
               "C<NBD_CMD_DISC>) or with L<nbd_opt_abort(3)> or "
               "L<nbd_aio_opt_abort(3)> (C<NBD_OPT_ABORT>), and the "
               "socket has been closed.\n\n"
               "Unlike the dead state this is not a failure.  Calls that "
               "need a connection fail with C<EINVAL> from now on; the "
               "handle's settings and counters (such as "
               "L<nbd_stats_bytes_sent(3)>) can still be read, and the "
               "handle is finally released with L<nbd_close(3)>.",
               "nbd_aio_disconnect(3) nbd_shutdown(3) nbd_aio_is_dead(3) "
               "nbd_close(3)"),

  {
    .name = "connection_state",
    .ret = RET_STATIC_STRING,
    .permitted = 0,
    .version = "1.0",
    .summary = "return string describing the state of the connection",
    .description =
      "Return a short text describing where the handle's state "
      "machine is, meant for debug output and error messages.  The "
      "text starts with an upper case state name (C<START> before "
      "connecting, "
      "C<CONNECTING>, C<MAGIC> during the handshake, C<NEGOTIATING>, "
      "C<READY>, C<PROCESSING>, C<CLOSED> or C<DEAD>), followed by a "
      "colon and a few words of explanation.\n\n"
      "The string is static, owned by the library, and must not be "
      "freed.  Its wording is not a stable interface and may differ "
      "from other libnbd implementations or versions: programs that "
      "need to act on the state should test it with the "
      "C<nbd_aio_is_*> calls instead.",
    .see_also = "nbd_aio_is_created(3) nbd_aio_is_connecting(3) "
                "nbd_aio_is_ready(3) nbd_aio_is_dead(3)",
  },

  {
    .name = "get_tls_negotiated",
    .ret = RET_BOOL,
    .permitted = ST_NEGOTIATING | ST_CONNECTED | ST_CLOSED,
    .version = "1.2",
    .summary = "find out if TLS was negotiated on a connection",
    .description =
      "Return true if the connection to the server is protected by TLS.  "
      "This is chiefly of interest with C<LIBNBD_TLS_ALLOW> (see "
      "L<nbd_set_tls(3)>), where TLS is attempted but the library carries "
      "on unencrypted if the server does not offer it.  With "
      "C<LIBNBD_TLS_REQUIRE> the connection fails rather than proceed "
      "without TLS, and with C<LIBNBD_TLS_DISABLE> it is never tried "
      "(unless requested manually with L<nbd_opt_starttls(3)>)."
      "\n\n"
      "Before the handshake has reached the point where TLS would be "
      "negotiated the result is false.  For a security decision do "
      "not rely on checking this after the fact: set "
      "C<LIBNBD_TLS_REQUIRE> so that an unencrypted connection is "
      "never made at all.  Statistics such as "
      "L<nbd_stats_bytes_sent(3)> count the data before encryption.",
    .see_also = "nbd_set_tls(3) nbd_get_tls(3) nbd_opt_starttls(3)",
  },

  { .name = NULL }
};
