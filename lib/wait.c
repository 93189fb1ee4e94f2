/* The one place that waits.
 *
 * Every blocking call (commands, connects, options, nbd_shutdown) and
 * nbd_poll / nbd_poll2 wait here, so threads, deadlines and cancellation
 * are properties of this file rather than of each call.
 *
 * Threads.  The handle lock guards the handle's state; it is released
 * only around poll(2).  At most one thread at a time, the leader
 * (h->leader_polling), polls the socket; when poll returns it takes the
 * lock back, runs the engine for everyone (completing whatever replies
 * arrived, anybody's) and counts a round (h->rounds).  The other waiting
 * threads, followers, sleep each on a semaphore of their own (struct
 * waiter, on h->waiters) and are woken only when there is something for
 * them: their command completed, the connection died, or the leader left
 * and one of them must lead next.  Wakeups are collected on h->to_wake and
 * posted once the lock is free (right before the leader's next poll), so
 * a woken follower does not block on the lock the leader still holds.
 * They are posted as a chain: the poster posts the first, and each woken
 * follower posts the next as soon as it runs.  So the leader is back in
 * poll after one post, and the woken threads, most of which call again
 * at once, reach the lock one after another instead of as a herd.
 * A follower whose command completed normally is handed its result by
 * the completing thread, which retires the command for it: it returns
 * without taking the lock again (nbd_internal_note_lock_released tells
 * its generated entry point not to unlock).
 * nbd_poll callers that find a leader wait on h->progress for its round.
 * So N threads with blocking calls on one handle have N commands in
 * flight together.
 *
 * The leader also polls h->wake_fd, an eventfd that other threads write
 * when the leader's poll set has become stale (output queued that the
 * socket would not take, the socket closed) and that nbd_ext_cancel
 * writes (async-signal-safe: an atomic flag, a write, and a shutdown of
 * the socket for programs that poll it themselves).
 *
 * Deadlines (the request and connect timeouts, timeouts.c) bound each
 * poll; when one passes, the leader ends the connection before it looks
 * at the socket.  For programs that poll the socket themselves, the
 * watchdog thread (timeouts.c) makes their poll return after a passed
 * request deadline.
 *
 * Invariants:
 *  - h->leader_polling is true only while its thread is inside poll(2)
 *    without the lock; nobody runs the engine then except under the lock;
 *  - a thread only waits here at lock depth 1: calls from callbacks (the
 *    only way to be deeper) are refused by nbd_internal_refuse_in_callback
 *    before they reach this file.
 */
#include <config.h>

#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t
nbd_internal_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

int
nbd_internal_wait_init (struct nbd_handle *h)
{
  h->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (h->wake_fd == -1) {
    set_error (errno, "eventfd");
    return -1;
  }
  if (pthread_cond_init (&h->progress, NULL) != 0) {
    set_error (ENOMEM, "pthread_cond_init");
    close (h->wake_fd);
    h->wake_fd = -1;
    return -1;
  }
  {
    pthread_condattr_t attr;
    int r;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    r = pthread_cond_init (&h->watchdog_cond, &attr);
    pthread_condattr_destroy (&attr);
    if (r != 0) {
      set_error (ENOMEM, "pthread_cond_init");
      pthread_cond_destroy (&h->progress);
      close (h->wake_fd);
      h->wake_fd = -1;
      return -1;
    }
  }
  return 0;
}

void
nbd_internal_wait_free (struct nbd_handle *h)
{
  nbd_internal_watchdog_stop (h);
  pthread_cond_destroy (&h->watchdog_cond);
  if (h->wake_fd >= 0)
    close (h->wake_fd);
  h->wake_fd = -1;
  pthread_cond_destroy (&h->progress);
}

/* Async-signal-safe: only write(2). */
static void
wake (struct nbd_handle *h)
{
  uint64_t one = 1;
  ssize_t r = write (h->wake_fd, &one, sizeof one);
  (void) r;                     /* a full counter is still a wakeup */
}

void
nbd_internal_wake_leader (struct nbd_handle *h)
{
  if (h->leader_polling)
    wake (h);
}

/* ---- Followers ---- */

/* Where w sits on h->waiters, or NULL if it is not asleep there (it is
 * on its way already, perhaps posted and running: then its fields must
 * not be touched).
 */
static struct waiter **
find_asleep (struct nbd_handle *h, struct waiter *w)
{
  struct waiter **pp = &h->waiters;

  while (*pp && *pp != w)
    pp = &(*pp)->next;
  return *pp ? pp : NULL;
}

