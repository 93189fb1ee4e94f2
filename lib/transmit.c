/* Sending requests: every queued request (header and write payload, no
 * copies) leaves in as few sendmsg calls as the socket allows.
 */
#include <config.h>

#include <stdlib.h>

#include "internal.h"

#define MAX_IOV 64

/* The transport (TLS) holds bytes it accepted but has not written. */
static bool
transport_holds_output (struct nbd_handle *h)
{
  return h->ops && h->ops->send_pending && h->ops->send_pending (h);
}

bool
nbd_internal_output_in_progress (struct nbd_handle *h)
{
  return h->send_offset > 0 || transport_holds_output (h);
}

bool
nbd_internal_has_pending_output (struct nbd_handle *h)
{
  return h->to_send_head != NULL || transport_holds_output (h);
}

static size_t
payload_len (const struct command *cmd)
{
  if (cmd->payload)
    return cmd->payload_len;
  return cmd->type == NBD_CMD_WRITE ? (size_t) cmd->count : 0;
}

static const void *
payload_ptr (const struct command *cmd)
{
  return cmd->payload ? cmd->payload : cmd->data;
}

/* A request is fully written: it now waits for its reply, except
 * NBD_CMD_DISC which has none.
 */
static void
sent (struct nbd_handle *h, struct command *cmd)
{
  h->chunks_sent++;
  cmd->sent = true;
  if (cmd->type == NBD_CMD_DISC) {
    cmd->error = 0;
    nbd_internal_complete_command (h, cmd);
    /* Retire it at once: nobody can ask for its cookie. */
    nbd_unlocked_aio_command_completed (h, cmd->cookie);
    if (h->ops)
      h->ops->shut_writes (h);
  }
}

int
nbd_internal_transmit (struct nbd_handle *h)
{
  while (h->to_send_head) {
    struct iovec iov[MAX_IOV];
    int n = 0;
    size_t skip = h->send_offset;
    ssize_t r;

    for (struct command *c = h->to_send_head; c && n + 2 <= MAX_IOV; c = c->next) {
      size_t plen = payload_len (c);
      if (skip < c->hdr_len) {
        iov[n].iov_base = c->hdr + skip;
        iov[n].iov_len = c->hdr_len - skip;
        n++;
        skip = 0;
      }
      else
        skip -= c->hdr_len;
      if (plen > skip) {
        iov[n].iov_base = (char *) payload_ptr (c) + skip;
        iov[n].iov_len = plen - skip;
        n++;
      }
      skip = 0;
    }
    r = h->ops->send (h, iov, n, false);
    if (r == -1) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      nbd_internal_transport_failed (h, "send: failed to write a request");
      return -1;
    }
    /* Account for what went out, request by request. */
    {
      size_t done = (size_t) r + h->send_offset;
      while (h->to_send_head) {
        struct command *c = h->to_send_head;
        size_t total = c->hdr_len + payload_len (c);
        if (done < total)
          break;
        done -= total;
        h->to_send_head = c->next;
        if (!h->to_send_head)
          h->to_send_tail = NULL;
        c->next = NULL;
        sent (h, c);
      }
      h->send_offset = done;
    }
  }
  if (transport_holds_output (h) && h->ops->send (h, NULL, 0, false) == -1
      && errno != EAGAIN && errno != EWOULDBLOCK) {
    nbd_internal_transport_failed (h, "send: failed to write a request");
    return -1;
  }
  return 0;
}
