/* Receiving replies: simple, structured and extended.  Small replies are
 * decoded from a receive buffer that holds many per recv; read payloads
 * go straight into the caller's buffer once they are large.
 *
 * Every length from the server is checked against the protocol and
 * against the request before anything is copied.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RBUF_SIZE (64 * 1024)
#define DIRECT_THRESHOLD (16 * 1024)    /* recv straight into the caller's buffer */
#define MAX_CHUNK_PAYLOAD (64 * 1024 * 1024 + 4096) /* non-data chunks */
#define MAX_UNKNOWN_CHUNK (64 * 1024)   /* chunk types we cannot interpret */
/* Buffers grown past these for one large reply are given back after it,
 * so a single hostile (or merely big) reply does not pin memory until
 * nbd_close.
 */
#define KEEP_SCRATCH_BYTES (1024 * 1024)

/* At or below this many commands in flight, replies are taken one at a
 * time, reading no further than the end of the current one: the caller
 * gets control after each reply and can refill the pipeline before the
 * server runs dry.  Above it, one recv takes as many replies as have
 * arrived (fewest syscalls).
 *
 * Why as high as 16: on a machine where client and server share few
 * cores, taking ~8 replies per recv and then sending ~8 requests in one
 * sendmsg hands the server bursts, and its worker threads sleep and
 * migrate between them (2x the server's context switches, 20x its
 * migrations at queue depth 16).  Refilling after each reply keeps the
 * server evenly busy: +22% reads, +14% writes at depth 16 (medians of 8
 * alternating runs).  From depth 64 on the pipe never runs dry, and
 * batching's fewer syscalls win.
 */
#define LOW_QUEUE_DEPTH 16


static int
nbd_errno (uint32_t error)
{
  switch (error) {
  case NBD_SUCCESS: return 0;
  case NBD_EPERM: return EPERM;
  case NBD_EIO: return EIO;
  case NBD_ENOMEM: return ENOMEM;
  case NBD_EINVAL: return EINVAL;
  case NBD_ENOSPC: return ENOSPC;
  case NBD_EOVERFLOW: return EOVERFLOW;
  case NBD_ENOTSUP: return ENOTSUP;
  case NBD_ESHUTDOWN: return ESHUTDOWN;
  default: return EINVAL;
  }
}

static void
set_cmd_error (struct command *cmd, int err)
{
  if (!cmd->error)
    cmd->error = err;
}

/* A protocol violation the connection cannot survive.  As libnbd, the
 * error carries no errno (nbd_get_errno gives 0), only the message; the
 * commands lost with the connection fail with ENOTCONN.
 */
static int
fatal (struct nbd_handle *h, const char *msg)
{
  nbd_internal_set_dead (h, 0, msg);
  return -1;
}

/* ---- Read coverage: chunks must not overlap nor leave gaps ---- */

static bool
add_coverage (struct command *cmd, uint64_t lo, uint64_t len)
{
  uint64_t hi = lo + len;

  if (len == 0)
    return true;
  if (cmd->covered_total == 0) {
    cmd->covered_lo = lo;
    cmd->covered_hi = hi;
  }
  else if (cmd->nr_ranges == 0 && lo == cmd->covered_hi)
    cmd->covered_hi = hi;
  else if (cmd->nr_ranges == 0 && hi == cmd->covered_lo)
    cmd->covered_lo = lo;
  else {
    /* Out of order: keep an explicit list (rare, not the hot path). */
    if (cmd->nr_ranges == 0) {
      cmd->ranges = malloc (sizeof *cmd->ranges);
      if (!cmd->ranges)
        return false;
      cmd->ranges[0].lo = cmd->covered_lo;
      cmd->ranges[0].hi = cmd->covered_hi;
      cmd->nr_ranges = 1;
    }
    for (size_t i = 0; i < cmd->nr_ranges; i++)
      if (lo < cmd->ranges[i].hi && cmd->ranges[i].lo < hi)
        return false;
    struct range *r = realloc (cmd->ranges, (cmd->nr_ranges + 1) * sizeof *r);
    if (!r)
      return false;
    cmd->ranges = r;
    r[cmd->nr_ranges].lo = lo;
    r[cmd->nr_ranges].hi = hi;
    cmd->nr_ranges++;
  }
  cmd->covered_total += len;
  return true;
}