static void
move_to_wake (struct nbd_handle *h, struct waiter **pp)
{
  struct waiter *w = *pp;

  *pp = w->next;
  w->next = h->to_wake;
  h->to_wake = w;
}

void
nbd_internal_wake_waiter (struct nbd_handle *h, struct waiter *w)
{
  struct waiter **pp = find_asleep (h, w);

  if (pp)
    move_to_wake (h, pp);
}

bool
nbd_internal_hand_result (struct nbd_handle *h, struct waiter *w, int error)
{
  struct waiter **pp = find_asleep (h, w);

  if (pp == NULL)
    return false;               /* being woken already (to lead, say) */
  w->retired = true;
  w->error = error;
  move_to_wake (h, pp);
  return true;
}

void
nbd_internal_wake_all_waiters (struct nbd_handle *h)
{
  while (h->waiters)
    nbd_internal_wake_waiter (h, h->waiters);
}

/* Post the followers collected on h->to_wake.  The list is detached
 * under the lock; posting may happen after it is released (each waiter
 * stays blocked, so its record stays valid, until its own post).  Only
 * the first is posted here; it posts the rest (sleep_as_follower).
 * (Posting all here made the woken threads contend for the lock at
 * once: with 16 threads, about 2.3 context switches and 3.1 futex calls
 * per read; chained, 1.7 and 2.7.)
 */
static struct waiter *
take_wakeups (struct nbd_handle *h)
{
  struct waiter *list = h->to_wake;
  h->to_wake = NULL;
  return list;
}

static void
post_wakeups (struct waiter *list)
{
  if (list)
    sem_post (&list->sem);      /* it posts list->next (chained) */
}

void
nbd_internal_flush_wakeups (struct nbd_handle *h)
{
  if (h->to_wake)
    post_wakeups (take_wakeups (h));
}

/* A thread that may have been the leader stops waiting: if followers
 * remain and nobody polls, one of them must lead next.
 */
static void
leave_wait (struct nbd_handle *h)
{
  if (!h->leader_polling && h->waiters)
    nbd_internal_wake_waiter (h, h->waiters);
  nbd_internal_flush_wakeups (h);
}

/* Sleep while another thread leads, until woken (see above).  cookie:
 * the command waited for, 0 if none.  Returns 0 when woken to look again
 * (lock held), or, when the command was retired for this thread (its
 * result in *error): 1 with the lock released and noted, 2 with the lock
 * held (the note could not be made).
 */
static int
sleep_as_follower (struct nbd_handle *h, uint64_t cookie, int *error)
{
  struct waiter w = { .retired = false };
  struct command *cmd = cookie ? nbd_internal_find_command (h, cookie) : NULL;

  /* Queued output the leader's poll does not know about yet. */
  if (nbd_internal_has_pending_output (h))
    wake (h);
  sem_init (&w.sem, 0, 0);
  w.next = h->waiters;
  h->waiters = &w;
  if (cmd)
    cmd->waiter = &w;
  pthread_mutex_unlock (&h->lock);
  while (sem_wait (&w.sem) == -1 && errno == EINTR)
    ;
  post_wakeups (w.next);       /* the rest of the chain, see post_wakeups */
  sem_destroy (&w.sem);
  if (w.retired) {
    *error = w.error;
    if (nbd_internal_note_lock_released ())
      return 1;
    pthread_mutex_lock (&h->lock);
    return 2;
  }
  pthread_mutex_lock (&h->lock);
  /* Woken for another reason than completion: the command must not keep
   * a pointer to this stack frame.
   */
  if (cookie && (cmd = nbd_internal_find_command (h, cookie)) && cmd->waiter == &w)
    cmd->waiter = NULL;
  return 0;
}

/* Written by hand, not generated: an entry point takes the lock and
 * touches thread-local error state, neither of which a signal handler
 * may do.  Only atomics, write(2) and shutdown(2) here.
 *
 * The wake fd ends the library's own waits.  Shutting the socket down
 * ends a program's own poll on nbd_aio_get_fd (it reports the socket
 * readable and writable), and tells the server at once; whichever call
 * drives the handle next sees the pending cancel before it looks at the
 * socket, so the connection ends with ECANCELED rather than as an EOF.
 */
int
nbd_ext_cancel (struct nbd_handle *h)
{
  if (h == NULL)
    return -1;
  atomic_store (&h->cancel_requested, true);
  wake (h);
  nbd_internal_shut_for_cancel (h);
  return 0;
}

