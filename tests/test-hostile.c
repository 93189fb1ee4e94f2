/* A hostile server: every fault nbd-test-server can inject, in each reply
 * mode where it means something (extended headers, structured replies
 * only, simple replies only).  The client must fail cleanly: the right
 * errno and message, never a hang (alarm) or a crash (run it under
 * valgrind too).
 *
 * What the library does, fault by fault (asserted below):
 *
 *  handshake: close-after-magic, close-after-greeting, close-in-option
 *    => nbd_connect_unix -1, errno 0 as libnbd for an end of stream
 *    (ECONNRESET if our bytes were left unread, EPIPE if a send sees the
 *    close), handle dead; bad-magic => -1, errno 0, dead.
 *    Oldstyle close-after-greeting: the handshake is complete, so the
 *    connect succeeds and the first command fails, dead.
 *
 *  connection killed (as libnbd, the synchronous call fails with errno 0
 *  unless said, the message giving the reason; every aio command in
 *  flight completes once with ENOTCONN, as upstream; later commands fail
 *  at once with EINVAL "invalid state: DEAD"; an aio command issued after
 *  the server closed is still accepted and completes with ENOTCONN, a
 *  synchronous one then fails with ENOTCONN "command failed"):
 *    close-before-reply   the server hangs up where the reply would
 *                         start: as libnbd an orderly close (CLOSED, not
 *                         dead), the read fails with ENOTCONN "command
 *                         failed"
 *    bad-reply-magic      "invalid reply magic"
 *    unknown-cookie       "unknown cookie"
 *    huge-length          "invalid data chunk length"
 *    short-error-message  "error chunk message longer than the chunk"
 *    stray-chunk          "data chunk outside the read request ..."
 *    overlap-chunks       same.  Although the stream is still in sync
 *                         for these two, the library refuses a DATA
 *                         chunk outside the request or overlapping one
 *                         already received (it streams DATA payloads
 *                         into the caller's buffer, as upstream libnbd,
 *                         which also goes DEAD on an out-of-bounds chunk).
 *
 *  only the command fails, the connection stays usable:
 *    gap-chunks           EIO (DONE arrived before the read was covered)
 *    unknown-chunk        EPROTO (unknown non-error chunk type)
 *    unknown-error-chunk  EIO (the error carried by the unknown error chunk)
 *    error-reply          EIO for every READ (the fault is not one-shot),
 *                         writes keep working.
 *
 *  slow: every reply delayed 50 ms; aio commands all complete.
 *
 *  In simple-reply mode the chunk faults do not apply (the server ignores
 *  them), so only the others are run there.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "server.h"
#include "checks.h"

/* CHECK_ERR, and no doubled prefix.  The current case (check_case) is
 * named in every failure.
 */
#define CHECK_ERR_ONCE(errnum, context, substr)                         \
  do {                                                                  \
    CHECK_ERR ((errnum), (context), (substr));                          \
    check_no_double_prefix (context, __LINE__);                         \
  } while (0)

static void
check_no_double_prefix (const char *context, int line)
{
  const char *msg = nbd_get_error ();
  size_t cl = strlen (context);
  if (msg && strncmp (msg, context, cl) == 0 && strncmp (msg + cl, ": ", 2) == 0
      && strncmp (msg + cl + 2, context, cl) == 0
      && strncmp (msg + cl + 2 + cl, ": ", 2) == 0) {
    check_failed (__FILE__, line, NULL);
    fprintf (stderr, "error message has its context twice: \"%s\"\n", msg);
  }
}

enum mode { M_EH, M_SR, M_SIMPLE };
static const char *const mode_name[] = { "extended", "structured", "simple" };
static const char *const mode_arg[] = { NULL, "--no-extended-headers",
                                        "--no-structured-replies" };

static void
start (struct server *s, enum mode m, const char *fault)
{
  const char *args[8];
  size_t n = 0;

  args[n++] = "--pattern";
  if (mode_arg[m])
    args[n++] = mode_arg[m];
  if (fault) {
    args[n++] = "--fault";
    args[n++] = fault;
  }
  args[n] = NULL;
  start_test_server (s, "test-hostile", args);
}