/* The chunk [offset, offset+len) must lie inside the read request. */
static bool
inside_request (const struct command *cmd, uint64_t offset, uint64_t len)
{
  return offset >= cmd->offset && len <= cmd->count
    && offset - cmd->offset <= cmd->count - len;
}

static void
call_chunk (struct nbd_handle *h, struct command *cmd, const void *buf, size_t len,
            uint64_t offset, unsigned status, int err_in)
{
  int err = err_in, r;

  if (!cmd->chunk.callback)
    return;
  h->in_callback++;
  r = cmd->chunk.callback (cmd->chunk.user_data, buf, len, offset, status, &err);
  h->in_callback--;
  if (r == -1)
    set_cmd_error (cmd, err ? err : EPROTO);
}

static void
finish (struct nbd_handle *h, struct command *cmd)
{
  if (cmd->type == NBD_CMD_READ && !cmd->error && cmd->covered_total != cmd->count
      && (h->sr_negotiated || h->eh_negotiated) && cmd->data) {
    /* The server said DONE but left part of the buffer unanswered. */
    set_cmd_error (cmd, EIO);
  }
  nbd_internal_complete_command (h, cmd);
}

/* ---- Chunk payloads that need the whole payload in memory ---- */

static const char *
context_name (struct nbd_handle *h, uint32_t id)
{
  for (size_t i = 0; i < h->nr_meta_contexts; i++)
    if (h->meta_contexts[i].id == id)
      return h->meta_contexts[i].name;
  return NULL;
}

/* Make room for n elements in a scratch array kept in the handle. */
static void *
scratch (void **array, size_t *cap, size_t n, size_t elem)
{
  if (n > *cap) {
    void *p = realloc (*array, n * elem);
    if (!p)
      return NULL;
    *array = p;
    *cap = n;
  }
  return *array;
}

static void
deliver_extents (struct nbd_handle *h, struct command *cmd, const char *name,
                 nbd_extent *ext, size_t n)
{
  int err = cmd->error, r;

  if (cmd->extent64.callback) {
    h->in_callback++;
    r = cmd->extent64.callback (cmd->extent64.user_data, name, cmd->offset, ext, n,
                                &err);
    h->in_callback--;
    if (r == -1)
      set_cmd_error (cmd, err ? err : EPROTO);
    return;
  }
  if (cmd->extent.callback) {
    /* The 32-bit callback receives (length, flags) pairs; a length that
     * does not fit is cut short (and ends the list), flags that do not
     * fit cannot be expressed at all.
     */
    uint32_t *pairs = scratch ((void **) &h->scratch_pairs, &h->scratch_pairs_cap,
                               2 * n, sizeof *pairs);
    size_t m = 0;
    if (!pairs) {
      set_cmd_error (cmd, ENOMEM);
      return;
    }
    for (size_t i = 0; i < n; i++) {
      uint64_t len = ext[i].length;
      if (ext[i].flags > UINT32_MAX) {
        set_cmd_error (cmd, EOVERFLOW);
        return;
      }
      if (len > UINT32_MAX) {
        uint32_t align = h->block_minimum > 1 ? h->block_minimum : 512;
        len = (UINT32_MAX / align) * align;
        pairs[2 * m] = (uint32_t) len;
        pairs[2 * m + 1] = (uint32_t) ext[i].flags;
        m++;
        break;
      }
      pairs[2 * m] = (uint32_t) len;
      pairs[2 * m + 1] = (uint32_t) ext[i].flags;
      m++;
    }
    h->in_callback++;
    r = cmd->extent.callback (cmd->extent.user_data, name, cmd->offset, pairs, 2 * m,
                              &err);
    h->in_callback--;
    if (r == -1)
      set_cmd_error (cmd, err ? err : EPROTO);
  }
}