/* ---- One round of the leader ---- */

/* Wait (lock released) until the socket, the wake fd, extra_fd or a
 * deadline says something, then run the engine.  timeout: ms, -1 none.
 * Returns -1 (error set), 0 (timeout), 1 (the engine ran, or extra_fd is
 * readable).
 */
static int
leader_round (struct nbd_handle *h, int extra_fd, int timeout)
{
  struct pollfd fds[3];
  unsigned dir;
  uint64_t deadline;
  int r, n = 2, fd, err;

  deadline = nbd_internal_next_deadline (h);
  if (nbd_internal_check_deadlines_at (h, deadline ? nbd_internal_now_ns () : 0) == -1)
    return -1;

  /* Work that needs no waiting first: requests queued but unsent go out
   * now (the poll then waits for replies only), bytes buffered above
   * the socket are decoded.
   */
  if (h->state == STATE_TRANSMISSION && nbd_internal_has_pending_output (h)
      && nbd_internal_transmit (h) == -1)
    return -1;
  if (h->ops && h->ops->pending (h)) {
    r = nbd_internal_run (h, true, false);
    h->rounds++;
    pthread_cond_broadcast (&h->progress);
    return r == -1 ? -1 : 1;
  }

  dir = nbd_unlocked_aio_get_direction (h);
  if (dir == 0 || h->fd < 0) {
    set_error (EINVAL, "nothing to poll for: the handle is %s",
               nbd_internal_state_name (h));
    return -1;
  }
  deadline = nbd_internal_next_deadline (h);
  if (deadline) {
    uint64_t now = nbd_internal_now_ns ();
    uint64_t left = deadline > now ? (deadline - now + 999999) / 1000000 : 0;
    if (left > INT_MAX)
      left = INT_MAX;
    if (timeout < 0 || (uint64_t) timeout > left)
      timeout = (int) left;
  }

  fd = h->fd;
  fds[0].fd = fd;
  fds[0].events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
    | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
  fds[1].fd = h->wake_fd;
  fds[1].events = POLLIN;
  if (extra_fd >= 0) {
    fds[2].fd = extra_fd;
    fds[2].events = POLLIN;
    n = 3;
  }
  for (int i = 0; i < n; i++)
    fds[i].revents = 0;

  h->leader_polling = true;
  {
    struct waiter *wakeups = take_wakeups (h);
    pthread_mutex_unlock (&h->lock);
    post_wakeups (wakeups);
  }
  do
    r = poll (fds, (nfds_t) n, timeout);
  while (r == -1 && errno == EINTR && !atomic_load (&h->cancel_requested));
  err = errno;
  pthread_mutex_lock (&h->lock);
  h->leader_polling = false;

  if (fds[1].revents & POLLIN) {
    uint64_t count;
    ssize_t rr = read (h->wake_fd, &count, sizeof count);
    (void) rr;
  }
  if (r == -1 && err != EINTR)
    set_error (err, "poll");
  /* (EINTR ends the poll only when a cancel is pending: handled here.) */
  else if (nbd_internal_check_deadlines_at (h, nbd_internal_now_ns ()) == -1)
    r = -1;
  else if (r > 0 && h->fd == fd
           && (fds[0].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))) {
    bool rd = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    bool wr = (fds[0].revents & (POLLOUT | POLLERR)) != 0;
    r = nbd_internal_run (h, rd, wr) == -1 ? -1 : 1;
  }
  /* Otherwise: a timeout (0), extra_fd readable or only the wake fd (the
   * poll set changed): a round with no news for the engine.
   */
  h->rounds++;
  pthread_cond_broadcast (&h->progress);
  return r;
}

/* ---- nbd_poll and nbd_poll2 ---- */

/* Another thread is the leader: wait for it to finish a round (progress,
 * 1) or for the timeout (0).
 */
static int
follow_one_round (struct nbd_handle *h, int timeout)
{
  uint64_t round = h->rounds;
  struct timespec until;

  if (timeout >= 0) {
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += timeout / 1000;
    until.tv_nsec += (long) (timeout % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
  }
  while (h->rounds == round) {
    int r = timeout >= 0 ? pthread_cond_timedwait (&h->progress, &h->lock, &until)
      : pthread_cond_wait (&h->progress, &h->lock);
    if (r == ETIMEDOUT)
      return h->rounds == round ? 0 : 1;
  }
  return 1;
}

static int
poll_once (struct nbd_handle *h, int extra_fd, int timeout)
{
  int r;

  if (h->leader_polling)
    return follow_one_round (h, timeout);
  r = leader_round (h, extra_fd, timeout);
  leave_wait (h);
  return r;
}

int
nbd_unlocked_poll (struct nbd_handle *h, int timeout)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return poll_once (h, -1, timeout);
}

