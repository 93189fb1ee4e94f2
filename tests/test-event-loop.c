/* The event-loop API against nbdkit: nbd_aio_connect_unix driven by the
 * test's own poll() loop (nbd_aio_get_fd, nbd_aio_get_direction,
 * nbd_aio_notify_read/write), nbd_aio_pread to completion the same way,
 * nbd_poll2 woken by an extra fd, the nbd_aio_is_* predicates and
 * nbd_connection_state through the life cycle, nbd_aio_disconnect and
 * nbd_shutdown (flags).  Skips (77) if nbdkit is missing.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "hs-helpers.h"

#define SIZE 1048576

static bool
state_is (struct nbd_handle *h, const char *prefix)
{
  const char *s = nbd_connection_state (h);
  return s && strncmp (s, prefix, strlen (prefix)) == 0;
}

#define CHECK_STATE(h, created, connecting, negotiating, ready, processing, \
                    dead, closed)                                       \
  do {                                                                  \
    CHECK_EQ (nbd_aio_is_created (h), created);                         \
    CHECK_EQ (nbd_aio_is_connecting (h), connecting);                   \
    CHECK_EQ (nbd_aio_is_negotiating (h), negotiating);                 \
    CHECK_EQ (nbd_aio_is_ready (h), ready);                             \
    CHECK_EQ (nbd_aio_is_processing (h), processing);                   \
    CHECK_EQ (nbd_aio_is_dead (h), dead);                               \
    CHECK_EQ (nbd_aio_is_closed (h), closed);                           \
  } while (0)

/* One iteration of our own event loop.  Returns -1 on error. */
static int
loop_once (struct nbd_handle *h, int timeout)
{
  struct pollfd pfd;
  unsigned dir = nbd_aio_get_direction (h);
  int fd = nbd_aio_get_fd (h), r;

  if (fd == -1) {
    fprintf (stderr, "nbd_aio_get_fd: %s\n", nbd_get_error ());
    return -1;
  }
  if (dir == 0) {
    fprintf (stderr, "direction 0 in state %s\n", nbd_connection_state (h));
    return -1;
  }
  pfd.fd = fd;
  pfd.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
    | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
  pfd.revents = 0;
  r = poll (&pfd, 1, timeout);
  if (r == -1) {
    perror ("poll");
    return -1;
  }
  if (r == 0)
    return 0;
  /* Prefer read when both. */
  if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
    r = nbd_aio_notify_read (h);
  else if (pfd.revents & POLLOUT)
    r = nbd_aio_notify_write (h);
  if (r == -1) {
    fprintf (stderr, "notify: %s\n", nbd_get_error ());
    return -1;
  }
  return 1;
}

