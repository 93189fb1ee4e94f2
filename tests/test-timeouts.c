/* Timeouts, cancellation and connect retry (libnbd-ext(3)), against real
 * and deliberately stalled servers:
 *
 *  - a server that accepts and never sends the greeting: the connect
 *    timeout ends the connect with ETIMEDOUT (environment, URI, call);
 *  - a server that never answers a command (nbdkit's delay filter): the
 *    request timeout fails it with ETIMEDOUT, the handle is dead, every
 *    command in flight fails with ETIMEDOUT and its closures run once;
 *  - a server answering after a delay shorter than the timeout: success;
 *  - a unix socket that appears 1 s after the connect call: the connect
 *    retries and succeeds;
 *  - nbd_ext_cancel from another thread and from a SIGALRM handler during
 *    a blocking read, and of a program blocked in its own poll(2) on the
 *    socket: ECANCELED within milliseconds;
 *  - nbd_ext_aio_get_timeout / nbd_ext_aio_notify_timeout for event loops;
 *  - many threads with timeouts on one handle.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd-ext.h>

#include "hs-helpers.h"

#define PROG "test-timeouts"

static double
now (void)
{
  return monotonic_seconds ();
}

/* ---- A server that accepts and then says nothing ---- */

struct stalled {
  char dir[64];
  char path[128];
  int lfd;
};

static void
stalled_start (struct stalled *s)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  strcpy (s->dir, "/tmp/libnbd-stall-XXXXXX");
  REQUIRE (mkdtemp (s->dir) != NULL, "mkdtemp");
  snprintf (s->path, sizeof s->path, "%s/sock", s->dir);
  strcpy (addr.sun_path, s->path);
  s->lfd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE (s->lfd >= 0, "socket");
  REQUIRE (bind (s->lfd, (struct sockaddr *) &addr, sizeof addr) == 0, "bind");
  /* The kernel completes connects into the backlog: nobody ever accepts
   * or writes, which is all a stalled server needs to do.
   */
  REQUIRE (listen (s->lfd, 16) == 0, "listen");
}

static void
stalled_stop (struct stalled *s)
{
  close (s->lfd);
  unlink (s->path);
  rmdir (s->dir);
}

/* ---- Connect timeout ---- */

static void
test_connect_timeout (void)
{
  struct stalled s;
  struct nbd_handle *h;
  double t0;
  char uri[256];

  stalled_start (&s);

  check_case = "connect timeout (call)";
  h = new_handle ();
  CHECK_EQ (nbd_ext_get_connect_timeout (h), 0);
  CHECK_EQ (nbd_ext_set_connect_timeout (h, 300), 0);
  CHECK_EQ (nbd_ext_get_connect_timeout (h), 300);
  t0 = now ();
  CHECK_FAILS (nbd_connect_unix (h, s.path), ETIMEDOUT, "nbd_connect_unix", NULL);
  CHECK (now () - t0 >= 0.25 && now () - t0 < 3, "took %.2f s", now () - t0);
  CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  nbd_close (h);

  check_case = "connect timeout (environment)";
  setenv ("LIBNBD_CONNECT_TIMEOUT", "0.3", 1);
  h = new_handle ();
  unsetenv ("LIBNBD_CONNECT_TIMEOUT");
  CHECK_EQ (nbd_ext_get_connect_timeout (h), 300);
  t0 = now ();
  CHECK_FAILS (nbd_connect_unix (h, s.path), ETIMEDOUT, "nbd_connect_unix", NULL);
  CHECK (now () - t0 < 3, "took %.2f s", now () - t0);
  nbd_close (h);

  check_case = "connect timeout (malformed environment ignored)";
  setenv ("LIBNBD_CONNECT_TIMEOUT", "soon", 1);
  h = new_handle ();
  unsetenv ("LIBNBD_CONNECT_TIMEOUT");
  CHECK_EQ (nbd_ext_get_connect_timeout (h), 0);
  nbd_close (h);

  check_case = "connect timeout (URI)";
  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s&connect-timeout=0.3", s.path);
  t0 = now ();
  CHECK_FAILS (nbd_connect_uri (h, uri), ETIMEDOUT, "nbd_connect_uri", NULL);
  CHECK (now () - t0 < 3, "took %.2f s", now () - t0);
  nbd_close (h);

  check_case = "connect timeout (malformed URI)";
  h = new_handle ();
  snprintf (uri, sizeof uri, "nbd+unix:///?socket=%s&connect-timeout=1x", s.path);
  CHECK_FAILS (nbd_connect_uri (h, uri), EINVAL, "nbd_connect_uri", "connect-timeout");
  nbd_close (h);

  check_case = "connect timeout (event loop)";
  h = new_handle ();
  CHECK_EQ (nbd_ext_aio_get_timeout (h), -1);
  CHECK_EQ (nbd_ext_set_connect_timeout (h, 200), 0);
  CHECK_EQ (nbd_aio_connect_unix (h, s.path), 0);
  {
    int64_t ms = nbd_ext_aio_get_timeout (h);
    CHECK (ms > 0 && ms <= 200, "aio_get_timeout: %" PRIi64, ms);
    while (nbd_aio_is_connecting (h) && now () - t0 < 10) {
      ms = nbd_ext_aio_get_timeout (h);
      if (ms == 0)
        nbd_ext_aio_notify_timeout (h);
      else
        usleep (10000);
    }
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);

  stalled_stop (&s);
  check_case = NULL;
}