static struct nbd_handle *
connect_ok (struct server *s, enum mode m)
{
  struct nbd_handle *h = nbd_create ();
  if (!h) {
    fprintf (stderr, "nbd_create: %s\n", nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  if (nbd_connect_unix (h, s->sock) == -1) {
    fprintf (stderr, "[%s] connect: %s\n", check_case, nbd_get_error ());
    exit (EXIT_FAILURE);
  }
  CHECK (nbd_get_extended_headers_negotiated (h) == (m == M_EH), "eh");
  CHECK (nbd_get_structured_replies_negotiated (h) == (m != M_SIMPLE), "sr");
  return h;
}

static bool
pattern_ok (const unsigned char *buf, size_t n, uint64_t off)
{
  for (size_t i = 0; i < n; i++)
    if (buf[i] != (unsigned char) (off + i))
      return false;
  return true;
}

/* A command on a handle whose connection ended fails at once.  want:
 * "DEAD", "CLOSED" (the server ended the stream where a reply would
 * start: as libnbd, an orderly close), or NULL for either (a race
 * between a send that fails and a receive that sees the end).
 */
static void
check_ended_handle (struct nbd_handle *h, const char *want)
{
  char buf[512];
  time_t t0 = time (NULL);
  const char *state = nbd_aio_is_closed (h) ? "CLOSED" : "DEAD";
  CHECK (nbd_aio_is_dead (h) == 1 || nbd_aio_is_closed (h) == 1,
         "connection not ended: %s", nbd_connection_state (h));
  CHECK (want == NULL || strcmp (want, state) == 0, "%s, expected %s", state, want);
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == -1, "pread on an ended handle worked");
  CHECK_ERR_ONCE (EINVAL, "nbd_pread", state);
  CHECK (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0) == -1,
         "aio_pread on dead handle worked");
  CHECK (nbd_aio_in_flight (h) == 0, "commands still in flight: %d",
         nbd_aio_in_flight (h));
  CHECK (time (NULL) - t0 < 5, "dead handle slow to fail");
}

/* ---- Handshake faults ---- */

static void
test_handshake_fault (enum mode m, const char *fault)
{
  static char name[128];
  struct server s;
  struct nbd_handle *h;
  int e;

  snprintf (name, sizeof name, "%s/%s", mode_name[m], fault);
  check_case = name;
  start (&s, m, fault);
  h = nbd_create ();
  CHECK (nbd_connect_unix (h, s.sock) == -1, "connect succeeded");
  e = nbd_get_errno ();
  if (strcmp (fault, "bad-magic") == 0)
    CHECK_ERR_ONCE (0, "nbd_connect_unix", "magic");
  else {
    /* As libnbd: an end of stream carries no errno; a reset (the server
     * closed with our bytes unread) or a send that sees the close does.
     */
    CHECK (e == 0 || e == ECONNRESET || e == EPIPE, "errno %d (%s): %s", e,
           strerror (e), nbd_get_error ());
    CHECK_ERR_ONCE (e, "nbd_connect_unix", NULL);
  }
  CHECK (nbd_aio_is_dead (h) == 1, "handle not dead after failed handshake");
  CHECK (nbd_aio_is_connecting (h) == 0, "still connecting");
  /* No second chance on the same handle, and no hang. */
  CHECK (nbd_connect_unix (h, s.sock) == -1, "reconnect on dead handle");
  nbd_close (h);
  server_stop (&s);
}

static void
test_oldstyle_close (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[4096];
  const char *const args[] = { "--oldstyle", "--fault", "close-after-greeting",
                               NULL };

  check_case = "oldstyle/close-after-greeting";
  if (test_server_start (&s, args) == -1)
    exit (EXIT_FAILURE);
  h = nbd_create ();
  if (nbd_connect_unix (h, s.sock) == 0) {
    CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == -1, "pread worked");
    /* ECONNRESET if the close is seen by recv, EPIPE if by send (the
     * ENOTCONN "command failed" of a send failure is checked
     * deterministically by test_sync_after_close, not here: racy).
     */
    CHECK (nbd_get_errno () == ECONNRESET || nbd_get_errno () == EPIPE
           || nbd_get_errno () == ENOTCONN,
           "pread: %s", nbd_get_error ());
    check_no_double_prefix ("nbd_pread", __LINE__);
  }
  else
    CHECK (nbd_get_errno () == ECONNRESET, "connect: %s", nbd_get_error ());
  CHECK (nbd_aio_is_dead (h) == 1, "not dead");
  nbd_close (h);
  server_stop (&s);
}

