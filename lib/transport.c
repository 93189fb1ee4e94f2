/* The plain-socket transport.  The engine calls only these operations,
 * so a TLS transport can slot in beside it.
 */
#include <config.h>

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* ---- Owning the socket ----
 *
 * nbd_ext_cancel shuts the socket down so that a program blocked in its
 * own poll(2) on nbd_aio_get_fd wakes up too.  It runs in any thread or
 * in a signal handler, without the lock, so it uses h->cancel_fd, and
 * closing must not free that descriptor number while a cancel is between
 * reading it and its shutdown(2): the closer withdraws the copy first,
 * then waits for cancels_using to drop to zero.  A cancel that read the
 * copy counted itself before, so the closer sees it (sequentially
 * consistent atomics); one that reads it after sees -1.  The wait cannot
 * deadlock on a signal handler in the closing thread: the handler runs
 * to its end before the thread goes on.
 *
 * After fork the child's copy of the handle shares the parent's socket:
 * a cancel in the child (an inherited signal handler, say) must not end
 * the parent's connection, so only the process that adopted the socket
 * shuts it down, and only it waits for cancels (a fork in the middle of
 * one leaves the child's count stuck).
 */
void
nbd_internal_adopt_fd (struct nbd_handle *h, int fd)
{
  assert (h->fd == -1);
  h->fd = fd;
  h->fd_owner = getpid ();
  atomic_store (&h->cancel_fd, fd);
}

void
nbd_internal_close_fd (struct nbd_handle *h)
{
  if (h->fd < 0)
    return;
  atomic_store (&h->cancel_fd, -1);
  if (h->fd_owner == getpid ()) {
    /* A cancel is a few instructions from done; but under a real-time
     * policy yielding may not let a lower-priority one run: sleep then.
     */
    for (unsigned spins = 0; atomic_load (&h->cancels_using) > 0; spins++) {
      if (spins < 100)
        sched_yield ();
      else
        nanosleep (&(struct timespec) { .tv_nsec = 1000000 }, NULL);
    }
  }
  close (h->fd);
  h->fd = -1;
}

void
nbd_internal_shut_for_cancel (struct nbd_handle *h)
{
  int saved_errno = errno;      /* a signal handler must not change it */
  int fd;

  atomic_fetch_add (&h->cancels_using, 1);
  fd = atomic_load (&h->cancel_fd);
  if (fd >= 0 && h->fd_owner == getpid ())
    shutdown (fd, SHUT_RDWR);
  atomic_fetch_sub (&h->cancels_using, 1);
  errno = saved_errno;
}

/* ---- The transport ---- */

static ssize_t
socket_recv (struct nbd_handle *h, void *buf, size_t len)
{
  ssize_t r;

  do
    r = recv (h->fd, buf, len, 0);
  while (r == -1 && errno == EINTR);
  if (r > 0)
    h->bytes_received += (uint64_t) r;
  return r;
}

static ssize_t
socket_send (struct nbd_handle *h, const struct iovec *iov, int iovcnt,
             bool more)
{
  struct msghdr msg = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) iovcnt };
  ssize_t r;

  do
    r = sendmsg (h->fd, &msg, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
  while (r == -1 && errno == EINTR);
  if (r > 0)
    h->bytes_sent += (uint64_t) r;
  return r;
}

static bool
socket_pending (struct nbd_handle *h)
{
  (void) h;
  return false;
}

static int
socket_shut_writes (struct nbd_handle *h)
{
  return shutdown (h->fd, SHUT_WR);
}

static void
socket_close (struct nbd_handle *h)
{
  nbd_internal_close_fd (h);
}

const struct transport_ops nbd_internal_socket_ops = {
  .recv = socket_recv,
  .send = socket_send,
  .pending = socket_pending,
  .shut_writes = socket_shut_writes,
  .close = socket_close,
};