/* ---- Connect retry: the socket appears later ---- */

static void
test_connect_retry (void)
{
  struct server s;
  struct nbd_handle *h;
  char dir[] = "/tmp/libnbd-late-XXXXXX", sock[128];
  pid_t pid;
  double t0;

  check_case = "connect retry";
  REQUIRE (mkdtemp (dir) != NULL, "mkdtemp");
  snprintf (sock, sizeof sock, "%s/sock", dir);
  pid = fork ();
  REQUIRE (pid >= 0, "fork");
  if (pid == 0) {
    sleep (1);
    execlp ("nbdkit", "nbdkit", "-f", "-U", sock, "memory", "1M", NULL);
    _exit (127);
  }
  h = new_handle ();
  CHECK_EQ (nbd_ext_set_connect_timeout (h, 10000), 0);
  t0 = now ();
  CHECK_EQ (nbd_connect_unix (h, sock), 0);
  CHECK (now () - t0 >= 0.9, "connected after %.2f s, before the server", now () - t0);
  CHECK (nbd_aio_is_ready (h), "state: %s", nbd_connection_state (h));
  nbd_close (h);

  /* Without a timeout nothing is retried. */
  h = new_handle ();
  CHECK_FAILS (nbd_connect_unix (h, "/nonexistent/socket"), ENOENT, "nbd_connect_unix",
               NULL);
  nbd_close (h);

  kill (pid, SIGTERM);
  waitpid (pid, NULL, 0);
  unlink (sock);
  rmdir (dir);
  (void) s;
  check_case = NULL;
}

/* ---- Request timeout ---- */

struct comp { int calls, error, frees; };

static int
comp_cb (void *opaque, int *error)
{
  struct comp *c = opaque;
  c->calls++;
  c->error = *error;
  return 1;
}

static void
comp_free (void *opaque)
{
  struct comp *c = opaque;
  c->frees++;
}

