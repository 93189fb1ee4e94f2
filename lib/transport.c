/* The plain-socket transport.  The engine calls only these operations,
 * so a TLS transport can slot in beside it.
 */
#include <config.h>

#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

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
  close (h->fd);
  h->fd = -1;
}

const struct transport_ops nbd_internal_socket_ops = {
  .recv = socket_recv,
  .send = socket_send,
  .pending = socket_pending,
  .shut_writes = socket_shut_writes,
  .close = socket_close,
};
