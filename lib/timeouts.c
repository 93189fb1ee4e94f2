/* Deadlines: the request and connect timeouts of <libnbd-ext.h>.
 *
 * A command issued under a request timeout carries a deadline (its issue
 * time plus the timeout); a connect under a connect timeout has one for
 * the whole connect and handshake.  This file computes the earliest one
 * (wait.c bounds every poll by it), ends the connection when one passes
 * or a cancel is pending, answers event loops (nbd_ext_aio_get_timeout /
 * nbd_ext_aio_notify_timeout), runs the watchdog for programs that poll
 * the socket themselves, holds the settings (calls, environment, URI
 * values) and retries a blocking connect while its timeout runs.
 *
 * Invariant: in-flight commands with a deadline are on h->oldest ..
 * h->newest in issue order, with non-decreasing deadlines, so the oldest
 * one's passes first (the setter restamps them all when it changes).
 */
#include <config.h>

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- Deadlines ---- */

/* The earliest deadline in force, 0 if none.  In-flight commands are
 * kept in issue order and their deadlines never decrease along that
 * order (the timeout setter restamps them), so the oldest one's is the
 * first to pass.
 */
uint64_t
nbd_internal_next_deadline (struct nbd_handle *h)
{
  uint64_t d = 0;

  /* The connect timeout starts when the library first waits on a
   * connection (a blocking connect call waits at once; an event loop asks
   * nbd_ext_aio_get_timeout), and stays the same across retries.
   */
  if (h->state == STATE_CONNECTING || h->state == STATE_HANDSHAKE) {
    nbd_internal_connect_deadline_start (h);
    d = h->connect_deadline;
  }
  if (h->oldest && h->oldest->deadline && (d == 0 || h->oldest->deadline < d))
    d = h->oldest->deadline;
  return d;
}

/* End the connection if a deadline passed or a cancel is pending:
 * returns -1 (error set, handle dead) or 0.
 */
int
nbd_internal_check_deadlines_at (struct nbd_handle *h, uint64_t now)
{
  uint64_t d;

  if (nbd_internal_act_on_cancel (h) == -1)
    return -1;
  d = nbd_internal_next_deadline (h);
  if (d == 0 || now < d)
    return 0;
  if (h->state == STATE_CONNECTING || h->state == STATE_HANDSHAKE)
    nbd_internal_kill (h, ETIMEDOUT, ETIMEDOUT,
                       "connect timed out: the connection and handshake took "
                       "longer than the connect timeout");
  else
    nbd_internal_request_timed_out (h);
  return -1;
}

void
nbd_internal_request_timed_out (struct nbd_handle *h)
{
  nbd_internal_kill (h, ETIMEDOUT, ETIMEDOUT,
                     "request timed out: no complete reply within the "
                     "request timeout");
}

int
nbd_internal_check_deadlines (struct nbd_handle *h)
{
  if (!atomic_load (&h->cancel_requested) && nbd_internal_next_deadline (h) == 0)
    return 0;                   /* the common case: no clock read */
  return nbd_internal_check_deadlines_at (h, nbd_internal_now_ns ());
}

int64_t
nbd_unlocked_ext_aio_get_timeout (struct nbd_handle *h)
{
  uint64_t d, now;

  if (atomic_load (&h->cancel_requested))
    return 0;
  d = nbd_internal_next_deadline (h);
  if (d == 0)
    return -1;
  now = nbd_internal_now_ns ();
  if (now >= d)
    return 0;
  /* Round up: waking a little late is harmless, early means a spin. */
  return (int64_t) ((d - now + 999999) / 1000000);
}

int
nbd_unlocked_ext_aio_notify_timeout (struct nbd_handle *h)
{
  return nbd_internal_check_deadlines_at (h, nbd_internal_now_ns ());
}

/* ---- The request-timeout watchdog ----
 *
 * The library's own waits bound their poll by the earliest deadline.  A
 * program that polls nbd_aio_get_fd itself (nbdcopy, say) and never asks
 * nbd_ext_aio_get_timeout would wait for ever.  So, once a command has a
 * deadline, a small thread sleeps until it; if it passes (by a grace
 * period, so that a program that does ask acts first) while nobody in
 * the library is polling, the thread shuts the socket's reading side:
 * the program's poll reports it readable, and its nbd_aio_notify_read
 * (or any call that drives the connection) ends the connection with
 * ETIMEDOUT, in the program's own thread.  The thread itself never runs
 * a callback nor changes the handle's state.
 */