static void
test_request_timeout (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512] = { 0 };
  struct comp c = { 0 };
  double t0;

  check_case = "request timeout";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=5", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_ext_get_request_timeout (h), 0);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_ext_set_request_timeout (h, 300), 0);
    CHECK_EQ (nbd_ext_get_request_timeout (h), 300);
    /* Writes are not delayed: they work. */
    EXPECT_OK (nbd_pwrite (h, buf, sizeof buf, 0, 0));
    CHECK (nbd_aio_pread (h, buf, sizeof buf, 0,
                          (nbd_completion_callback) { .callback = comp_cb,
                                                      .user_data = &c,
                                                      .free = comp_free }, 0) > 0,
           "aio_pread: %s", nbd_get_error ());
    t0 = now ();
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), ETIMEDOUT, "nbd_pread", NULL);
    CHECK (now () - t0 >= 0.2 && now () - t0 < 3, "took %.2f s", now () - t0);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    CHECK_EQ (c.calls, 1);
    CHECK_EQ (c.error, ETIMEDOUT);
    CHECK_EQ (c.frees, 1);
  }
  nbd_close (h);
  server_stop (&s);

  check_case = "reply within the request timeout";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=100ms", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  setenv ("LIBNBD_REQUEST_TIMEOUT", "2", 1);
  h = new_handle ();
  unsetenv ("LIBNBD_REQUEST_TIMEOUT");
  CHECK_EQ (nbd_ext_get_request_timeout (h), 2000);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    for (int i = 0; i < 3; i++)
      EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_shutdown (h, 0));
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* Over TLS (PSK): the request timeout and cancel behave the same. */
static void
test_tls_timeout (void)
{
  struct server s;
  struct nbd_handle *h;
  char dir[] = "/tmp/libnbd-tmo-tls-XXXXXX", psk[128], cmd[256], buf[512] = { 0 };
  double t0;

  check_case = "request timeout over TLS";
  {
    struct nbd_handle *probe = new_handle ();
    int tls = nbd_supports_tls (probe);
    nbd_close (probe);
    if (tls != 1) {
      fprintf (stderr, PROG ": built without TLS: TLS case skipped\n");
      return;
    }
  }
  if (!have_program ("psktool")) {
    fprintf (stderr, PROG ": psktool missing: TLS case skipped\n");
    return;
  }
  REQUIRE (mkdtemp (dir) != NULL, "mkdtemp");
  snprintf (psk, sizeof psk, "%s/keys.psk", dir);
  snprintf (cmd, sizeof cmd, "psktool -u alice -p %s >/dev/null 2>&1", psk);
  REQUIRE (system (cmd) == 0, "psktool");
  if (start_nbdkit (&s, "--tls=require", "--tls-psk", psk, "--filter=delay",
                    "memory", "1M", "rdelay=5", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  CHECK_EQ (nbd_set_tls (h, LIBNBD_TLS_REQUIRE), 0);
  CHECK_EQ (nbd_set_tls_psk_file (h, psk), 0);
  CHECK_EQ (nbd_set_tls_username (h, "alice"), 0);
  CHECK_EQ (nbd_ext_set_request_timeout (h, 300), 0);
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_get_tls_negotiated (h), 1);
    EXPECT_OK (nbd_pwrite (h, buf, sizeof buf, 0, 0));
    t0 = now ();
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), ETIMEDOUT, "nbd_pread", NULL);
    CHECK (now () - t0 < 3, "took %.2f s", now () - t0);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);
  server_stop (&s);
  unlink (psk);
  rmdir (dir);
  check_case = NULL;
}

/* A program polling the socket itself, never asking
 * nbd_ext_aio_get_timeout: the watchdog makes its poll return at the
 * deadline, also for a timeout set after the command was issued; and
 * nbd_close while the watchdog waits is safe.
 */
