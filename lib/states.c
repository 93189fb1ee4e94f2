/* The connection engine's driver: public states derived from the
 * internal one, the run loop that performs non-blocking I/O for the
 * current phase, and the event-loop API built on it.
 *
 * Phases live in their own files: connect.c (sockets), handshake.c
 * (greeting and options), transmit.c (requests), reply.c (replies).
 */
#include <config.h>

#include <stdlib.h>
#include <stdio.h>
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

/* As libnbd: "processing" while a request is part-way written or a
 * reply part-way read; a handle that waits for replies which have not
 * started to arrive is "ready" (and may be given more commands).
 * Requests queued for the next batch but not yet started count as
 * issued, as libnbd would already have written them.
 */
static bool
is_processing (struct nbd_handle *h)
{
  return nbd_internal_output_in_progress (h) || h->rx_cmd != NULL
    || h->rbuf_start != h->rbuf_end;
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
  case STATE_CREATED: return "START";
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
  /* A leader polling this fd must not wait on it once it is closed. */
  nbd_internal_wake_leader (h);
  if (h->fd >= 0 && h->ops)
    h->ops->close (h);
  else
    nbd_internal_close_fd (h);
}

static const char cancelled_msg[] = "the call was cancelled (nbd_ext_cancel)";

int
nbd_internal_act_on_cancel (struct nbd_handle *h)
{
  if (!atomic_load (&h->cancel_requested))
    return 0;
  if (h->state == STATE_CLOSED || h->state == STATE_DEAD) {
    atomic_store (&h->cancel_requested, false);
    return 0;
  }
  /* (From CREATED too: a cancel made before a connect call stops it.) */
  nbd_internal_kill (h, ECANCELED, ECANCELED, cancelled_msg);
  return -1;
}

/* The connection is unusable: every command still pending fails with
 * cmd_errnum.  The error (errnum, msg; or, if msg is NULL, the one the
 * caller already set) is left for the caller that observed it and kept
 * in the handle for other threads waiting on it.
 */
void
nbd_internal_kill (struct nbd_handle *h, int errnum, int cmd_errnum, const char *msg)
{
  const char *why;

  if (h->state == STATE_DEAD || h->state == STATE_CLOSED)
    return;
  /* With a cancel pending, whatever the death looks like (the EOF or
   * EPIPE that nbd_ext_cancel's shutdown causes, say) it is the cancel's.
   */
  if (atomic_exchange (&h->cancel_requested, false)) {
    errnum = cmd_errnum = ECANCELED;
    msg = cancelled_msg;
  }
  if (msg)
    set_error (errnum, "%s", msg);
  why = msg ? msg : nbd_internal_get_error_body ();
  free (h->dead_msg);
  h->dead_msg = why ? strdup (why) : NULL;
  h->dead_errno = msg ? errnum : nbd_get_errno ();
  debug (h, "connection is dead: %s", why ? why : "");
  h->state = STATE_DEAD;
  nbd_internal_close_socket (h);
  nbd_internal_handshake_abort (h, errnum ? errnum : ENOTCONN);
  nbd_internal_abort_commands (h, cmd_errnum);
  /* Also those waiting for something other than a command; all of them
   * now, whoever holds the lock (a rare path: contention is no concern).
   */
  nbd_internal_wake_all_waiters (h);
  nbd_internal_flush_wakeups (h);
}

int
nbd_internal_end_of_stream (struct nbd_handle *h, bool at_boundary,
                            const char *during)
{
  if (h->state == STATE_DEAD || h->state == STATE_CLOSED)
    return 0;
  /* Our own shutdown(2) first: nbd_internal_kill turns a pending cancel
   * into ECANCELED whatever it is given.
   */
  if (atomic_load (&h->cancel_requested) || h->read_side_shut) {
    nbd_internal_request_timed_out (h);
    return -1;
  }
  if (!at_boundary) {
    char msg[96];
    snprintf (msg, sizeof msg, "recv: server disconnected in the middle of %s", during);
    nbd_internal_set_dead (h, 0, msg);
    return -1;
  }
  debug (h, "the server closed the connection");
  h->state = STATE_CLOSED;
  nbd_internal_close_socket (h);
  nbd_internal_abort_commands (h, ENOTCONN);
  nbd_internal_wake_all_waiters (h);
  nbd_internal_flush_wakeups (h);
  return 0;
}