/* ---- Faults that kill the connection ---- */

struct done { int calls; int error; int freed; };

static int
done_cb (void *user_data, int *error)
{
  struct done *d = user_data;
  d->calls++;
  d->error = *error;
  return 0;
}

static void
done_free (void *user_data)
{
  struct done *d = user_data;
  d->freed++;
}

/* err: the synchronous call's errno (0: none, as libnbd gives for a
 * protocol violation); the connection ends dead, or closed for a server
 * that hangs up where a reply would start (close-before-reply).
 */
static void
test_fatal (enum mode m, const char *fault, int err, const char *substr)
{
  const char *want_state = strcmp (fault, "close-before-reply") == 0 ? "CLOSED" : "DEAD";
  static char name[128];
  struct server s;
  struct nbd_handle *h;
  static unsigned char buf[65536];

  /* Synchronous read. */
  snprintf (name, sizeof name, "%s/%s/sync", mode_name[m], fault);
  check_case = name;
  start (&s, m, fault);
  h = connect_ok (&s, m);
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == -1, "pread worked");
  CHECK_ERR_ONCE (err, "nbd_pread", substr);
  check_ended_handle (h, want_state);
  nbd_close (h);
  server_stop (&s);

  /* Two aio commands in flight: both fail, callbacks run once. */
  snprintf (name, sizeof name, "%s/%s/aio", mode_name[m], fault);
  check_case = name;
  start (&s, m, fault);
  h = connect_ok (&s, m);
  {
    static unsigned char b2[4096];
    struct done d1 = { 0 }, d2 = { 0 };
    int64_t c1, c2;
    c1 = nbd_aio_pread (h, buf, sizeof buf, 0,
                        (nbd_completion_callback) { .callback = done_cb, .user_data = &d1,
                                                    .free = done_free }, 0);
    c2 = nbd_aio_pread (h, b2, sizeof b2, 4096,
                        (nbd_completion_callback) { .callback = done_cb, .user_data = &d2,
                                                    .free = done_free }, 0);
    CHECK (c1 > 0, "aio_pread: %s", nbd_get_error ());
    if (c2 == -1) {
      /* Only when the server closed as soon as it read the first
       * request: the second one's send may already see the close (a
       * race; test_issue_after_close checks this case deterministically).
       */
      int e = nbd_get_errno ();
      CHECK (strcmp (fault, "close-before-reply") == 0
             && (e == EPIPE || e == ECONNRESET),
             "second aio_pread: %s", nbd_get_error ());
    }
    for (int i = 0; i < 200 && nbd_aio_in_flight (h) > 0 && !nbd_aio_is_dead (h)
           && !nbd_aio_is_closed (h); i++)
      if (nbd_poll (h, 1000) == -1)
        break;
    CHECK (nbd_aio_in_flight (h) == 0, "in flight %d", nbd_aio_in_flight (h));
    /* Commands lost with the connection complete with ENOTCONN whatever
     * broke it (as upstream libnbd); the reason is in nbd_get_error of
     * the call that saw it (the synchronous case above).
     */
    CHECK (d1.calls == 1 && d1.error == ENOTCONN, "completion 1: calls %d "
           "error %d", d1.calls, d1.error);
    CHECK (nbd_aio_command_completed (h, c1) == -1, "c1 succeeded");
    CHECK_ERR_ONCE (ENOTCONN, "nbd_aio_command_completed", NULL);
    CHECK (nbd_aio_command_completed (h, c1) == 0, "c1 retired twice");
    if (c2 > 0) {
      CHECK (d2.calls == 1 && d2.error == ENOTCONN, "completion 2: calls %d "
             "error %d", d2.calls, d2.error);
      CHECK (nbd_aio_command_completed (h, c2) == -1, "c2 succeeded");
      CHECK_ERR_ONCE (ENOTCONN, "nbd_aio_command_completed", NULL);
    }
    /* (After close-before-reply the second request may still be unread
     * when the server exits: a reset, so dead rather than closed.)
     */
    check_ended_handle (h, strcmp (want_state, "DEAD") == 0 ? "DEAD" : NULL);
    nbd_close (h);
    CHECK (d1.freed == 1 && d2.freed == 1, "free calls %d %d", d1.freed, d2.freed);
  }
  server_stop (&s);
}