int
nbd_unlocked_poll2 (struct nbd_handle *h, int fd, int timeout)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return poll_once (h, fd, timeout);
}

/* ---- Blocking calls ---- */

/* Why the connection died, for a thread that did not see it happen. */
void
nbd_internal_report_dead (struct nbd_handle *h)
{
  if (h->dead_msg)
    set_error (h->dead_errno ? h->dead_errno : ENOTCONN, "%s", h->dead_msg);
  else if (h->dead_errno)       /* no memory was left for the message */
    set_error (h->dead_errno, "the connection is dead: %s",
               strerror (h->dead_errno));
  else
    set_error (ENOTCONN, "the connection is dead");
}

/* Wait until done() or the connection is no longer usable for it.
 * cookie: the command waited for (its completion wakes this thread
 * directly), 0 if none.
 */
static int
wait_loop (struct nbd_handle *h, bool (*done) (struct nbd_handle *h, void *arg),
           void *arg, uint64_t cookie, int *error)
{
  for (;;) {
    if (done (h, arg))
      return 0;
    if (h->state == STATE_DEAD) {
      nbd_internal_report_dead (h);
      return -1;
    }
    if (h->state == STATE_CLOSED || h->state == STATE_CREATED
        || h->state == STATE_NEGOTIATING) {
      set_error (ENOTCONN, "the connection is %s",
                 h->state == STATE_CLOSED ? "closed" : "not established");
      return -1;
    }
    if (h->leader_polling) {
      int r = sleep_as_follower (h, cookie, error);
      if (r > 0)
        return r;
      continue;
    }
    if (leader_round (h, -1, -1) == -1)
      return -1;
  }
}

static int
wait_for (struct nbd_handle *h, bool (*done) (struct nbd_handle *h, void *arg),
          void *arg, uint64_t cookie, int *error)
{
  int r = wait_loop (h, done, arg, cookie, error);
  /* A follower retired for (1, 2) never led: nothing to hand on. */
  if (r <= 0)
    leave_wait (h);
  return r;
}

int
nbd_internal_wait_until (struct nbd_handle *h,
                         bool (*done) (struct nbd_handle *h, void *arg),
                         void *arg)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  /* Requests queued but not yet written go out before the first wait. */
  if (h->state == STATE_TRANSMISSION && nbd_internal_has_pending_output (h)
      && nbd_internal_transmit (h) == -1)
    return -1;
  return wait_for (h, done, arg, 0, NULL);
}

static bool
command_gone (struct nbd_handle *h, void *arg)
{
  return nbd_internal_find_command (h, *(uint64_t *) arg) == NULL;
}

int
nbd_internal_wait_command (struct nbd_handle *h, uint64_t cookie, int *error)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (h->state == STATE_TRANSMISSION && nbd_internal_has_pending_output (h)
      && nbd_internal_transmit (h) == -1)
    return -1;
  return wait_for (h, command_gone, &cookie, cookie, error);
}

static bool
connected_or_failed (struct nbd_handle *h, void *arg)
{
  (void) arg;
  /* CREATED again: a TCP connect that ran out of addresses. */
  return h->state == STATE_TRANSMISSION || h->state == STATE_NEGOTIATING
    || h->state == STATE_DEAD || h->state == STATE_CLOSED
    || h->state == STATE_CREATED;
}

int
nbd_internal_wait_connected (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  /* A fresh error from this call, not a stale one, must explain failure. */
  if (nbd_internal_run (h, true, true) == -1)
    return -1;
  if (wait_for (h, connected_or_failed, NULL, 0, NULL) == -1)
    return -1;
  if (h->state == STATE_CREATED) {
    if (!nbd_get_error ())
      set_error (ECONNREFUSED, "connect: every address failed");
    return -1;
  }
  if (h->state == STATE_DEAD || h->state == STATE_CLOSED) {
    if (h->dead_msg)
      nbd_internal_report_dead (h);
    else if (!nbd_get_error ())
      set_error (ECONNRESET, "the connection failed during the handshake");
    return -1;
  }
  return 0;
}