static void
test_own_poll_loop (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];
  double t0;
  int r = 0;

  check_case = "own poll loop";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=5", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0) > 0,
           "aio_pread: %s", nbd_get_error ());
    /* Only now a timeout: the command in flight gets it. */
    CHECK_EQ (nbd_ext_set_request_timeout (h, 200), 0);
    t0 = now ();
    while (r != -1 && now () - t0 < 10) {
      struct pollfd pfd = { .fd = nbd_aio_get_fd (h), .events = POLLIN };
      if (poll (&pfd, 1, -1) == 1)
        r = nbd_aio_notify_read (h);
    }
    CHECK_EQ (r, -1);
    CHECK (nbd_get_errno () == ETIMEDOUT, "errno %d: %s", nbd_get_errno (),
           nbd_get_error ());
    CHECK (now () - t0 < 3, "took %.2f s", now () - t0);
  }
  nbd_close (h);

  /* The watchdog shut the reading side, then the program raised the
   * timeout before reacting: the end of stream it then reads is still
   * the timeout, not the server closing.
   */
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    int64_t cookie;
    struct pollfd pfd;
    CHECK_EQ (nbd_ext_set_request_timeout (h, 200), 0);
    cookie = nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0);
    CHECK (cookie > 0, "aio_pread: %s", nbd_get_error ());
    pfd = (struct pollfd) { .fd = nbd_aio_get_fd (h), .events = POLLIN };
    CHECK_EQ (poll (&pfd, 1, 5000), 1);
    CHECK_EQ (nbd_ext_set_request_timeout (h, 60000), 0);
    CHECK_FAILS (nbd_aio_notify_read (h), ETIMEDOUT, "nbd_aio_notify_read", NULL);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    CHECK_FAILS (nbd_aio_command_completed (h, cookie), ETIMEDOUT,
                 "nbd_aio_command_completed", NULL);
  }
  nbd_close (h);

  /* Close while the watchdog sleeps towards a deadline, and right after
   * one passed.
   */
  for (int i = 0; i < 2; i++) {
    h = new_handle ();
    if (connect_or_fail (h, s.sock, check_case) == 0) {
      CHECK_EQ (nbd_ext_set_request_timeout (h, 100), 0);
      CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0) > 0,
             "aio_pread: %s", nbd_get_error ());
      usleep (i == 0 ? 20000 : 350000);
    }
    nbd_close (h);
  }
  server_stop (&s);
  check_case = NULL;
}

/* ---- Cancellation ---- */

static struct nbd_handle *volatile cancel_handle;

static void *
cancel_later (void *arg)
{
  (void) arg;
  usleep (200 * 1000);
  nbd_ext_cancel (cancel_handle);
  return NULL;
}

static void
on_alarm (int sig)
{
  (void) sig;
  nbd_ext_cancel (cancel_handle);
}

/* A NULL handle: -1, and the thread's last error stays as it was (the
 * call is signal-safe, so it may not touch the error state).
 */
static void
test_cancel_null (void)
{
  struct nbd_handle *volatile null_handle = NULL;  /* (no -Wnonnull) */
  struct nbd_handle *h = new_handle ();

  check_case = "cancel a NULL handle";
  CHECK_FAILS (nbd_aio_notify_write (h), EINVAL, "nbd_aio_notify_write", NULL);
  CHECK_EQ (nbd_ext_cancel (null_handle), -1);
  CHECK_EQ (nbd_get_errno (), EINVAL);
  CHECK (strstr (nbd_get_error (), "nbd_aio_notify_write") != NULL,
         "error now: %s", nbd_get_error ());
  nbd_close (h);
  check_case = NULL;
}

/* cancel_handle is cancelled in 200 ms by a SIGALRM handler or by a
 * thread (*t, to be joined).
 */
static void
cancel_in_200ms (bool from_signal, pthread_t *t)
{
  if (from_signal) {
    struct sigaction sa = { .sa_handler = on_alarm };
    sigaction (SIGALRM, &sa, NULL);
    ualarm (200 * 1000, 0);
  }
  else
    pthread_create (t, NULL, cancel_later, NULL);
}

/* Before the handle is closed: a cancel still to come (the call under
 * test failed early) must not reach a freed or the next case's handle.
 */
static void
cancel_settle (bool from_signal, pthread_t t)
{
  if (from_signal)
    ualarm (0, 0);
  else
    pthread_join (t, NULL);
}