/* An aio command issued after the server has gone: the send fails at
 * once.  Documented (generator/api-command.c, ASYNC_NOTE): "If this call
 * returns -1 the command was never queued: no callback will run, but the
 * free functions of any closures passed in are still called."  Upstream
 * libnbd instead returns the cookie of a command it queued even when
 * kicking the state machine then fails.  Either is accepted here; a -1
 * together with a completion callback call is not.
 */
static void
test_issue_after_close (enum mode m)
{
  static char name[128];
  struct server s;
  struct nbd_handle *h;
  static char b1[4096], b2[4096];
  struct done d1 = { 0 }, d2 = { 0 };
  int64_t c1, c2;
  int st;

  snprintf (name, sizeof name, "%s/issue-after-close", mode_name[m]);
  check_case = name;
  start (&s, m, "close-before-reply");
  h = connect_ok (&s, m);
  c1 = nbd_aio_pread (h, b1, sizeof b1, 0,
                      (nbd_completion_callback) { .callback = done_cb, .user_data = &d1,
                                                  .free = done_free }, 0);
  CHECK (c1 > 0, "aio_pread: %s", nbd_get_error ());
  /* The server exits once it has read that request. */
  if (waitpid (s.pid, &st, 0) == s.pid)
    s.pid = 0;
  c2 = nbd_aio_pread (h, b2, sizeof b2, 0,
                      (nbd_completion_callback) { .callback = done_cb, .user_data = &d2,
                                                  .free = done_free }, 0);
  if (c2 == -1) {
    CHECK (nbd_get_errno () == EPIPE || nbd_get_errno () == ECONNRESET,
           "aio_pread: %s", nbd_get_error ());
    CHECK (d2.calls == 0, "aio_pread returned -1 but its completion callback "
           "ran %d time(s) (error %d)", d2.calls, d2.error);
    CHECK (d2.freed == 1, "closure freed %d times", d2.freed);
  }
  else {
    for (int i = 0; i < 20 && nbd_aio_in_flight (h) > 0 && !nbd_aio_is_dead (h)
           && !nbd_aio_is_closed (h); i++)
      if (nbd_poll (h, 1000) == -1)
        break;
    CHECK (d2.calls == 1 && d2.error == ENOTCONN, "completion 2: calls %d "
           "error %d", d2.calls, d2.error);
    CHECK (nbd_aio_command_completed (h, c2) == -1, "c2 succeeded");
  }
  for (int i = 0; i < 20 && nbd_aio_in_flight (h) > 0 && !nbd_aio_is_dead (h)
         && !nbd_aio_is_closed (h); i++)
    if (nbd_poll (h, 1000) == -1)
      break;
  CHECK (d1.calls == 1 && d1.error == ENOTCONN, "completion 1: calls %d "
         "error %d", d1.calls, d1.error);
  CHECK (nbd_aio_command_completed (h, c1) == -1, "c1 succeeded");
  check_ended_handle (h, NULL);
  nbd_close (h);
  CHECK (d1.freed == 1 && d2.freed == 1, "free calls %d %d", d1.freed, d2.freed);
  server_stop (&s);
}

/* A synchronous command issued after the server has gone: the send
 * fails with EPIPE and kills the connection while the command is being
 * issued.  The command is accepted (a cookie) and completes at once with
 * ENOTCONN, which the synchronous call then reports as "command failed":
 * the EPIPE reason is lost (unlike a close seen by recv while waiting,
 * reported as ECONNRESET).  Upstream libnbd behaves the same way (its
 * aio_command_completed reports the ENOTCONN of the aborted command), so
 * ENOTCONN is accepted; what is checked is a clean, immediate failure.
 */
