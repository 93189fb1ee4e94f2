/* The connection engine's driver: public states derived from the
 * internal one, the run loop that performs non-blocking I/O for the
 * current phase, and the event-loop API built on it.
 *
 * Phases live in their own files: connect.c (sockets), handshake.c
 * (greeting and options), transmit.c (requests), reply.c (replies).
 */
#include <config.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

unsigned
nbd_internal_public_state (struct nbd_handle *h)
{
  switch (h->state) {
  case STATE_CREATED: return PUBLIC_CREATED;
  case STATE_CONNECTING: case STATE_HANDSHAKE: return PUBLIC_CONNECTING;
  case STATE_NEGOTIATING: return PUBLIC_NEGOTIATING;
  case STATE_TRANSMISSION: return PUBLIC_CONNECTED;
  case STATE_CLOSED: return PUBLIC_CLOSED;
  case STATE_DEAD: return PUBLIC_DEAD;
  }
  return PUBLIC_DEAD;
}

static bool
is_processing (struct nbd_handle *h)
{
  return h->to_send_head != NULL || h->nr_in_flight > 0;
}

int
nbd_internal_refuse_in_callback (struct nbd_handle *h)
{
  if (h->in_callback == 0)
    return 0;
  set_error (EDEADLK, "this call cannot be made from a callback of the same "
             "handle: it would wait for or drive the connection while the "
             "library is in the middle of delivering a reply");
  return -1;
}

const char *
nbd_internal_state_name (struct nbd_handle *h)
{
  switch (h->state) {
  case STATE_CREATED: return "CREATED";
  case STATE_CONNECTING: return "CONNECTING";
  case STATE_HANDSHAKE: return "MAGIC";
  case STATE_NEGOTIATING: return "NEGOTIATING";
  case STATE_TRANSMISSION: return is_processing (h) ? "PROCESSING" : "READY";
  case STATE_CLOSED: return "CLOSED";
  case STATE_DEAD: return "DEAD";
  }
  return "DEAD";
}

bool
nbd_internal_state_allows (struct nbd_handle *h, unsigned mask, const char *text)
{
  if (nbd_internal_public_state (h) & mask)
    return true;
  set_error (h->state == STATE_CREATED ? ENOTCONN : EINVAL,
             "invalid state: %s: the handle must be %s",
             nbd_internal_state_name (h), text);
  return false;
}

void
nbd_internal_close_socket (struct nbd_handle *h)
{
  if (h->fd >= 0 && h->ops)
    h->ops->close (h);
  else if (h->fd >= 0) {
    close (h->fd);
    h->fd = -1;
  }
}

/* The connection is unusable: every command still pending fails.  The
 * error is left for the caller that observed it.
 */
void
nbd_internal_set_dead (struct nbd_handle *h, int errnum, const char *msg)
{
  if (h->state == STATE_DEAD || h->state == STATE_CLOSED)
    return;
  if (msg)
    set_error (errnum, "%s", msg);
  debug (h, "connection is dead: %s", msg ? msg : "");
  h->state = STATE_DEAD;
  nbd_internal_close_socket (h);
  nbd_internal_handshake_abort (h, errnum ? errnum : ENOTCONN);
  /* Commands lost with the connection fail with ENOTCONN whatever broke
   * it (documented in nbd_aio_in_flight and nbd_aio_command_completed).
   */
  nbd_internal_abort_commands (h, ENOTCONN);
}

/* One pass of handshake I/O: write what is pending, then read what is
 * expected, then hand the completed step to handshake.c.
 * Returns 1 to call again, 0 to wait for the socket, -1 on error.
 */