static int
block_status_chunk (struct nbd_handle *h, struct command *cmd, uint16_t type,
                    const char *p, uint64_t len)
{
  uint32_t id;
  const char *name;
  size_t n;
  nbd_extent *ext;

  if (cmd->type != NBD_CMD_BLOCK_STATUS) {
    set_cmd_error (cmd, EPROTO);
    return 0;
  }
  if (type == NBD_REPLY_TYPE_BLOCK_STATUS) {
    if (h->eh_negotiated || len < 12 || (len - 4) % 8)
      return fatal (h, "invalid block status chunk");
    n = (len - 4) / 8;
  }
  else {
    if (!h->eh_negotiated || len < 24 || (len - 8) % 16
        || be32_get (p + 4) != (len - 8) / 16)
      return fatal (h, "invalid extended block status chunk");
    n = (len - 8) / 16;
  }
  id = be32_get (p);
  name = context_name (h, id);
  if (!name) {
    /* Not a context we negotiated: the command fails, the stream is fine. */
    set_cmd_error (cmd, EPROTO);
    return 0;
  }
  ext = scratch ((void **) &h->scratch_ext, &h->scratch_ext_cap, n, sizeof *ext);
  if (!ext) {
    set_cmd_error (cmd, ENOMEM);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (type == NBD_REPLY_TYPE_BLOCK_STATUS) {
      ext[i].length = be32_get (p + 4 + 8 * i);
      ext[i].flags = be32_get (p + 8 + 8 * i);
    }
    else {
      ext[i].length = be64_get (p + 8 + 16 * i);
      ext[i].flags = be64_get (p + 16 + 16 * i);
    }
  }
  deliver_extents (h, cmd, name, ext, n);
  return 0;
}

static int
error_chunk (struct nbd_handle *h, struct command *cmd, uint16_t type,
             const char *p, uint64_t len)
{
  uint32_t error;
  uint16_t msglen;
  int err;

  if (len < 6)
    return fatal (h, "error chunk too short");
  error = be32_get (p);
  msglen = be16_get (p + 4);
  if (msglen > len - 6)
    return fatal (h, "error chunk message longer than the chunk");
  err = error ? nbd_errno (error) : EIO;
  if (msglen)
    debug (h, "server error message: %.*s", (int) msglen, p + 6);
  if (type == NBD_REPLY_TYPE_ERROR_OFFSET) {
    uint64_t off;
    if (len - 6 - msglen != 8)
      return fatal (h, "invalid error offset chunk");
    off = be64_get (p + 6 + msglen);
    if (cmd->type == NBD_CMD_READ || cmd->type == NBD_CMD_WRITE) {
      if (!inside_request (cmd, off, 1)) {
        set_cmd_error (cmd, EPROTO);
        return 0;
      }
      if (cmd->type == NBD_CMD_READ)
        call_chunk (h, cmd, (char *) cmd->data + (off - cmd->offset), 0, off,
                    LIBNBD_READ_ERROR, err);
    }
  }
  /* A generic error (no offset) does not call the chunk callback: as
   * libnbd, LIBNBD_READ_ERROR is only for errors tied to an offset.
   */
  set_cmd_error (cmd, err);
  return 0;
}