static void
test_sync_after_close (enum mode m)
{
  static char name[128];
  struct server s;
  struct nbd_handle *h;
  static char b1[4096], b2[4096];
  int64_t c1;
  int st, e;

  snprintf (name, sizeof name, "%s/sync-after-close", mode_name[m]);
  check_case = name;
  start (&s, m, "close-before-reply");
  h = connect_ok (&s, m);
  c1 = nbd_aio_pread (h, b1, sizeof b1, 0, NBD_NULL_COMPLETION, 0);
  CHECK (c1 > 0, "aio_pread: %s", nbd_get_error ());
  if (waitpid (s.pid, &st, 0) == s.pid)
    s.pid = 0;
  CHECK (nbd_pread (h, b2, sizeof b2, 0, 0) == -1, "pread worked");
  e = nbd_get_errno ();
  CHECK (e == EPIPE || e == ECONNRESET || e == ENOTCONN,
         "pread after the server closed: "
         "errno %d, \"%s\"", e, nbd_get_error ());
  CHECK_ERR_ONCE (e, "nbd_pread", NULL);
  check_ended_handle (h, NULL);
  nbd_close (h);
  server_stop (&s);
}

/* ---- Faults where only the command fails ---- */

struct chunks { int data, hole, error; int last_err; };

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct chunks *c = user_data;
  (void) subbuf; (void) count; (void) offset;
  if (status == LIBNBD_READ_DATA) c->data++;
  else if (status == LIBNBD_READ_HOLE) c->hole++;
  else if (status == LIBNBD_READ_ERROR) { c->error++; c->last_err = *error; }
  return 0;
}

static void
test_cmd_fault (enum mode m, const char *fault, int err, bool structured)
{
  static char name[128];
  struct server s;
  struct nbd_handle *h;
  static unsigned char buf[65536];
  bool every_read = strcmp (fault, "error-reply") == 0;

  snprintf (name, sizeof name, "%s/%s%s", mode_name[m], fault,
            structured ? "/structured" : "");
  check_case = name;
  start (&s, m, fault);
  h = connect_ok (&s, m);
  if (structured) {
    struct chunks c = { 0 };
    CHECK (nbd_pread_structured (h, buf, sizeof buf, 0,
                                 (nbd_chunk_callback) { .callback = chunk_cb, .user_data = &c },
                                 0) == -1, "pread_structured worked");
    CHECK_ERR_ONCE (err, "nbd_pread_structured", "command failed");
    fprintf (stderr, "test-hostile: [%s] chunk callback: %d data, %d hole, "
             "%d error (errno %d)\n", check_case, c.data, c.hole, c.error, c.last_err);
    if (strcmp (fault, "gap-chunks") == 0)
      CHECK (c.data == 1 && c.error == 0, "gap: data %d error %d", c.data, c.error);
  }
  else {
    CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == -1, "pread worked");
    CHECK_ERR_ONCE (err, "nbd_pread", "command failed");
  }
  CHECK (nbd_aio_is_dead (h) == 0, "connection died");
  CHECK (nbd_aio_is_ready (h) == 1, "not ready");

  /* The next command on the same connection. */
  memset (buf, 0, sizeof buf);
  if (every_read) {
    CHECK (nbd_pread (h, buf, 4096, 4096, 0) == -1, "second read worked");
    CHECK_ERR_ONCE (EIO, "nbd_pread", NULL);
    memset (buf, 0x11, 4096);
    CHECK (nbd_pwrite (h, buf, 4096, 0, 0) == 0, "pwrite: %s", nbd_get_error ());
    CHECK (nbd_flush (h, 0) == 0, "flush: %s", nbd_get_error ());
  }
  else {
    CHECK (nbd_pread (h, buf, sizeof buf, 4096, 0) == 0, "second read: %s",
           nbd_get_error ());
    CHECK (pattern_ok (buf, sizeof buf, 4096), "second read data wrong");
  }
  CHECK (nbd_aio_is_dead (h) == 0, "connection died");
  CHECK (nbd_shutdown (h, 0) == 0, "shutdown: %s", nbd_get_error ());
  nbd_close (h);
  server_stop (&s);
}

/* ---- Slow server: aio commands complete ---- */