static void
test_cancel (bool from_signal)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];
  pthread_t t;
  double t0;

  check_case = from_signal ? "cancel from SIGALRM" : "cancel from a thread";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=10", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = cancel_handle = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    t0 = now ();
    cancel_in_200ms (from_signal, &t);
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), ECANCELED, "nbd_pread", NULL);
    CHECK (now () - t0 < 2, "took %.2f s", now () - t0);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    cancel_settle (from_signal, t);
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), EINVAL, "nbd_pread", NULL);
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* A program polling the socket itself, with no timeout in its poll:
 * nbd_ext_cancel (from a thread or a signal handler) must make that poll
 * return, and the program's next notify call end the connection with
 * ECANCELED: the command in flight fails with ECANCELED too.
 */
static int cancelled_cmd_error = -1;

static int
record_error (void *user_data, int *error)
{
  (void) user_data;
  cancelled_cmd_error = *error;
  return 1;
}

static void
test_cancel_own_poll_loop (bool from_signal)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];
  pthread_t t;
  double t0;
  int r = 0, polls = 0;

  check_case = from_signal ? "cancel own poll loop from SIGALRM"
    : "cancel own poll loop from a thread";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=10", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = cancel_handle = new_handle ();
  cancelled_cmd_error = -1;
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    nbd_completion_callback cb = { .callback = record_error };
    CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, cb, 0) > 0,
           "aio_pread: %s", nbd_get_error ());
    t0 = now ();
    cancel_in_200ms (from_signal, &t);
    while (r != -1 && now () - t0 < 10) {
      struct pollfd pfd = { .fd = nbd_aio_get_fd (h), .events = POLLIN };
      int pr = poll (&pfd, 1, 10 * 1000);
      polls++;
      if (pr == 1)
        r = nbd_aio_notify_read (h);
      else if (pr == 0)
        break;                  /* not woken: the failure checked below */
    }
    CHECK_EQ (r, -1);
    CHECK (nbd_get_errno () == ECANCELED, "errno %d: %s", nbd_get_errno (),
           nbd_get_error ());
    CHECK (now () - t0 < 2, "took %.2f s (%d polls)", now () - t0, polls);
    CHECK_EQ (cancelled_cmd_error, ECANCELED);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    cancel_settle (from_signal, t);
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* A cancel from a completion callback, in the middle of the engine's
 * receive pass: the shut-down socket's end of stream must read as the
 * cancel (ECANCELED, dead), not as the server closing the connection.
 */
static int
cancel_in_callback (void *user_data, int *error)
{
  (void) error;
  nbd_ext_cancel (user_data);
  return 1;
}

static void
test_cancel_from_callback (void)
{
  static char bufs[6][128 * 1024];
  struct server s;
  struct nbd_handle *h;
  int64_t cookies[6];
  int r = 0;

  check_case = "cancel from a completion callback";
  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    for (int i = 0; i < 6; i++) {
      nbd_completion_callback cb = { .callback = cancel_in_callback, .user_data = h };
      cookies[i] = nbd_aio_pread (h, bufs[i], sizeof bufs[i], 0,
                                  i == 0 ? cb : NBD_NULL_COMPLETION, 0);
      CHECK (cookies[i] > 0, "aio_pread %d: %s", i, nbd_get_error ());
    }
    for (int n = 0; n < 20 && r != -1 && nbd_aio_in_flight (h) > 0; n++)
      r = nbd_poll (h, 2000);
    CHECK_EQ (r, -1);
    CHECK (nbd_get_errno () == ECANCELED, "poll: errno %d: %s", nbd_get_errno (),
           nbd_get_error ());
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
    for (int i = 1; i < 6; i++) {
      int c = nbd_aio_command_completed (h, cookies[i]);
      /* (Those whose reply had fully arrived keep their result.) */
      CHECK (c == 1 || (c == -1 && nbd_get_errno () == ECANCELED),
             "command %d: %d, errno %d", i, c, nbd_get_errno ());
    }
  }
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* A cancel while nothing waits acts on the next call that drives the
 * handle, whatever it is, and fails it with ECANCELED (not with the
 * EPIPE or EOF of the socket the cancel shut down): a command, a
 * shutdown, or a connect (a cancel made before connecting stops the
 * connect).  And the cancel itself leaves errno alone.
 */