#define WATCHDOG_GRACE_NS (200 * 1000000u)

static void *
watchdog_main (void *arg)
{
  struct nbd_handle *h = arg;

  pthread_mutex_lock (&h->lock);
  while (!h->watchdog_stop) {
    uint64_t d = h->state == STATE_TRANSMISSION && h->oldest && h->oldest->deadline
      ? h->oldest->deadline + WATCHDOG_GRACE_NS : 0;
    uint64_t now = nbd_internal_now_ns ();

    if (d == 0 || h->watchdog_fired)
      pthread_cond_wait (&h->watchdog_cond, &h->lock);
    else if (now < d) {
      struct timespec until = { .tv_sec = (time_t) (d / 1000000000),
                                .tv_nsec = (long) (d % 1000000000) };
      pthread_cond_timedwait (&h->watchdog_cond, &h->lock, &until);
    }
    else if (!h->leader_polling && h->fd >= 0) {
      /* (No debug message: that could run the program's debug callback
       * in this thread.)
       */
      shutdown (h->fd, SHUT_RD);
      h->watchdog_fired = true;
      h->read_side_shut = true;
    }
    else {
      /* A leader polls: its own poll ends at the deadline.  Look again
       * shortly in case it leaves without acting on it.
       */
      struct timespec until = { .tv_sec = (time_t) ((now + 10000000) / 1000000000),
                                .tv_nsec = (long) ((now + 10000000) % 1000000000) };
      pthread_cond_timedwait (&h->watchdog_cond, &h->lock, &until);
    }
  }
  pthread_mutex_unlock (&h->lock);
  return NULL;
}

void
nbd_internal_watchdog_kick (struct nbd_handle *h)
{
  if (h->watchdog_pid == getpid ()) {
    pthread_cond_signal (&h->watchdog_cond);  /* it may sleep with no deadline */
    return;
  }
  {
    sigset_t all, old;
    sigfillset (&all);
    /* The thread takes no signal meant for the program's threads. */
    pthread_sigmask (SIG_SETMASK, &all, &old);
    if (pthread_create (&h->watchdog, NULL, watchdog_main, h) == 0)
      h->watchdog_pid = getpid ();
    else
      debug (h, "cannot start the request-timeout watchdog: %s", strerror (errno));
    pthread_sigmask (SIG_SETMASK, &old, NULL);
  }
}

void
nbd_internal_watchdog_stop (struct nbd_handle *h)
{
  /* (After fork, the child has the record but not the thread.) */
  if (h->watchdog_pid == getpid ()) {
    pthread_mutex_lock (&h->lock);
    h->watchdog_stop = true;
    pthread_cond_signal (&h->watchdog_cond);
    pthread_mutex_unlock (&h->lock);
    pthread_join (h->watchdog, NULL);
  }
  h->watchdog_pid = 0;
}

/* ---- Timeout settings ---- */

int
nbd_unlocked_ext_set_request_timeout (struct nbd_handle *h, uint32_t ms)
{
  h->request_timeout_ms = ms;
  nbd_internal_restamp_deadlines (h);
  nbd_internal_wake_leader (h);   /* its poll timeout is stale */
  /* Commands already in flight: the watchdog must know (and forget a
   * shutdown it made for the old deadline).
   */
  h->watchdog_fired = false;
  if (h->oldest)
    nbd_internal_watchdog_kick (h);
  return 0;
}

int64_t
nbd_unlocked_ext_get_request_timeout (struct nbd_handle *h)
{
  return h->request_timeout_ms;
}

int
nbd_unlocked_ext_set_connect_timeout (struct nbd_handle *h, uint32_t ms)
{
  h->connect_timeout_ms = ms;
  return 0;
}

int64_t
nbd_unlocked_ext_get_connect_timeout (struct nbd_handle *h)
{
  return h->connect_timeout_ms;
}