static int
run_handshake (struct nbd_handle *h)
{
  /* After NBD_OPT_STARTTLS was acknowledged: the TLS handshake (tls.c)
   * runs first, then handshake.c goes on (over TLS).
   */
  if (h->tls_handshaking) {
    int r = nbd_internal_tls_handshake (h);
    if (r == -1) {
      nbd_internal_set_dead (h, nbd_get_errno (), NULL);
      return -1;
    }
    if (r == 0)
      return 0;
  }
  if (h->hs_wdone < h->hs_wlen) {
    struct iovec iov = { h->hs_wbuf + h->hs_wdone, h->hs_wlen - h->hs_wdone };
    ssize_t r = h->ops->send (h, &iov, 1, false);
    if (r == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      nbd_internal_set_dead (h, errno, "send: failed to write to the server");
      return -1;
    }
    h->hs_wdone += (size_t) r;
    return 1;
  }
  if (h->hs_rdone < h->hs_rlen) {
    ssize_t r = h->ops->recv (h, h->hs_rbuf + h->hs_rdone, h->hs_rlen - h->hs_rdone);
    if (r == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      nbd_internal_set_dead (h, errno, "recv: failed to read from the server");
      return -1;
    }
    if (r == 0) {
      nbd_internal_set_dead (h, ECONNRESET,
                             "recv: server closed the connection during the handshake");
      return -1;
    }
    h->hs_rdone += (size_t) r;
    return 1;
  }
  if (nbd_internal_handshake_io_done (h) == -1) {
    if (h->state != STATE_DEAD && h->state != STATE_CLOSED)
      nbd_internal_set_dead (h, nbd_get_errno (), NULL);
    return -1;
  }
  return 1;
}

int
nbd_internal_run (struct nbd_handle *h, bool readable, bool writable)
{
  for (;;) {
    int r;

    switch (h->state) {
    case STATE_CREATED:
    case STATE_NEGOTIATING:
    case STATE_CLOSED:
    case STATE_DEAD:
      return 0;

    case STATE_CONNECTING:
      if (!writable)
        return 0;
      writable = false;
      if (nbd_internal_connect_finished (h) == -1) {
        int err = nbd_get_errno ();
        nbd_internal_set_dead (h, err ? err : ECONNREFUSED, NULL);
        return -1;
      }
      continue;

    case STATE_HANDSHAKE:
      /* The readability report, if any, was the handshake's to take: the
       * transmission phase must not read it as a hint of its own.
       */
      readable = false;
      r = run_handshake (h);
      if (r <= 0)
        return r;
      continue;

    case STATE_TRANSMISSION:
      if (nbd_internal_transmit (h) == -1)
        return -1;
      r = nbd_internal_receive (h, readable);
      if (r == -1)
        return -1;
      /* Replies may have queued new requests from callbacks. */
      if (h->state == STATE_TRANSMISSION && h->to_send_head
          && nbd_internal_transmit (h) == -1)
        return -1;
      return 0;
    }
  }
}

/* ---- Event-loop API ---- */

int
nbd_unlocked_aio_get_fd (struct nbd_handle *h)
{
  if (h->fd < 0) {
    set_error (EINVAL, "the handle has no file descriptor");
    return -1;
  }
  return h->fd;
}

unsigned
nbd_unlocked_aio_get_direction (struct nbd_handle *h)
{
  switch (h->state) {
  case STATE_CONNECTING:
    return LIBNBD_AIO_DIRECTION_WRITE;
  case STATE_HANDSHAKE:
    if (h->tls_handshaking)
      return nbd_internal_tls_direction (h);
    return h->hs_wdone < h->hs_wlen ? LIBNBD_AIO_DIRECTION_WRITE
      : LIBNBD_AIO_DIRECTION_READ;
  case STATE_TRANSMISSION:
    return LIBNBD_AIO_DIRECTION_READ
      | (nbd_internal_has_pending_output (h) ? LIBNBD_AIO_DIRECTION_WRITE : 0);
  default:
    return 0;
  }
}

int
nbd_unlocked_aio_notify_read (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return nbd_internal_run (h, true, false);
}

int
nbd_unlocked_aio_notify_write (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  /* As libnbd: writability is an event only a state that is waiting to
   * write can take.
   */
  if (!(nbd_unlocked_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_WRITE)) {
    set_error (EINVAL, "nbd_aio_notify_write: the handle is %s and is not "
               "waiting to write", nbd_internal_state_name (h));
    return -1;
  }
  return nbd_internal_run (h, false, true);
}