static int
hole_chunk (struct nbd_handle *h, struct command *cmd, const char *p, uint64_t len)
{
  uint64_t off, hole;

  /* 64-bit offset, 32-bit length: extended headers did not change this
   * chunk's layout.
   */
  if (len != 12)
    return fatal (h, "invalid hole chunk");
  off = be64_get (p);
  hole = be32_get (p + 8);
  if (cmd->type != NBD_CMD_READ || hole == 0 || !inside_request (cmd, off, hole)
      || (cmd->flags & NBD_CMD_FLAG_DF)) {
    set_cmd_error (cmd, EPROTO);
    return 0;
  }
  if (!add_coverage (cmd, off, hole)) {
    set_cmd_error (cmd, EPROTO);
    return 0;
  }
  memset ((char *) cmd->data + (off - cmd->offset), 0, hole);
  call_chunk (h, cmd, (char *) cmd->data + (off - cmd->offset), hole, off,
              LIBNBD_READ_HOLE, cmd->error);
  return 0;
}

/* The largest payload a non-data chunk of this type may carry for this
 * command: what the request can justify.  A longer chunk is refused
 * before anything is allocated for it.
 */
static uint64_t
max_chunk_payload (struct nbd_handle *h, const struct command *cmd, uint16_t type)
{
  switch (type) {
  case NBD_REPLY_TYPE_NONE:
    return 0;
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    return 12;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT: {
    /* Extents are at least one minimum block long, except the last: so
     * at most count / minimum + 1 of them for one context.
     */
    bool ext = type == NBD_REPLY_TYPE_BLOCK_STATUS_EXT;
    uint64_t base = ext ? 8 : 4, per = ext ? 16 : 8;
    uint64_t blk = h->block_minimum > 1 ? h->block_minimum : 1;
    uint64_t n = cmd->count / blk + 1;
    if (n > (MAX_CHUNK_PAYLOAD - base) / per)
      return MAX_CHUNK_PAYLOAD;
    return base + per * n;
  }
  default:
    if (NBD_REPLY_TYPE_IS_ERR (type))
      return 6 + UINT16_MAX + 8;      /* error, message, optional offset */
    return MAX_UNKNOWN_CHUNK;
  }
}

/* After a large reply: give back what only it needed. */
static void
release_oversized (struct nbd_handle *h)
{
  if (h->rbuf_cap > RBUF_SIZE && h->rbuf_start == h->rbuf_end && !h->rx_cmd) {
    char *p = realloc (h->rbuf, RBUF_SIZE);
    if (p) {
      h->rbuf = p;
      h->rbuf_cap = RBUF_SIZE;
      h->rbuf_start = h->rbuf_end = 0;
    }
  }
  if (h->scratch_ext_cap * sizeof *h->scratch_ext > KEEP_SCRATCH_BYTES) {
    free (h->scratch_ext);
    h->scratch_ext = NULL;
    h->scratch_ext_cap = 0;
  }
  if (h->scratch_pairs_cap * sizeof *h->scratch_pairs > KEEP_SCRATCH_BYTES) {
    free (h->scratch_pairs);
    h->scratch_pairs = NULL;
    h->scratch_pairs_cap = 0;
  }
}

/* ---- The receive loop ---- */

/* How many more bytes complete the message at the head of the receive
 * buffer (which decode_one found incomplete), so that a recv never takes
 * the start of the next reply.
 */
static size_t
bytes_to_message_end (struct nbd_handle *h)
{
  const char *p = h->rbuf + h->rbuf_start;
  size_t avail = h->rbuf_end - h->rbuf_start, hdr_len;
  uint64_t len;

  if (h->rx_cmd)
    return (size_t) h->rx_need;
  /* A new message: ask for the header plus the 8 bytes that start most
   * chunk payloads (a read's offset, block status' context and count).
   * Taking the start of the next message when this one is shorter only
   * means it is decoded in the same pass.
   */
  if (avail < 4)
    return (h->eh_negotiated ? 40 : h->sr_negotiated ? 28 : 16) - avail;
  switch (be32_get (p)) {
  case NBD_SIMPLE_REPLY_MAGIC: hdr_len = 16; break;
  case NBD_STRUCTURED_REPLY_MAGIC: hdr_len = 20; break;
  default: hdr_len = 32; break;
  }
  if (avail < hdr_len)
    return hdr_len - avail;
  len = hdr_len == 20 ? be32_get (p + 16) : be64_get (p + 24);
  if (be16_get (p + 6) == NBD_REPLY_TYPE_OFFSET_DATA)
    len = 8;                    /* the offset; the data streams separately */
  return hdr_len + len > avail ? (size_t) (hdr_len + len - avail) : 1;
}