void
nbd_internal_connect_deadline_start (struct nbd_handle *h)
{
  if (h->connect_timeout_ms && h->connect_deadline == 0)
    h->connect_deadline = nbd_internal_now_ns ()
      + (uint64_t) h->connect_timeout_ms * 1000000;
}

/* "SECONDS" with optional decimals ("5", "0.25") to milliseconds, at most
 * UINT32_MAX; -1 if malformed.
 */
int64_t
nbd_internal_parse_timeout (const char *s)
{
  uint64_t ms = 0, scale = 1000;
  bool digits = false;

  for (; *s >= '0' && *s <= '9'; s++) {
    digits = true;
    ms = ms * 10 + (uint64_t) (*s - '0') * 1000;
    if (ms > UINT32_MAX)
      return -1;
  }
  if (*s == '.') {
    for (s++; *s >= '0' && *s <= '9'; s++) {
      digits = true;
      scale /= 10;
      ms += (uint64_t) (*s - '0') * scale;   /* digits past ms are dropped */
    }
  }
  if (!digits || *s != '\0' || ms > UINT32_MAX)
    return -1;
  return (int64_t) ms;
}

/* nbd_create: LIBNBD_CONNECT_TIMEOUT and LIBNBD_REQUEST_TIMEOUT (seconds)
 * give the handle's defaults; a malformed value is ignored (said in the
 * debug output) so that a typo cannot make every program fail.
 */
void
nbd_internal_timeouts_from_env (struct nbd_handle *h)
{
  static const struct { const char *name; bool connect; } vars[] = {
    { "LIBNBD_CONNECT_TIMEOUT", true }, { "LIBNBD_REQUEST_TIMEOUT", false },
  };

  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv (vars[i].name);
    int64_t ms;
    if (!v || !*v)
      continue;
    ms = nbd_internal_parse_timeout (v);
    if (ms < 0) {
      debug (h, "ignoring %s=%s: not a number of seconds", vars[i].name, v);
      continue;
    }
    if (vars[i].connect)
      h->connect_timeout_ms = (uint32_t) ms;
    else
      h->request_timeout_ms = (uint32_t) ms;
  }
}

/* ---- Blocking connects, retried while the connect timeout runs ---- */

/* Sleep up to ms (lock held: connects are serialised) unless a cancel
 * arrives: -1 (error set, handle dead) if cancelled.
 */
static int
backoff_sleep (struct nbd_handle *h, uint64_t ms)
{
  struct pollfd pfd = { .fd = h->wake_fd, .events = POLLIN };
  int r;

  do
    r = poll (&pfd, 1, (int) ms);
  while (r == -1 && errno == EINTR && !atomic_load (&h->cancel_requested));
  if (pfd.revents & POLLIN) {
    uint64_t count;
    ssize_t rr = read (h->wake_fd, &count, sizeof count);
    (void) rr;
  }
  if (nbd_internal_act_on_cancel (h) == -1)
    return -1;
  return 0;
}

int
nbd_internal_connect_blocking (struct nbd_handle *h,
                               int (*start) (struct nbd_handle *h, const void *args),
                               const void *args, bool retry)
{
  uint64_t backoff = 10;        /* ms, doubling up to 1 s */

  for (;;) {
    uint64_t now;
    int err;

    if (start (h, args) == 0 && nbd_internal_wait_connected (h) == 0)
      return 0;
    err = nbd_get_errno ();
    if (!retry || h->connect_timeout_ms == 0
        || (err != ECONNREFUSED && err != ENOENT)
        || (h->state != STATE_DEAD && h->state != STATE_CREATED))
      return -1;
    nbd_internal_connect_deadline_start (h);
    now = nbd_internal_now_ns ();
    if (now >= h->connect_deadline) {
      set_error (ETIMEDOUT, "connect timed out after %" PRIu32 " ms: the server "
                 "was still not accepting connections (%s)",
                 h->connect_timeout_ms, strerror (err));
      return -1;
    }
    debug (h, "connect failed (%s): trying again in %" PRIu64 " ms",
           strerror (err), backoff);
    nbd_internal_connect_reset (h);
    if ((h->connect_deadline - now) / 1000000 < backoff)
      backoff = (h->connect_deadline - now + 999999) / 1000000;
    if (backoff_sleep (h, backoff) == -1)
      return -1;
    backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
  }
}