static int
poll_once (struct nbd_handle *h, int extra_fd, int timeout)
{
  struct pollfd fds[2];
  unsigned dir;
  int r, n = 1;

  /* Work that needs no waiting first: requests queued but unsent go out
   * now (the poll then waits for replies only), bytes buffered above
   * the socket are decoded.
   */
  if (h->state == STATE_TRANSMISSION && nbd_internal_has_pending_output (h)
      && nbd_internal_transmit (h) == -1)
    return -1;
  if (h->ops && h->ops->pending (h))
    return nbd_internal_run (h, true, false) == -1 ? -1 : 1;

  dir = nbd_unlocked_aio_get_direction (h);
  if (dir == 0 || h->fd < 0) {
    set_error (EINVAL, "nothing to poll for: the handle is %s",
               nbd_internal_state_name (h));
    return -1;
  }
  fds[0].fd = h->fd;
  fds[0].events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
    | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
  fds[0].revents = 0;
  if (extra_fd >= 0) {
    fds[1].fd = extra_fd;
    fds[1].events = POLLIN;
    fds[1].revents = 0;
    n = 2;
  }
  do
    r = poll (fds, (nfds_t) n, timeout);
  while (r == -1 && errno == EINTR);
  if (r == -1) {
    set_error (errno, "poll");
    return -1;
  }
  if (r == 0)
    return 0;
  if (fds[0].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR)) {
    bool rd = (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    bool wr = (fds[0].revents & (POLLOUT | POLLERR)) != 0;
    if (nbd_internal_run (h, rd, wr) == -1)
      return -1;
  }
  return 1;
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
  while (!done (h, arg)) {
    if (h->state == STATE_DEAD) {
      if (!nbd_get_error ())
        set_error (ENOTCONN, "the connection is dead");
      return -1;
    }
    if (h->state == STATE_CLOSED || h->state == STATE_CREATED
        || h->state == STATE_NEGOTIATING) {
      set_error (ENOTCONN, "the connection is %s",
                 h->state == STATE_CLOSED ? "closed" : "not established");
      return -1;
    }
    if (poll_once (h, -1, -1) == -1)
      return -1;
  }
  return 0;
}

static bool
connected_or_failed (struct nbd_handle *h, void *arg)
{
  (void) arg;
  return h->state == STATE_TRANSMISSION || h->state == STATE_NEGOTIATING
    || h->state == STATE_DEAD || h->state == STATE_CLOSED;
}

int
nbd_internal_wait_connected (struct nbd_handle *h)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  /* A fresh error from this call, not a stale one, must explain failure. */
  if (nbd_internal_run (h, true, true) == -1)
    return -1;
  while (!connected_or_failed (h, NULL))
    if (poll_once (h, -1, -1) == -1)
      return -1;
  if (h->state == STATE_DEAD || h->state == STATE_CLOSED) {
    if (!nbd_get_error ())
      set_error (ECONNRESET, "the connection failed during the handshake");
    return -1;
  }
  return 0;
}

/* ---- State queries ---- */

int
nbd_unlocked_aio_is_created (struct nbd_handle *h)
{
  return h->state == STATE_CREATED;
}

int
nbd_unlocked_aio_is_connecting (struct nbd_handle *h)
{
  return h->state == STATE_CONNECTING || h->state == STATE_HANDSHAKE;
}

int
nbd_unlocked_aio_is_negotiating (struct nbd_handle *h)
{
  return h->state == STATE_NEGOTIATING;
}

int
nbd_unlocked_aio_is_ready (struct nbd_handle *h)
{
  return h->state == STATE_TRANSMISSION && !is_processing (h);
}

int
nbd_unlocked_aio_is_processing (struct nbd_handle *h)
{
  return h->state == STATE_TRANSMISSION && is_processing (h);
}

int
nbd_unlocked_aio_is_dead (struct nbd_handle *h)
{
  return h->state == STATE_DEAD;
}

int
nbd_unlocked_aio_is_closed (struct nbd_handle *h)
{
  return h->state == STATE_CLOSED;
}

const char *
nbd_unlocked_connection_state (struct nbd_handle *h)
{
  switch (h->state) {
  case STATE_CREATED: return "CREATED: handle has been created";
  case STATE_CONNECTING: return "CONNECTING: connecting to the server";
  case STATE_HANDSHAKE: return "MAGIC: handshaking with the server";
  case STATE_NEGOTIATING: return "NEGOTIATING: waiting for an option request";
  case STATE_TRANSMISSION:
    return is_processing (h) ? "PROCESSING: commands are in flight"
      : "READY: connection is ready to issue commands";
  case STATE_CLOSED: return "CLOSED: connection has been closed";
  case STATE_DEAD: return "DEAD: connection is dead";
  }
  return "DEAD: connection is dead";
}