static int
ensure_capacity (struct nbd_handle *h, size_t need)
{
  if (h->rbuf_start > 0 && h->rbuf_cap - h->rbuf_start < need) {
    memmove (h->rbuf, h->rbuf + h->rbuf_start, h->rbuf_end - h->rbuf_start);
    h->rbuf_end -= h->rbuf_start;
    h->rbuf_start = 0;
  }
  if (h->rbuf_cap < need) {
    char *p = realloc (h->rbuf, need);
    if (!p) {
      nbd_internal_set_dead (h, ENOMEM, "out of memory for a reply");
      return -1;
    }
    h->rbuf = p;
    h->rbuf_cap = need;
  }
  return 0;
}

/* Start streaming a read payload into the caller's buffer. */
static void
start_payload (struct nbd_handle *h, struct command *cmd, char *dst, uint64_t len,
               uint64_t offset, bool done_flag, bool structured)
{
  h->rx_cmd = cmd;
  h->rx_dst = dst;
  h->rx_need = len;
  h->rx_chunk_offset = offset;
  h->rx_chunk_len = len;
  h->rx_chunk_done = done_flag;
  h->rx_structured = structured;
}

static void
payload_finished (struct nbd_handle *h)
{
  struct command *cmd = h->rx_cmd;

  h->rx_cmd = NULL;
  if (h->rx_structured) {
    call_chunk (h, cmd, h->rx_dst - h->rx_chunk_len, h->rx_chunk_len, h->rx_chunk_offset,
                LIBNBD_READ_DATA, cmd->error);
    if (h->rx_chunk_done)
      finish (h, cmd);
  }
  else {
    /* A simple reply carries the whole read at once. */
    cmd->covered_lo = cmd->offset;
    cmd->covered_hi = cmd->offset + cmd->count;
    cmd->nr_ranges = 0;
    cmd->covered_total = cmd->count;
    call_chunk (h, cmd, cmd->data, cmd->count, cmd->offset, LIBNBD_READ_DATA, cmd->error);
    finish (h, cmd);
  }
}

/* Decode one message from the receive buffer.  Returns 1 if one was
 * consumed, 0 if more bytes are needed, -1 if the connection died.
 */