static void
test_lifecycle (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  char buf[512];
  int64_t cookie;
  int i, r;
  bool saw_connecting = false, saw_read = false;

  /* Created. */
  CHECK_STATE (h, 1, 0, 0, 0, 0, 0, 0);
  CHECK (state_is (h, "START"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_aio_get_direction (h), 0);
  CHECK_EQ (nbd_aio_get_fd (h), -1);
  CHECK (nbd_get_errno () != 0, "aio_get_fd on a created handle: no errno");
  CHECK_FAILS (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0),
               ENOTCONN, "nbd_aio_pread", NULL);
  CHECK_FAILS (nbd_shutdown (h, 0), ENOTCONN, "nbd_shutdown", NULL);
  CHECK_FAILS (nbd_aio_disconnect (h, 0), ENOTCONN, "nbd_aio_disconnect",
               NULL);

  /* Connect without blocking, then drive with our own loop.  As libnbd:
   * even a Unix socket that connected at once waits for writability
   * first (a loop may make that nbd_aio_notify_write without polling).
   */
  CHECK_EQ (nbd_aio_connect_unix (h, sock), 0);
  CHECK_EQ (nbd_aio_is_created (h), 0);
  CHECK_EQ (nbd_aio_is_ready (h), 0);
  CHECK_EQ (nbd_aio_is_connecting (h), 1);
  CHECK (state_is (h, "CONNECTING"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_aio_get_direction (h), LIBNBD_AIO_DIRECTION_WRITE);
  CHECK_EQ (nbd_aio_notify_write (h), 0);
  CHECK_EQ (nbd_aio_get_direction (h), LIBNBD_AIO_DIRECTION_READ);
  CHECK (nbd_aio_get_fd (h) >= 0, "no fd after aio_connect_unix: %s",
         nbd_get_error ());
  for (i = 0; i < 1000 && !nbd_aio_is_ready (h); i++) {
    if (nbd_aio_is_connecting (h)) {
      saw_connecting = true;
      CHECK (state_is (h, "CONNECTING") || state_is (h, "MAGIC")
             || !state_is (h, "READY"),
             "state while connecting: %s", nbd_connection_state (h));
    }
    if (nbd_aio_is_dead (h) || nbd_aio_is_closed (h))
      break;
    if (loop_once (h, 5000) == -1)
      break;
  }
  CHECK (saw_connecting, "never saw nbd_aio_is_connecting");
  CHECK_STATE (h, 0, 0, 0, 1, 0, 0, 0);
  CHECK (state_is (h, "READY"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_get_size (h), SIZE);
  CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
  /* Ready: waiting for replies (none) means reading. */
  CHECK ((nbd_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_READ) != 0,
         "direction %u when ready", nbd_aio_get_direction (h));

  /* nbd_poll with a 0 timeout: nothing to do. */
  CHECK_EQ (nbd_poll (h, 0), 0);

  /* aio_pread through our loop; nbdkit delays reads by 200ms, so the
   * command is still in flight right after submission.
   */
  memset (buf, 0, sizeof buf);
  cookie = nbd_aio_pread (h, buf, sizeof buf, 4096, NBD_NULL_COMPLETION, 0);
  CHECK (cookie > 0, "nbd_aio_pread: %s", nbd_get_error ());
  /* As libnbd: the request is written and no reply byte has come, so
   * the handle is ready (for more commands), not processing.
   */
  CHECK_STATE (h, 0, 0, 0, 1, 0, 0, 0);
  CHECK (state_is (h, "READY"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_aio_in_flight (h), 1);
  CHECK_EQ (nbd_aio_command_completed (h, (uint64_t) cookie), 0);
  CHECK_EQ (nbd_aio_peek_command_completed (h), 0);
  r = 0;
  for (i = 0; i < 1000; i++) {
    if (nbd_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_READ)
      saw_read = true;
    if (loop_once (h, 5000) == -1)
      break;
    r = nbd_aio_command_completed (h, (uint64_t) cookie);
    if (r != 0)
      break;
  }
  CHECK (saw_read, "never waited for read while processing");
  CHECK_EQ (r, 1);
  /* pattern plugin: the word at offset 4096 is 4096 big-endian. */
  CHECK (buf[6] == 0x10 && buf[7] == 0 && buf[15] == 8,
         "wrong data: %02x %02x %02x", buf[6], buf[7], buf[15]);
  CHECK_STATE (h, 0, 0, 0, 1, 0, 0, 0);
  CHECK_EQ (nbd_aio_in_flight (h), 0);
  /* Already retired. */
  CHECK_EQ (nbd_aio_command_completed (h, (uint64_t) cookie), 0);
  CHECK_FAILS (nbd_aio_command_completed (h, 0), EINVAL,
               "nbd_aio_command_completed", NULL);
  CHECK_FAILS (nbd_aio_peek_command_completed (h), EINVAL,
               "nbd_aio_peek_command_completed", NULL);

  /* nbd_poll2: an idle handle plus a pipe.  Timeout first, then the
   * pipe becomes readable and poll2 returns well before the timeout.
   */
  {
    int p[2];
    time_t t0;
    if (pipe (p) == -1) { perror ("pipe"); exit (EXIT_FAILURE); }
    CHECK_EQ (nbd_poll2 (h, p[0], 100), 0);
    CHECK_EQ (nbd_poll2 (h, -1, 50), 0);
    CHECK (write (p[1], "x", 1) == 1, "write pipe");
    t0 = time (NULL);
    CHECK_EQ (nbd_poll2 (h, p[0], 10000), 1);
    CHECK (time (NULL) - t0 < 5, "poll2 did not return when the pipe was readable");
    CHECK_STATE (h, 0, 0, 0, 1, 0, 0, 0);
    close (p[0]);
    close (p[1]);
  }

  /* aio_disconnect: bad flags first. */
  CHECK_FAILS (nbd_aio_disconnect (h, 1), EINVAL, "nbd_aio_disconnect", NULL);
  CHECK_EQ (nbd_aio_is_ready (h), 1);
  CHECK_EQ (nbd_aio_disconnect (h, 0), 0);
  for (i = 0; i < 1000 && !nbd_aio_is_closed (h) && !nbd_aio_is_dead (h); i++)
    if (loop_once (h, 5000) <= 0)
      break;
  CHECK_STATE (h, 0, 0, 0, 0, 0, 0, 1);
  CHECK (state_is (h, "CLOSED"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_aio_get_direction (h), 0);
  CHECK_FAILS (nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0),
               EINVAL, "nbd_aio_pread", "CLOSED");
  CHECK_FAILS (nbd_shutdown (h, 0), EINVAL, "nbd_shutdown", NULL);
  /* Info remains. */
  CHECK_EQ (nbd_get_size (h), SIZE);
  nbd_close (h);
}

/* Blocking connect, then nbd_shutdown with and without flags. */
static void
test_shutdown (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  char buf[512];
  int64_t cookie;
  int i;

  if (connect_or_fail (h, sock, "shutdown") == -1) {
    nbd_close (h);
    return;
  }
  CHECK_FAILS (nbd_shutdown (h, 0x1), EINVAL, "nbd_shutdown", NULL);
  CHECK_FAILS (nbd_shutdown (h, LIBNBD_SHUTDOWN_MASK << 1), EINVAL,
               "nbd_shutdown", NULL);
  CHECK_EQ (nbd_aio_is_ready (h), 1);

  /* A command in flight, then shutdown abandoning what is pending: must
   * end closed with nothing in flight and the command finished one way
   * or the other.
   */
  cookie = nbd_aio_pread (h, buf, sizeof buf, 0, NBD_NULL_COMPLETION, 0);
  CHECK (cookie > 0, "nbd_aio_pread: %s", nbd_get_error ());
  CHECK_EQ (nbd_aio_in_flight (h), 1);
  CHECK_EQ (nbd_shutdown (h, LIBNBD_SHUTDOWN_ABANDON_PENDING), 0);
  CHECK_EQ (nbd_aio_is_closed (h), 1);
  CHECK_EQ (nbd_aio_in_flight (h), 0);
  for (i = 0; i < 3; i++) {
    int r = nbd_aio_command_completed (h, (uint64_t) cookie);
    if (r == 1)
      break;
    if (r == -1) {
      /* Abandoned before sending: ENOTCONN; already sent, the server may
       * answer ESHUTDOWN as it goes away. */
      if (nbd_get_errno () != ESHUTDOWN)
        CHECK_ERR (ENOTCONN, "nbd_aio_command_completed", NULL);
      break;
    }
    CHECK (i < 2, "command %" PRIi64 " never finished", cookie);
  }
  nbd_close (h);

  /* Plain shutdown on an idle handle. */
  h = new_handle ();
  if (connect_or_fail (h, sock, "shutdown 2") == 0) {
    CHECK_EQ (nbd_shutdown (h, 0), 0);
    CHECK_EQ (nbd_aio_is_closed (h), 1);
    CHECK (state_is (h, "CLOSED"), "state: %s", nbd_connection_state (h));
  }
  nbd_close (h);
}

/* Opt mode through the event loop: aio_connect stops in negotiating,
 * where the direction is 0.
 */
static void
test_aio_opt (const char *sock)
{
  struct nbd_handle *h = new_handle ();
  int i;

  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  CHECK_EQ (nbd_aio_connect_unix (h, sock), 0);
  for (i = 0; i < 1000 && nbd_aio_is_connecting (h); i++)
    if (loop_once (h, 5000) == -1)
      break;
  CHECK_STATE (h, 0, 0, 1, 0, 0, 0, 0);
  CHECK (state_is (h, "NEGOTIATING"), "state: %s", nbd_connection_state (h));
  CHECK_EQ (nbd_aio_get_direction (h), 0);
  CHECK_EQ (nbd_aio_opt_go (h, NBD_NULL_COMPLETION), 0);
  for (i = 0; i < 1000 && nbd_aio_is_connecting (h); i++)
    if (loop_once (h, 5000) == -1)
      break;
  CHECK_STATE (h, 0, 0, 0, 1, 0, 0, 0);
  CHECK_EQ (nbd_get_size (h), SIZE);
  nbd_close (h);
}

int
main (void)
{
  struct server s;

  alarm (60);
  if (!have_program ("nbdkit")) {
    fprintf (stderr, "%s: nbdkit not found, skipping\n", __FILE__);
    exit (77);
  }
  if (start_nbdkit (&s, "--filter=delay", "pattern", "1M", "rdelay=200ms",
                    NULL) == -1) {
    fprintf (stderr, "could not start nbdkit\n");
    exit (EXIT_FAILURE);
  }
  test_lifecycle (s.sock);
  test_shutdown (s.sock);
  test_aio_opt (s.sock);
  server_stop (&s);
  return check_status ("test-event-loop");
}
