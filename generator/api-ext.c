/* Extensions beyond upstream libnbd: timeouts, cancellation and the
 * event-loop deadline.  Declared in <libnbd-ext.h> (never in <libnbd.h>),
 * exported under their own version node LIBNBD_EXT_1.
 */
#include "api.h"

#define EXT(...) .extension = true, .version = "EXT_1", __VA_ARGS__

#define DEAD_NOTE \
  "NBD cannot cancel a single command, and a late reply must never land " \
  "in a buffer its owner has given up, so it is the whole connection " \
  "that ends: the handle becomes dead, every command still in flight " \
  "fails with the same errno (its completion callback runs and its " \
  "closures are freed as for any lost connection), and every blocking " \
  "call waiting on the handle returns -1 with it."

const struct call api_ext_calls[] = {
  {
    .name = "ext_set_request_timeout",
    .args = { A_UINT32 ("ms") },
    .ret = RET_ERR,
    EXT (.summary = "bound how long a command may wait for its reply"),
    .description =
      "Give every command a deadline: if its reply has not fully arrived "
      "C<ms> milliseconds after it was issued, the connection is ended "
      "with C<ETIMEDOUT>. 0 (the default) means no deadline.\n\n"
      DEAD_NOTE "\n\n"
      "Commands already in flight get the new timeout counted from now. "
      "The default can also be set without changing a program: the "
      "environment variable C<LIBNBD_REQUEST_TIMEOUT> (seconds, decimals "
      "allowed) is read by L<nbd_create(3)>, and the URI query parameter "
      "C<request-timeout=SECONDS> is applied by L<nbd_connect_uri(3)>. "
      "Blocking calls, L<nbd_poll(3)> and L<nbd_poll2(3)> honour the "
      "deadline by themselves; an event loop asks "
      "L<nbd_ext_aio_get_timeout(3)> when to call "
      "L<nbd_ext_aio_notify_timeout(3)>.",
    .see_also = "nbd_ext_get_request_timeout(3) nbd_ext_set_connect_timeout(3) "
      "nbd_ext_cancel(3) libnbd-ext(3)",
  },
  {
    .name = "ext_get_request_timeout",
    .ret = RET_INT64,
    EXT (.summary = "return the request timeout"),
    .description =
      "Return the per-command timeout of the handle in milliseconds, "
      "or 0 when commands may wait for their replies indefinitely "
      "(the default).  The value is the one last given to "
      "L<nbd_ext_set_request_timeout(3)>, or the one taken from the "
      "environment variable C<LIBNBD_REQUEST_TIMEOUT> by "
      "L<nbd_create(3)>, or from a URI's C<request-timeout> "
      "parameter by L<nbd_connect_uri(3)>.\n\n"
      "A program can read it to report the effective setting, or to "
      "restore it after changing it for a single slow operation.  "
      "This call is an extension of this library; a program detects "
      "it at compile time with "
      "C<LIBNBD_HAVE_NBD_EXT_GET_REQUEST_TIMEOUT> after including "
      "C<libnbd-ext.h>.",
    .see_also = "nbd_ext_set_request_timeout(3) libnbd-ext(3)",
    .cannot_fail = true,
  },
  {
    .name = "ext_set_connect_timeout",
    .args = { A_UINT32 ("ms") },
    .ret = RET_ERR,
    EXT (.summary = "bound how long connecting may take, and retry meanwhile"),
    .description =
      "Bound each connect call: the connection, the handshake and any TLS "
      "negotiation together must finish within C<ms> milliseconds, or the "
      "call fails with C<ETIMEDOUT> and the handle is dead. 0 (the "
      "default) means no bound.\n\n"
      "While the timeout runs, the blocking L<nbd_connect_unix(3)>, "
      "L<nbd_connect_tcp(3)>, L<nbd_connect_vsock(3)> and "
      "L<nbd_connect_uri(3)> try again when the server is not there yet "
      "(C<ECONNREFUSED>, or C<ENOENT> for a Unix socket that does not "
      "exist yet), waiting 10 ms, then twice as long each time up to 1 s. "
      "So a program may start a server and connect at once, without a "
      "loop of its own. Subprocess connections "
      "(L<nbd_connect_command(3)>, socket activation) are not retried.\n\n"
      "The timeout starts when the library first waits for the "
      "connection. The environment variable C<LIBNBD_CONNECT_TIMEOUT> "
      "(seconds, decimals allowed; read by L<nbd_create(3)>) and the URI "
      "query parameter C<connect-timeout=SECONDS> set it without code "
      "changes, e.g.:\n\n"
      "  LIBNBD_CONNECT_TIMEOUT=5 nbdinfo nbd://server.example.com",
    .see_also = "nbd_ext_get_connect_timeout(3) nbd_ext_set_request_timeout(3) "
      "nbd_ext_cancel(3) libnbd-ext(3)",
  },
  {
    .name = "ext_get_connect_timeout",
    .ret = RET_INT64,
    EXT (.summary = "return the connect timeout"),
    .description =
      "Return the bound on connecting, in milliseconds, or 0 when "
      "connecting may take as long as the operating system allows "
      "(the default).  The value comes from the last "
      "L<nbd_ext_set_connect_timeout(3)>, or from the environment "
      "variable C<LIBNBD_CONNECT_TIMEOUT> read by L<nbd_create(3)>, "
      "or from a URI's C<connect-timeout> parameter applied by "
      "L<nbd_connect_uri(3)>.\n\n"
      "While it is non-zero the blocking connect calls also retry a "
      "server that is not listening yet, until the time is up (see "
      "L<nbd_ext_set_connect_timeout(3)>).  This call is an "
      "extension of this library; a program detects it at compile "
      "time with C<LIBNBD_HAVE_NBD_EXT_GET_CONNECT_TIMEOUT> after "
      "including C<libnbd-ext.h>.",
    .see_also = "nbd_ext_set_connect_timeout(3) libnbd-ext(3)",
    .cannot_fail = true,
  },
  {
    .name = "ext_cancel",
    .ret = RET_ERR,
    EXT (.summary = "cancel every call blocked on the handle"),
    .description =
      "Make every call blocked on C<h> (blocking commands, connects, "
      "options, L<nbd_poll(3)>) return -1 with C<ECANCELED> within "
      "milliseconds, and end the connection.\n\n"
      DEAD_NOTE "\n\n"
      "This call may be made from any thread and from a signal handler: "
      "it takes no lock and allocates nothing (it sets a flag, writes "
      "to a descriptor the waiting thread polls and shuts the socket "
      "down with L<shutdown(2)>). For the same reason a NULL handle "
      "returns -1 without setting an error.\n\n"
      "A program that polls L<nbd_aio_get_fd(3)> itself is woken too: "
      "the shut-down socket reports readable and writable, and the "
      "program's next L<nbd_aio_notify_read(3)> or "
      "L<nbd_aio_notify_write(3)> fails with C<ECANCELED> and ends the "
      "connection. If nothing is waiting, the server sees the "
      "connection close at once, and the next call that drives the "
      "handle (a command, L<nbd_shutdown(3)>, a poll, a notify) fails "
      "with C<ECANCELED>, as do the commands in flight. A cancel made "
      "before a connect call makes that connect fail the same way. The "
      "call leaves C<errno> as it was, and in a child process after "
      "L<fork(2)> it does not shut down the socket the child shares with "
      "its parent.",
    .see_also = "nbd_ext_set_request_timeout(3) libnbd-ext(3)",
    .unlocked = true,
    .handwritten = true,
    .signal_safe = true,
  },
  {
    .name = "ext_aio_get_timeout",
    .ret = RET_INT64,
    EXT (.summary = "milliseconds until the library must be called again"),
    .description =
      "For programs with their own event loop: return how many "
      "milliseconds may pass before L<nbd_ext_aio_notify_timeout(3)> must "
      "be called, -1 if there is no deadline (no timeout set, or nothing "
      "is waiting), 0 if a deadline has passed or a cancel is pending. "
      "Use it as the upper bound of the loop's wait, as with "
      "C<curl_multi_timeout> or C<ares_timeout>."
      "\n\n"
      "The value is rounded up to whole milliseconds, so a loop that "
      "waits exactly that long does not wake up just before the "
      "deadline and spin.  It changes whenever a command is issued "
      "or completes, or a timeout setting changes, so ask again "
      "before each wait rather than keeping an old value.  The call "
      "never fails; see the example in "
      "L<nbd_ext_aio_notify_timeout(3)>.  It is an extension of this "
      "library, declared in C<libnbd-ext.h>.",
    .see_also = "nbd_ext_aio_notify_timeout(3) nbd_ext_set_request_timeout(3) "
      "nbd_aio_get_fd(3) libnbd-ext(3)",
    .cannot_fail = true,
  },
  {
    .name = "ext_aio_notify_timeout",
    .ret = RET_ERR,
    EXT (.summary = "act on passed deadlines"),
    .description =
      "For programs with their own event loop: check the handle's "
      "deadlines.  If a request timeout "
      "(L<nbd_ext_set_request_timeout(3)>) or connect timeout "
      "(L<nbd_ext_set_connect_timeout(3)>) has passed, or "
      "L<nbd_ext_cancel(3)> was called, the connection is ended and "
      "the call returns -1 with C<ETIMEDOUT> or C<ECANCELED>; "
      "otherwise it returns 0 and does nothing.\n\n"
      "Ending the connection makes the handle dead and fails every "
      "command still in flight with the same error, through their "
      "completion callbacks.  Calling it early, or on a handle "
      "without any timeout, is harmless, so the loop can simply call "
      "it whenever its wait, bounded by "
      "L<nbd_ext_aio_get_timeout(3)>, returns:\n\n"
      "  int64_t ms = nbd_ext_aio_get_timeout (nbd);\n"
      "  int r = poll (fds, nfds, ms > INT_MAX ? INT_MAX : (int) ms);\n"
      "  ...\n"
      "  if (nbd_ext_aio_notify_timeout (nbd) == -1) {\n"
      "    /* the connection has ended: nbd_get_errno () says why */\n"
      "  }\n\n"
      "Blocking calls and L<nbd_poll(3)> check the deadlines "
      "themselves and need no call to this function.",
    .see_also = "nbd_ext_aio_get_timeout(3) libnbd-ext(3)",
  },
  { .name = NULL },
};