static int
decode_one (struct nbd_handle *h)
{
  const char *p = h->rbuf + h->rbuf_start;
  size_t avail = h->rbuf_end - h->rbuf_start;
  uint32_t magic;
  size_t hdr_len;
  uint64_t cookie, len;
  uint16_t flags, type;
  struct command *cmd;

  if (avail < 4)
    return 0;
  magic = be32_get (p);
  if (magic == NBD_SIMPLE_REPLY_MAGIC && !h->eh_negotiated)
    hdr_len = 16;
  else if (magic == NBD_STRUCTURED_REPLY_MAGIC && h->sr_negotiated && !h->eh_negotiated)
    hdr_len = 20;
  else if (magic == NBD_EXTENDED_REPLY_MAGIC && h->eh_negotiated)
    hdr_len = 32;
  else
    return fatal (h, "invalid reply magic");
  if (avail < hdr_len)
    return 0;
  cookie = be64_get (p + 8);
  cmd = nbd_internal_find_command (h, cookie);
  if (!cmd || !cmd->sent)
    return fatal (h, "server replied with an unknown cookie");

  if (hdr_len == 16) {
    uint32_t error = be32_get (p + 4);
    h->chunks_received++;
    h->rbuf_start += 16;
    if (error) {
      set_cmd_error (cmd, nbd_errno (error));
      finish (h, cmd);
      return 1;
    }
    if (cmd->type == NBD_CMD_READ) {
      if (h->sr_negotiated && cmd->count)
        return fatal (h, "server sent read data in a simple reply");
      start_payload (h, cmd, cmd->data, cmd->count, cmd->offset, true, false);
      return 1;
    }
    finish (h, cmd);
    return 1;
  }

  flags = be16_get (p + 4);
  type = be16_get (p + 6);
  len = hdr_len == 20 ? be32_get (p + 16) : be64_get (p + 24);

  if (type == NBD_REPLY_TYPE_OFFSET_DATA) {
    uint64_t off, dlen;
    if (len < 9 || len - 8 > MAX_CHUNK_PAYLOAD)
      return fatal (h, "invalid data chunk length");
    if (avail < hdr_len + 8)
      return ensure_capacity (h, hdr_len + 8) == -1 ? -1 : 0;
    h->chunks_received++;
    off = be64_get (p + hdr_len);
    dlen = len - 8;
    if (cmd->type != NBD_CMD_READ || !inside_request (cmd, off, dlen)
        || !add_coverage (cmd, off, dlen))
      return fatal (h, "data chunk outside the read request or overlapping another");
    h->rbuf_start += hdr_len + 8;
    start_payload (h, cmd, (char *) cmd->data + (off - cmd->offset), dlen, off,
                   (flags & NBD_REPLY_FLAG_DONE) != 0, true);
    return 1;
  }

  /* Other chunks are decoded whole from the buffer. */
  if (len > MAX_CHUNK_PAYLOAD || len > max_chunk_payload (h, cmd, type))
    return fatal (h, "reply chunk longer than its request can justify");
  if (avail < hdr_len + len)
    return ensure_capacity (h, hdr_len + len) == -1 ? -1 : 0;
  h->chunks_received++;   /* counted once, when the chunk is consumed */
  p += hdr_len;
  h->rbuf_start += hdr_len + len;

  switch (type) {
  case NBD_REPLY_TYPE_NONE:
    if (len != 0 || !(flags & NBD_REPLY_FLAG_DONE))
      return fatal (h, "invalid NONE chunk");
    break;
  case NBD_REPLY_TYPE_OFFSET_HOLE:
    if (hole_chunk (h, cmd, p, len) == -1)
      return -1;
    break;
  case NBD_REPLY_TYPE_BLOCK_STATUS:
  case NBD_REPLY_TYPE_BLOCK_STATUS_EXT:
    if (block_status_chunk (h, cmd, type, p, len) == -1)
      return -1;
    break;
  default:
    if (NBD_REPLY_TYPE_IS_ERR (type)) {
      if (error_chunk (h, cmd, type, p, len) == -1)
        return -1;
    }
    else {
      /* Unknown and not an error: this command cannot be trusted. */
      debug (h, "unknown structured reply type %u", type);
      set_cmd_error (cmd, EPROTO);
    }
  }
  if (flags & NBD_REPLY_FLAG_DONE)
    finish (h, cmd);
  return 1;
}