void
nbd_internal_transport_failed (struct nbd_handle *h, const char *what)
{
  if (errno == 0)
    nbd_internal_set_dead (h, 0, NULL);   /* the transport's own error */
  else
    nbd_internal_set_dead (h, errno, what);
}

void
nbd_internal_set_dead (struct nbd_handle *h, int errnum, const char *msg)
{
  /* Commands lost with the connection fail with ENOTCONN whatever broke
   * it (documented in nbd_aio_in_flight and nbd_aio_command_completed).
   */
  nbd_internal_kill (h, errnum, ENOTCONN, msg);
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
  /* (Also when the TLS transport still holds part of a message.) */
  if (h->hs_wdone < h->hs_wlen || nbd_internal_has_pending_output (h)) {
    struct iovec iov = { h->hs_wbuf + h->hs_wdone, h->hs_wlen - h->hs_wdone };
    ssize_t r = h->ops->send (h, &iov, 1, false);
    if (r == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      nbd_internal_transport_failed (h, "send: failed to write to the server");
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
      nbd_internal_transport_failed (h, "recv: failed to read from the server");
      return -1;
    }
    if (r == 0) {
      /* (Dead with no errno, as libnbd, wherever it stops.) */
      nbd_internal_end_of_stream (h, false, "the handshake");
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
        /* (A TCP connect out of addresses is back in CREATED.) */
        if (h->state != STATE_CREATED)
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
    return h->hs_wdone < h->hs_wlen || nbd_internal_has_pending_output (h)
      ? LIBNBD_AIO_DIRECTION_WRITE
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
  int r;

  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  /* A passed deadline or a cancel first: the readability may be the
   * watchdog's or nbd_ext_cancel's shutdown (timeouts.c, wait.c), which must read as
   * a timeout or a cancel, not an EOF.
   */
  if (nbd_internal_check_deadlines (h) == -1) {
    nbd_internal_flush_wakeups (h);
    return -1;
  }
  /* As libnbd, and as notify_write below: readability is an event only a
   * state that is waiting to read can take.  A handle not yet connected,
   * idle between options, or closed or dead has nothing to read, and
   * saying so beats a silent success that a caller's loop would spin on.
   */
  if (!(nbd_unlocked_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_READ)) {
    set_error (EINVAL, "nbd_aio_notify_read: the handle is %s and is not "
               "waiting to read", nbd_internal_state_name (h));
    return -1;
  }
  r = nbd_internal_run (h, true, false);
  nbd_internal_flush_wakeups (h);   /* threads blocked on what completed */
  return r;
}

int
nbd_unlocked_aio_notify_write (struct nbd_handle *h)
{
  int r;

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
  /* As notify_read: a cancel's shutdown makes the socket writable too. */
  if (nbd_internal_check_deadlines (h) == -1) {
    nbd_internal_flush_wakeups (h);
    return -1;
  }
  r = nbd_internal_run (h, false, true);
  nbd_internal_flush_wakeups (h);
  return r;
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
  case STATE_CREATED: return "START: handle has been created";
  case STATE_CONNECTING: return "CONNECTING: connecting to the server";
  case STATE_HANDSHAKE: return "MAGIC: handshaking with the server";
  case STATE_NEGOTIATING: return "NEGOTIATING: waiting for an option request";
  case STATE_TRANSMISSION:
    return is_processing (h) ? "PROCESSING: a request or reply is being transferred"
      : "READY: connection is ready to issue commands";
  case STATE_CLOSED: return "CLOSED: connection has been closed";
  case STATE_DEAD: return "DEAD: connection is dead";
  }
  return "DEAD: connection is dead";
}