static void
test_cancel_idle (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];

  check_case = "cancel an idle handle";
  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    errno = EBADMSG;
    CHECK_EQ (nbd_ext_cancel (h), 0);
    CHECK_EQ (nbd_ext_cancel (h), 0);       /* the socket is shut already */
    CHECK (errno == EBADMSG, "errno changed to %d", errno);
    CHECK_FAILS (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0),
                 ECANCELED, "nbd_aio_pread", NULL);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);

  h = new_handle ();
  if (connect_or_fail (h, s.sock, check_case) == 0) {
    CHECK_EQ (nbd_ext_cancel (h), 0);
    CHECK_FAILS (nbd_shutdown (h, 0), ECANCELED, "nbd_shutdown", NULL);
    CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);

  h = new_handle ();
  CHECK_EQ (nbd_ext_cancel (h), 0);
  CHECK_FAILS (nbd_connect_unix (h, s.sock), ECANCELED, "nbd_connect_unix", NULL);
  CHECK (nbd_aio_is_dead (h), "state: %s", nbd_connection_state (h));
  nbd_close (h);
  server_stop (&s);
  check_case = NULL;
}

/* ---- Many threads, one handle, with a timeout ---- */

static struct nbd_handle *shared;
static int thread_failures;

static void *
reader (void *arg)
{
  char buf[4096];
  uintptr_t id = (uintptr_t) arg;

  for (int i = 0; i < 50; i++)
    if (nbd_pread (shared, buf, sizeof buf, (id * 50 + i) % 256 * 4096, 0) == -1) {
      fprintf (stderr, "thread %u: %s\n", (unsigned) id, nbd_get_error ());
      __atomic_add_fetch (&thread_failures, 1, __ATOMIC_SEQ_CST);
      break;
    }
  return NULL;
}

static void
test_threads_with_timeouts (void)
{
  struct server s;
  pthread_t t[8];
  double t0;

  check_case = "threads with timeouts";
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=20ms", NULL) == -1) {
    FAIL ("cannot start nbdkit");
    return;
  }
  shared = new_handle ();
  CHECK_EQ (nbd_ext_set_request_timeout (shared, 5000), 0);
  if (connect_or_fail (shared, s.sock, check_case) == 0) {
    t0 = now ();
    for (uintptr_t i = 0; i < 8; i++)
      pthread_create (&t[i], NULL, reader, (void *) i);
    for (int i = 0; i < 8; i++)
      pthread_join (t[i], NULL);
    CHECK_EQ (thread_failures, 0);
    /* 400 reads of 20 ms each: serialised that is 8 s. */
    CHECK (now () - t0 < 4, "8 threads x 50 reads took %.2f s", now () - t0);
    EXPECT_OK (nbd_shutdown (shared, 0));
  }
  nbd_close (shared);
  server_stop (&s);
  check_case = NULL;
}

int
main (void)
{
  if (!have_program ("nbdkit")) {
    fprintf (stderr, PROG ": nbdkit not found: skipping\n");
    return 77;
  }
  signal (SIGPIPE, SIG_IGN);
  test_connect_timeout ();
  test_connect_retry ();
  test_request_timeout ();
  test_tls_timeout ();
  test_own_poll_loop ();
  test_cancel_null ();
  test_cancel (false);
  test_cancel (true);
  test_cancel_own_poll_loop (false);
  test_cancel_own_poll_loop (true);
  test_cancel_idle ();
  test_cancel_from_callback ();
  test_threads_with_timeouts ();
  return check_status (PROG);
}