int
nbd_internal_receive (struct nbd_handle *h, bool readable)
{
  int result = 0;
  bool drained = false;
  /* A readability report not yet answered by a recv.  With nothing in
   * flight it still needs one: an idle server may have closed the
   * connection (EOF: CLOSED) or sent bytes nobody asked for (DEAD).
   * Once any recv ran in this pass the report is spent, so a busy
   * handle pays no extra syscall for it.
   */
  bool unanswered = readable;
  bool one_at_a_time = h->nr_in_flight <= LOW_QUEUE_DEPTH;
  uint64_t completed = h->nr_completed;

  if (!h->rbuf) {
    h->rbuf = malloc (RBUF_SIZE);
    if (!h->rbuf) {
      nbd_internal_set_dead (h, ENOMEM, "out of memory");
      return -1;
    }
    h->rbuf_cap = RBUF_SIZE;
  }
  h->in_run = true;
  for (;;) {
    ssize_t r;

    if (h->state != STATE_TRANSMISSION)
      break;

    /* A read payload in progress: first what is buffered, then perhaps
     * straight from the socket into the caller's buffer.
     */
    if (h->rx_cmd) {
      size_t avail = h->rbuf_end - h->rbuf_start;
      size_t n = avail < h->rx_need ? avail : (size_t) h->rx_need;
      if (n) {
        memcpy (h->rx_dst, h->rbuf + h->rbuf_start, n);
        h->rx_dst += n;
        h->rx_need -= n;
        h->rbuf_start += n;
      }
      if (h->rx_need == 0) {
        payload_finished (h);
        continue;
      }
      if (h->rx_need >= DIRECT_THRESHOLD) {
        unanswered = false;
        r = h->ops->recv (h, h->rx_dst, h->rx_need);
        if (r > 0) {
          drained = (uint64_t) r < h->rx_need && !h->ops->pending (h);
          h->rx_dst += r;
          h->rx_need -= (uint64_t) r;
          if (h->rx_need == 0)
            payload_finished (h);
          continue;
        }
        goto recv_result;
      }
    }
    else {
      int d = decode_one (h);
      if (d == -1) {
        result = -1;
        break;
      }
      if (d == 1)
        continue;
    }

    /* Need more bytes in the buffer. */
    if (h->rbuf_start == h->rbuf_end)
      h->rbuf_start = h->rbuf_end = 0;
    else if (h->rbuf_cap - h->rbuf_end < 4096 && ensure_capacity (h, h->rbuf_cap) == -1) {
      result = -1;
      break;
    }
    if (h->nr_in_flight == 0 && !h->disconnect_requested && h->rbuf_start == h->rbuf_end
        && !unanswered)
      break;                    /* nothing is expected */
    if (drained)
      break;
    if (one_at_a_time && h->nr_completed != completed
        && h->rbuf_start == h->rbuf_end && !h->rx_cmd && !h->ops->pending (h))
      break;                    /* a reply is done: let the caller refill */
    size_t asked = h->rbuf_cap - h->rbuf_end;
    /* With one command in flight every byte is its reply: no cap. */
    if (one_at_a_time && h->nr_in_flight > 1) {
      size_t rest = bytes_to_message_end (h);
      if (rest < asked)
        asked = rest;
    }
    unanswered = false;
    r = h->ops->recv (h, h->rbuf + h->rbuf_end, asked);
    if (r > 0) {
      h->rbuf_end += (size_t) r;
      /* A short read means the socket is drained: decode what came,
       * then stop rather than pay for a recv that would say EAGAIN.
       */
      drained = (size_t) r < asked && !h->ops->pending (h);
      continue;
    }
  recv_result:
    if (r == 0) {
      /* EOF where a reply would start is, as in libnbd, the server
       * closing the connection: after our NBD_CMD_DISC, ending an idle
       * connection, or giving up on commands still owed a reply (they
       * fail with ENOTCONN).  EOF inside a reply is a broken server.
       */
      if (nbd_internal_end_of_stream (h, !h->rx_cmd && h->rbuf_start == h->rbuf_end,
                                      "a reply") == -1)
        result = -1;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      break;
    nbd_internal_transport_failed (h, "recv: failed to read a reply");
    result = -1;
    break;
  }
  h->in_run = false;
  if (UNLIKELY (h->rbuf_cap > RBUF_SIZE
                || h->scratch_ext_cap * sizeof *h->scratch_ext > KEEP_SCRATCH_BYTES
                || h->scratch_pairs_cap * sizeof *h->scratch_pairs > KEEP_SCRATCH_BYTES))
    release_oversized (h);
  return result;
}