static void
test_slow (enum mode m)
{
  static char name[64];
  struct server s;
  struct nbd_handle *h;
  enum { N = 6 };
  static unsigned char rbuf[N][8192], wbuf[8192];
  struct done d[2 * N];
  int64_t cookies[2 * N];
  time_t t0;

  snprintf (name, sizeof name, "%s/slow", mode_name[m]);
  check_case = name;
  start (&s, m, "slow");
  h = connect_ok (&s, m);
  memset (d, 0, sizeof d);
  memset (wbuf, 0x77, sizeof wbuf);
  for (int i = 0; i < N; i++) {
    cookies[i] = nbd_aio_pread (h, rbuf[i], sizeof rbuf[i], 65536 * (i + 1),
                                (nbd_completion_callback) { .callback = done_cb, .user_data = &d[i] },
                                0);
    CHECK (cookies[i] > 0, "aio_pread: %s", nbd_get_error ());
    cookies[N + i] = nbd_aio_pwrite (h, wbuf, sizeof wbuf, 1024 * 1024 - 8192 * (i + 1),
                                     (nbd_completion_callback) { .callback = done_cb, .user_data = &d[N + i] },
                                     0);
    CHECK (cookies[N + i] > 0, "aio_pwrite: %s", nbd_get_error ());
  }
  t0 = time (NULL);
  while (nbd_aio_in_flight (h) > 0 && time (NULL) - t0 < 20) {
    if (nbd_poll (h, 1000) == -1) {
      CHECK (false, "poll: %s", nbd_get_error ());
      break;
    }
  }
  CHECK (nbd_aio_in_flight (h) == 0, "still in flight: %d", nbd_aio_in_flight (h));
  for (int i = 0; i < 2 * N; i++) {
    CHECK (d[i].calls == 1 && d[i].error == 0, "command %d: calls %d error %d",
           i, d[i].calls, d[i].error);
    CHECK (nbd_aio_command_completed (h, cookies[i]) == 1, "command %d: %s", i,
           nbd_get_error ());
  }
  for (int i = 0; i < N; i++)
    CHECK (pattern_ok (rbuf[i], sizeof rbuf[i], 65536 * (i + 1)), "read %d data", i);
  CHECK (nbd_pread (h, rbuf[0], 8192, 1024 * 1024 - 8192, 0) == 0
         && rbuf[0][0] == 0x77 && rbuf[0][8191] == 0x77, "write not visible");
  CHECK (nbd_aio_is_dead (h) == 0, "dead");
  nbd_shutdown (h, 0);
  nbd_close (h);
  server_stop (&s);
}

int
main (void)
{
  static const char *const hs_faults[] = {
    "close-after-magic", "close-after-greeting", "close-in-option", "bad-magic",
  };

  alarm (30);
  check_case = "";

  for (int m = M_EH; m <= M_SIMPLE; m++) {
    for (size_t i = 0; i < sizeof hs_faults / sizeof hs_faults[0]; i++)
      test_handshake_fault (m, hs_faults[i]);

    test_fatal (m, "close-before-reply", ENOTCONN, "command failed");
    test_fatal (m, "bad-reply-magic", 0, "invalid reply magic");
    test_fatal (m, "unknown-cookie", 0, "unknown cookie");
    test_cmd_fault (m, "error-reply", EIO, false);
    test_slow (m);
    test_issue_after_close (m);
    test_sync_after_close (m);

    if (m == M_SIMPLE)
      continue;                 /* chunk faults need structured replies */

    test_fatal (m, "huge-length", 0, "invalid data chunk length");
    test_fatal (m, "short-error-message", 0,
                "error chunk message longer than the chunk");
    test_fatal (m, "stray-chunk", 0, "outside the read request");
    test_fatal (m, "overlap-chunks", 0, "overlapping");

    test_cmd_fault (m, "gap-chunks", EIO, false);
    test_cmd_fault (m, "gap-chunks", EIO, true);
    test_cmd_fault (m, "unknown-chunk", EPROTO, false);
    test_cmd_fault (m, "unknown-chunk", EPROTO, true);
    test_cmd_fault (m, "unknown-error-chunk", EIO, false);
    test_cmd_fault (m, "unknown-error-chunk", EIO, true);
    test_cmd_fault (m, "error-reply", EIO, true);
  }
  test_oldstyle_close ();

  return check_status ("test-hostile");
}
