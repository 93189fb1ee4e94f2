/* Commands: records, cookies, the client-side checks, issuing, completion
 * and retirement, and the blocking forms.
 */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_REQUEST_SIZE (64 * 1024 * 1024)
#define TABLE_SIZE (sizeof ((struct nbd_handle *) 0)->cmd_table \
                    / sizeof ((struct nbd_handle *) 0)->cmd_table[0])

/* ---- Records and the cookie table ---- */

static struct command *
alloc_command (struct nbd_handle *h)
{
  struct command *cmd = h->free_cmds;

  if (cmd) {
    h->free_cmds = cmd->next;
    memset (cmd, 0, sizeof *cmd);
    return cmd;
  }
  cmd = calloc (1, sizeof *cmd);
  if (!cmd)
    set_error (errno, "calloc");
  return cmd;
}

/* Release a command's callbacks: each .free runs once, here. */
static void
free_callbacks (struct command *cmd)
{
  FREE_CLOSURE (cmd->chunk);
  FREE_CLOSURE (cmd->extent);
  FREE_CLOSURE (cmd->extent64);
  FREE_CLOSURE (cmd->completion);
}

static void
recycle_command (struct nbd_handle *h, struct command *cmd)
{
  free_callbacks (cmd);
  free (cmd->payload);
  free (cmd->ranges);
  cmd->payload = NULL;
  cmd->ranges = NULL;
  cmd->next = h->free_cmds;
  h->free_cmds = cmd;
}

static void
table_insert (struct nbd_handle *h, struct command *cmd)
{
  size_t b = cmd->cookie % TABLE_SIZE;
  cmd->hnext = h->cmd_table[b];
  h->cmd_table[b] = cmd;
}

struct command *
nbd_internal_find_command (struct nbd_handle *h, uint64_t cookie)
{
  for (struct command *c = h->cmd_table[cookie % TABLE_SIZE]; c; c = c->hnext)
    if (c->cookie == cookie)
      return c;
  return NULL;
}

/* The list of commands awaiting a reply, oldest first. */
static void
age_list_append (struct nbd_handle *h, struct command *cmd)
{
  cmd->newer = NULL;
  cmd->older = h->newest;
  if (h->newest)
    h->newest->newer = cmd;
  else
    h->oldest = cmd;
  h->newest = cmd;
}

static void
age_list_remove (struct nbd_handle *h, struct command *cmd)
{
  if (cmd->older)
    cmd->older->newer = cmd->newer;
  else if (h->oldest == cmd)
    h->oldest = cmd->newer;
  if (cmd->newer)
    cmd->newer->older = cmd->older;
  else if (h->newest == cmd)
    h->newest = cmd->older;
  cmd->older = cmd->newer = NULL;
}

static int
cmp_cookie (const void *a, const void *b)
{
  const struct command *ca = *(struct command *const *) a;
  const struct command *cb = *(struct command *const *) b;
  return ca->cookie < cb->cookie ? -1 : ca->cookie > cb->cookie;
}

/* nbd_ext_set_request_timeout.  The age list exists only while a request
 * timeout is set (so that the default costs nothing per command); turning
 * one on builds it from the cookie table (cookies grow in issue order),
 * and commands already waiting get the new timeout counted from now, so
 * deadlines stay in issue order.
 */
void
nbd_internal_restamp_deadlines (struct nbd_handle *h)
{
  uint64_t d;

  while (h->oldest)
    age_list_remove (h, h->oldest);
  if (h->request_timeout_ms == 0) {
    for (size_t b = 0; b < TABLE_SIZE; b++)
      for (struct command *c = h->cmd_table[b]; c; c = c->hnext)
        c->deadline = 0;
    return;
  }
  d = nbd_internal_now_ns () + (uint64_t) h->request_timeout_ms * 1000000;
  {
    size_t n = 0, i = 0;
    struct command **v;
    for (size_t b = 0; b < TABLE_SIZE; b++)
      for (struct command *c = h->cmd_table[b]; c; c = c->hnext)
        n += c->type != NBD_CMD_DISC;
    if (n == 0)
      return;
    v = malloc (n * sizeof *v);
    if (v == NULL) {
      /* Rare: fall back to table order; deadlines are all equal anyway. */
      for (size_t b = 0; b < TABLE_SIZE; b++)
        for (struct command *c = h->cmd_table[b]; c; c = c->hnext)
          if (c->type != NBD_CMD_DISC) {
            c->deadline = d;
            age_list_append (h, c);
          }
      return;
    }
    for (size_t b = 0; b < TABLE_SIZE; b++)
      for (struct command *c = h->cmd_table[b]; c; c = c->hnext)
        if (c->type != NBD_CMD_DISC)
          v[i++] = c;
    qsort (v, n, sizeof *v, cmp_cookie);
    for (i = 0; i < n; i++) {
      v[i]->deadline = d;
      age_list_append (h, v[i]);
    }
    free (v);
  }
}

static void
table_remove (struct nbd_handle *h, struct command *cmd)
{
  struct command **pp = &h->cmd_table[cmd->cookie % TABLE_SIZE];
  while (*pp && *pp != cmd)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = cmd->hnext;
  cmd->hnext = NULL;
}

/* ---- Completion ---- */

static int
cmp_range (const void *a, const void *b)
{
  const struct range *ra = a, *rb = b;
  return ra->lo < rb->lo ? -1 : ra->lo > rb->lo;
}

/* nbd_set_pread_initialize promises that a read never leaves stale bytes
 * in the caller's buffer.  Rather than clearing every buffer before every
 * read, clear only what the server did not fill, once the read is over:
 * a successful read costs nothing.
 */
static void
zero_uncovered (struct command *cmd)
{
  char *buf = cmd->data;
  uint64_t pos = cmd->offset, end = cmd->offset + cmd->count;

  if (cmd->covered_total == 0) {
    memset (buf, 0, cmd->count);
    return;
  }
  if (cmd->nr_ranges == 0) {
    memset (buf, 0, cmd->covered_lo - cmd->offset);
    memset (buf + (cmd->covered_hi - cmd->offset), 0, end - cmd->covered_hi);
    return;
  }
  qsort (cmd->ranges, cmd->nr_ranges, sizeof cmd->ranges[0], cmp_range);
  for (size_t i = 0; i < cmd->nr_ranges; i++) {
    if (cmd->ranges[i].lo > pos)
      memset (buf + (pos - cmd->offset), 0, cmd->ranges[i].lo - pos);
    pos = cmd->ranges[i].hi;
  }
  if (end > pos)
    memset (buf + (pos - cmd->offset), 0, end - pos);
}

/* The reply is complete: run the completion callback, then either retire
 * the command (the callback returned 1) or keep it for
 * nbd_aio_command_completed.  The closures stay alive until retirement
 * (libnbd(3): .free runs when the command is retired), so a program may
 * keep its context in them and read it until then.
 */
void
nbd_internal_complete_command (struct nbd_handle *h, struct command *cmd)
{
  int retire = 0;

  table_remove (h, cmd);
  if (h->oldest)
    age_list_remove (h, cmd);

  h->nr_in_flight--;
  h->nr_completed++;
  if (cmd->zero_uncovered && (cmd->error || cmd->covered_total != cmd->count))
    zero_uncovered (cmd);
  if (cmd->waiter) {
    /* A thread is asleep in a blocking call for this command: retire it
     * here and hand it the result, so that it returns without competing
     * for the lock.  Not for lost connections (the sleeper reports why)
     * nor while debugging (its entry point traces the result).
     */
    struct waiter *w = cmd->waiter;
    cmd->waiter = NULL;
    if (!cmd->aborted && !cmd->completion.callback && !h->debug
        && nbd_internal_hand_result (h, w, cmd->error)) {
      recycle_command (h, cmd);
      return;
    }
    nbd_internal_wake_waiter (h, w);
  }
  if (cmd->completion.callback) {
    int err = cmd->error;
    h->in_callback++;
    retire = cmd->completion.callback (cmd->completion.user_data, &err);
    h->in_callback--;
    /* As libnbd: *error is only taken when the callback fails. */
    if (retire == -1 && err != 0)
      cmd->error = err;
  }
  if (retire == 1) {
    recycle_command (h, cmd);
    return;
  }
  cmd->next = NULL;
  if (h->done_tail)
    h->done_tail->next = cmd;
  else
    h->done_head = cmd;
  h->done_tail = cmd;
}

/* The connection died: every command not yet completed fails now. */
void
nbd_internal_abort_commands (struct nbd_handle *h, int errnum)
{
  /* A read payload cut off half way: none of it can be trusted. */
  if (h->rx_cmd) {
    h->rx_cmd->covered_total = 0;
    h->rx_cmd->nr_ranges = 0;
  }
  for (size_t b = 0; b < TABLE_SIZE; b++)
    while (h->cmd_table[b]) {
      struct command *cmd = h->cmd_table[b];
      if (!cmd->error)
        cmd->error = errnum;
      cmd->aborted = true;
      nbd_internal_complete_command (h, cmd);
    }
  h->to_send_head = h->to_send_tail = NULL;
  h->send_offset = 0;
  h->rx_cmd = NULL;
  h->rx_need = 0;
}

void
nbd_internal_free_commands (struct nbd_handle *h)
{
  struct command *cmd, *next;

  for (size_t b = 0; b < TABLE_SIZE; b++) {
    for (cmd = h->cmd_table[b]; cmd; cmd = next) {
      next = cmd->hnext;
      recycle_command (h, cmd);
    }
    h->cmd_table[b] = NULL;
  }
  for (cmd = h->done_head; cmd; cmd = next) {
    next = cmd->next;
    recycle_command (h, cmd);
  }
  h->done_head = h->done_tail = NULL;
  h->to_send_head = h->to_send_tail = NULL;
  for (cmd = h->free_cmds; cmd; cmd = next) {
    next = cmd->next;
    free (cmd);
  }
  h->free_cmds = NULL;
  h->nr_in_flight = 0;
  h->oldest = h->newest = NULL;
}

/* ---- Issuing ---- */

static void
encode_header (struct nbd_handle *h, struct command *cmd)
{
  char *p = cmd->hdr;
  uint64_t len = cmd->payload ? cmd->payload_len : cmd->count;

  if (h->eh_negotiated) {
    be32_put (p, NBD_EXTENDED_REQUEST_MAGIC);
    be16_put (p + 4, cmd->flags);
    be16_put (p + 6, cmd->type);
    be64_put (p + 8, cmd->cookie);
    be64_put (p + 16, cmd->offset);
    be64_put (p + 24, len);
    cmd->hdr_len = 32;
  }
  else {
    be32_put (p, NBD_REQUEST_MAGIC);
    be16_put (p + 4, cmd->flags);
    be16_put (p + 6, cmd->type);
    be64_put (p + 8, cmd->cookie);
    be64_put (p + 16, cmd->offset);
    be32_put (p + 24, (uint32_t) len);
    cmd->hdr_len = 28;
  }
}

/* Queue a fully built command; returns its cookie. */
static int64_t
issue (struct nbd_handle *h, struct command *cmd)
{
  cmd->cookie = h->next_cookie++;
  encode_header (h, cmd);
  table_insert (h, cmd);
  if (h->request_timeout_ms && cmd->type != NBD_CMD_DISC) {
    cmd->deadline = nbd_internal_now_ns () + (uint64_t) h->request_timeout_ms * 1000000;
    age_list_append (h, cmd);
    /* Only the first deadline can find the watchdog asleep without one
     * (later ones come after the deadline it already waits for): one
     * kick, not a wakeup per command.
     */
    if (h->oldest == cmd)
      nbd_internal_watchdog_kick (h);
  }
  h->nr_in_flight++;
  cmd->next = NULL;
  if (h->to_send_tail)
    h->to_send_tail->next = cmd;
  else
    h->to_send_head = cmd;
  h->to_send_tail = cmd;

  /* With nothing else in flight, send at once: the caller waits for
   * this reply.  Otherwise queue: a reply is due, and the engine pass it
   * triggers (or the next poll) sends every queued request in one
   * sendmsg, so the server reads a batch with one wakeup.  Callbacks
   * running inside the engine always queue.  The command is accepted
   * either way: if sending kills the connection, its completion reports
   * the error, so the cookie is still returned.
   */
  if (!h->in_run && h->to_send_head == cmd && h->nr_in_flight == 1)
    nbd_internal_transmit (h);
  else if (h->leader_polling && !h->in_run) {
    /* Another thread polls for replies only: it would not send this
     * until some reply arrives.  Send it now (we hold the lock), and if
     * the socket is full make the leader poll for writing.
     */
    nbd_internal_transmit (h);
    if (nbd_internal_has_pending_output (h))
      nbd_internal_wake_leader (h);
  }
  return (int64_t) cmd->cookie;
}

static int
check_connected (struct nbd_handle *h)
{
  /* After a cancel the command could only go to a shut-down socket.
   * (A relaxed load inline: this runs for every command, and a cancel
   * racing with it is acted on at the next call anyway.)
   */
  if (UNLIKELY (atomic_load_explicit (&h->cancel_requested, memory_order_relaxed))
      && nbd_internal_act_on_cancel (h) == -1)
    return -1;
  if (h->disconnect_requested) {
    set_error (EINVAL, "cannot issue commands after a disconnect request");
    return -1;
  }
  return 0;
}

/* The client-side checks of nbd_set_strict_mode, in libnbd's order. */
static int
check_request (struct nbd_handle *h, uint16_t type, uint64_t offset,
               uint64_t count, uint32_t flags)
{
  uint32_t strict = h->strict;
  bool is_write = type == NBD_CMD_WRITE || type == NBD_CMD_TRIM
    || type == NBD_CMD_WRITE_ZEROES;

  if (check_connected (h) == -1)
    return -1;
  if (strict & LIBNBD_STRICT_COMMANDS) {
    if (type == NBD_CMD_FLUSH && !(h->eflags & NBD_FLAG_SEND_FLUSH)) {
      set_error (EINVAL, "server does not support flush operations");
      return -1;
    }
    if (type == NBD_CMD_TRIM && !(h->eflags & NBD_FLAG_SEND_TRIM)) {
      set_error (EINVAL, "server does not support trim operations");
      return -1;
    }
    if (type == NBD_CMD_WRITE_ZEROES && !(h->eflags & NBD_FLAG_SEND_WRITE_ZEROES)) {
      set_error (EINVAL, "server does not support zero operations");
      return -1;
    }
    if (type == NBD_CMD_CACHE && !(h->eflags & NBD_FLAG_SEND_CACHE)) {
      set_error (EINVAL, "server does not support cache operations");
      return -1;
    }
    /* As libnbd: an unadvertised trim/zero is EINVAL even on a
     * read-only export (which does not advertise them); then EPERM.
     */
    if (is_write && (h->eflags & NBD_FLAG_READ_ONLY)) {
      set_error (EPERM, "server does not support write operations");
      return -1;
    }
    if ((flags & LIBNBD_CMD_FLAG_FUA) && !(h->eflags & NBD_FLAG_SEND_FUA)) {
      set_error (EINVAL, "server does not support the FUA flag");
      return -1;
    }
    if ((flags & LIBNBD_CMD_FLAG_DF) && nbd_unlocked_can_df (h) != 1) {
      set_error (EINVAL, "server does not support the DF flag");
      return -1;
    }
    if ((flags & LIBNBD_CMD_FLAG_FAST_ZERO) && !(h->eflags & NBD_FLAG_SEND_FAST_ZERO)) {
      set_error (EINVAL, "server does not support the fast zero flag");
      return -1;
    }
  }
  if (type == NBD_CMD_FLUSH)
    return 0;
  if ((strict & LIBNBD_STRICT_ZERO_SIZE) && count == 0) {
    set_error (EINVAL, "count cannot be 0");
    return -1;
  }
  if ((strict & LIBNBD_STRICT_BOUNDS)
      && (offset > h->exportsize || count > h->exportsize - offset)) {
    set_error (is_write ? ENOSPC : EINVAL, "request out of bounds");
    return -1;
  }
  if ((strict & LIBNBD_STRICT_ALIGN) && h->block_minimum > 1
      && ((offset | count) & (h->block_minimum - 1))) {
    set_error (EINVAL, "request is unaligned to the server's minimum block size %u",
               h->block_minimum);
    return -1;
  }
  if (!h->eh_negotiated && count > UINT32_MAX) {
    set_error (ERANGE, "request too large for the protocol without extended headers");
    return -1;
  }
  return 0;
}

static int
check_payload_size (struct nbd_handle *h, uint64_t count)
{
  if (count > MAX_REQUEST_SIZE) {
    set_error (ERANGE, "request too large: maximum request size is %d",
               MAX_REQUEST_SIZE);
    return -1;
  }
  if ((h->strict & LIBNBD_STRICT_PAYLOAD) && h->block_maximum
      && count > h->block_maximum && count > 1024 * 1024) {
    set_error (ERANGE, "request larger than the server's maximum payload size %" PRIu32,
               h->block_maximum);
    return -1;
  }
  return 0;
}

static struct command *
new_command (struct nbd_handle *h, uint16_t type, uint64_t offset, uint64_t count,
             uint32_t flags, nbd_completion_callback *completion)
{
  struct command *cmd = alloc_command (h);
  if (!cmd)
    return NULL;
  cmd->type = type;
  cmd->offset = offset;
  cmd->count = count;
  cmd->flags = (uint16_t) flags;
  if (completion)
    TAKE_CLOSURE (cmd->completion, completion);
  return cmd;
}

/* A read refused before it was issued: with nbd_set_pread_initialize the
 * buffer still holds zeroes afterwards, as if it had been cleared first.
 */
static int64_t
refuse_read (struct nbd_handle *h, void *buf, size_t count)
{
  if (h->pread_initialize)
    memset (buf, 0, count);
  return -1;
}

int64_t
nbd_unlocked_aio_pread (struct nbd_handle *h, void *buf, size_t count,
                        uint64_t offset, nbd_completion_callback *completion,
                        uint32_t flags)
{
  struct command *cmd;

  if (check_request (h, NBD_CMD_READ, offset, count, flags) == -1
      || check_payload_size (h, count) == -1)
    return refuse_read (h, buf, count);
  cmd = new_command (h, NBD_CMD_READ, offset, count, flags, completion);
  if (!cmd)
    return refuse_read (h, buf, count);
  cmd->data = buf;
  cmd->zero_uncovered = h->pread_initialize;
  return issue (h, cmd);
}

int64_t
nbd_unlocked_aio_pread_structured (struct nbd_handle *h, void *buf, size_t count,
                                   uint64_t offset, nbd_chunk_callback *chunk,
                                   nbd_completion_callback *completion,
                                   uint32_t flags)
{
  struct command *cmd;

  if (check_request (h, NBD_CMD_READ, offset, count, flags) == -1
      || check_payload_size (h, count) == -1)
    return refuse_read (h, buf, count);
  cmd = new_command (h, NBD_CMD_READ, offset, count, flags, completion);
  if (!cmd)
    return refuse_read (h, buf, count);
  cmd->data = buf;
  TAKE_CLOSURE (cmd->chunk, chunk);
  cmd->zero_uncovered = h->pread_initialize;
  return issue (h, cmd);
}

int64_t
nbd_unlocked_aio_pwrite (struct nbd_handle *h, const void *buf, size_t count,
                         uint64_t offset, nbd_completion_callback *completion,
                         uint32_t flags)
{
  struct command *cmd;

  /* LIBNBD_STRICT_AUTO_FLAG: the payload length flag describes the
   * request format, so the library sets it exactly when extended headers
   * are in use, whatever the caller passed.
   */
  if (h->strict & LIBNBD_STRICT_AUTO_FLAG) {
    if (h->eh_negotiated)
      flags |= LIBNBD_CMD_FLAG_PAYLOAD_LEN;
    else
      flags &= ~LIBNBD_CMD_FLAG_PAYLOAD_LEN;
  }
  else if ((flags & LIBNBD_CMD_FLAG_PAYLOAD_LEN) && !h->eh_negotiated) {
    set_error (EINVAL, "the payload length flag needs extended headers");
    return -1;
  }
  if (check_request (h, NBD_CMD_WRITE, offset, count, flags) == -1
      || check_payload_size (h, count) == -1)
    return -1;
  cmd = new_command (h, NBD_CMD_WRITE, offset, count, flags, completion);
  if (!cmd)
    return -1;
  cmd->data = (void *) buf;
  return issue (h, cmd);
}

int64_t
nbd_unlocked_aio_flush (struct nbd_handle *h, nbd_completion_callback *completion,
                        uint32_t flags)
{
  struct command *cmd;

  if (check_request (h, NBD_CMD_FLUSH, 0, 0, flags) == -1)
    return -1;
  cmd = new_command (h, NBD_CMD_FLUSH, 0, 0, flags, completion);
  return cmd ? issue (h, cmd) : -1;
}

static int64_t
aio_no_data (struct nbd_handle *h, uint16_t type, uint64_t count, uint64_t offset,
             nbd_completion_callback *completion, uint32_t flags)
{
  struct command *cmd;

  if (check_request (h, type, offset, count, flags) == -1)
    return -1;
  cmd = new_command (h, type, offset, count, flags, completion);
  return cmd ? issue (h, cmd) : -1;
}

int64_t
nbd_unlocked_aio_trim (struct nbd_handle *h, uint64_t count, uint64_t offset,
                       nbd_completion_callback *completion, uint32_t flags)
{
  return aio_no_data (h, NBD_CMD_TRIM, count, offset, completion, flags);
}

int64_t
nbd_unlocked_aio_cache (struct nbd_handle *h, uint64_t count, uint64_t offset,
                        nbd_completion_callback *completion, uint32_t flags)
{
  return aio_no_data (h, NBD_CMD_CACHE, count, offset, completion, flags);
}

int64_t
nbd_unlocked_aio_zero (struct nbd_handle *h, uint64_t count, uint64_t offset,
                       nbd_completion_callback *completion, uint32_t flags)
{
  return aio_no_data (h, NBD_CMD_WRITE_ZEROES, count, offset, completion, flags);
}

/* As libnbd, a check of LIBNBD_STRICT_COMMANDS: without it the request
 * goes to the server, which refuses it.
 */
static int
check_block_status (struct nbd_handle *h)
{
  if ((h->strict & LIBNBD_STRICT_COMMANDS)
      && (!h->meta_valid || h->nr_meta_contexts == 0)) {
    set_error (ENOTSUP, "did not negotiate any metadata contexts, "
               "either you did not call nbd_add_meta_context before "
               "connecting or the server does not support it");
    return -1;
  }
  return 0;
}

static struct command *
new_block_status (struct nbd_handle *h, uint64_t count, uint64_t offset,
                  uint32_t flags, nbd_completion_callback *completion)
{
  if (check_block_status (h) == -1
      || check_request (h, NBD_CMD_BLOCK_STATUS, offset, count, flags) == -1)
    return NULL;
  return new_command (h, NBD_CMD_BLOCK_STATUS, offset, count, flags, completion);
}

int64_t
nbd_unlocked_aio_block_status (struct nbd_handle *h, uint64_t count, uint64_t offset,
                               nbd_extent_callback *extent,
                               nbd_completion_callback *completion, uint32_t flags)
{
  struct command *cmd = new_block_status (h, count, offset, flags, completion);
  if (!cmd)
    return -1;
  TAKE_CLOSURE (cmd->extent, extent);
  return issue (h, cmd);
}

int64_t
nbd_unlocked_aio_block_status_64 (struct nbd_handle *h, uint64_t count, uint64_t offset,
                                  nbd_extent64_callback *extent64,
                                  nbd_completion_callback *completion, uint32_t flags)
{
  struct command *cmd = new_block_status (h, count, offset, flags, completion);
  if (!cmd)
    return -1;
  TAKE_CLOSURE (cmd->extent64, extent64);
  return issue (h, cmd);
}

int64_t
nbd_unlocked_aio_block_status_filter (struct nbd_handle *h, uint64_t count,
                                      uint64_t offset, char **contexts,
                                      nbd_extent64_callback *extent64,
                                      nbd_completion_callback *completion,
                                      uint32_t flags)
{
  struct command *cmd;
  size_t n = 0;
  char *payload;

  if (!h->eh_negotiated || !(h->eflags & NBD_FLAG_BLOCK_STAT_PAYLOAD)) {
    set_error (ENOTSUP, "server does not support filtering block status "
               "(needs extended headers and the block status payload flag)");
    return -1;
  }
  if (check_block_status (h) == -1)
    return -1;
  while (contexts[n])
    n++;
  if (n == 0) {
    set_error (EINVAL, "the list of contexts must not be empty");
    return -1;
  }
  payload = malloc (8 + 4 * n);
  if (!payload) {
    set_error (errno, "malloc");
    return -1;
  }
  be64_put (payload, count);
  for (size_t i = 0; i < n; i++) {
    size_t j;
    for (j = 0; j < h->nr_meta_contexts; j++)
      if (strcmp (h->meta_contexts[j].name, contexts[i]) == 0)
        break;
    if (j == h->nr_meta_contexts) {
      set_error (EINVAL, "context %s was not negotiated", contexts[i]);
      free (payload);
      return -1;
    }
    be32_put (payload + 8 + 4 * i, h->meta_contexts[j].id);
  }
  cmd = new_block_status (h, count, offset, flags | LIBNBD_CMD_FLAG_PAYLOAD_LEN,
                          completion);
  if (!cmd) {
    free (payload);
    return -1;
  }
  cmd->payload = payload;
  cmd->payload_len = 8 + 4 * n;
  TAKE_CLOSURE (cmd->extent64, extent64);
  return issue (h, cmd);
}

/* ---- Completion queries and retirement ---- */

static void
unlink_done (struct nbd_handle *h, struct command *cmd, struct command *prev)
{
  if (prev)
    prev->next = cmd->next;
  else
    h->done_head = cmd->next;
  if (h->done_tail == cmd)
    h->done_tail = prev;
  recycle_command (h, cmd);
}

/* Remove a completed command; returns 1, or -1 with its error. */
static int
retire (struct nbd_handle *h, struct command *cmd, struct command *prev)
{
  int err = cmd->error;

  unlink_done (h, cmd, prev);
  if (err) {
    set_error (err, "command failed: %s", strerror (err));
    return -1;
  }
  return 1;
}

int
nbd_unlocked_aio_command_completed (struct nbd_handle *h, uint64_t cookie)
{
  struct command *prev = NULL;

  if (cookie == 0) {
    set_error (EINVAL, "invalid command cookie %" PRIu64, cookie);
    return -1;
  }
  for (struct command *c = h->done_head; c; prev = c, c = c->next)
    if (c->cookie == cookie)
      return retire (h, c, prev);
  /* Still in flight, or not among the finished, unretired commands
   * (already retired, or unknown): false, as libnbd.
   */
  return 0;
}

/* NBD_CMD_DISC is the library's own: it has no reply, it is never
 * abandoned and no caller sees its cookie.  Nothing can be issued after
 * it, so while unsent it is the tail of the send queue.
 */
size_t
nbd_internal_user_in_flight (struct nbd_handle *h)
{
  bool disc_queued = h->to_send_tail && h->to_send_tail->type == NBD_CMD_DISC;
  return h->nr_in_flight - (disc_queued ? 1 : 0);
}

int64_t
nbd_unlocked_aio_peek_command_completed (struct nbd_handle *h)
{
  if (h->done_head)
    return (int64_t) h->done_head->cookie;
  if (nbd_internal_user_in_flight (h) > 0)
    return 0;
  set_error (EINVAL, "no commands are in flight");
  return -1;
}

int
nbd_unlocked_aio_in_flight (struct nbd_handle *h)
{
  return (int) nbd_internal_user_in_flight (h);
}

/* ---- Blocking forms: issue, then run the engine until the reply. ---- */

/* A blocking call from inside a callback would re-enter the engine: it
 * is refused before anything is issued (see BLOCKING below).
 */
static int
wait_command (struct nbd_handle *h, int64_t cookie)
{
  uint64_t c;
  bool dead_at_issue;
  int err = 0;

  if (cookie == -1)
    return -1;
  c = (uint64_t) cookie;
  /* If sending it killed the connection (in issue), the command is done
   * already and there is nothing to wait for.  As libnbd, the call then
   * fails with the command's ENOTCONN, unless the client ran out of
   * memory: that must be said (ENOMEM), not passed off as a lost
   * connection.
   */
  dead_at_issue = h->state == STATE_DEAD && h->dead_errno == ENOMEM;
  switch (dead_at_issue ? -1 : nbd_internal_wait_command (h, c, &err)) {
  case 1: case 2:
    /* Retired for us by the thread that completed it (after 1 the lock
     * is no longer ours: the handle must not be touched).
     */
    if (err) {
      set_error (err, "command failed: %s", strerror (err));
      return -1;
    }
    return 0;
  case 0:
    return nbd_unlocked_aio_command_completed (h, c) == 1 ? 0 : -1;
  default: {
    /* The connection died.  If the reply had fully arrived before (a
     * stray reply right behind it killed the connection), the command
     * keeps the result the server gave it.  Otherwise it was aborted and
     * the engine's error says why.
     */
    struct command *prev = NULL;
    for (struct command *cmd = h->done_head; cmd; prev = cmd, cmd = cmd->next)
      if (cmd->cookie == c) {
        if (!cmd->aborted)
          return retire (h, cmd, prev) == 1 ? 0 : -1;
        unlink_done (h, cmd, prev);
        break;
      }
    if (dead_at_issue)
      nbd_internal_report_dead (h);
    return -1;
  }
  }
}

int
nbd_unlocked_pread (struct nbd_handle *h, void *buf, size_t count, uint64_t offset,
                    uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return (int) refuse_read (h, buf, count);
  return wait_command (h, nbd_unlocked_aio_pread (h, buf, count, offset, NULL, flags));
}

int
nbd_unlocked_pread_structured (struct nbd_handle *h, void *buf, size_t count,
                               uint64_t offset, nbd_chunk_callback *chunk,
                               uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return (int) refuse_read (h, buf, count);
  return wait_command (h, nbd_unlocked_aio_pread_structured (h, buf, count, offset,
                                                             chunk, NULL, flags));
}

int
nbd_unlocked_pwrite (struct nbd_handle *h, const void *buf, size_t count,
                     uint64_t offset, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_pwrite (h, buf, count, offset, NULL, flags));
}

int
nbd_unlocked_flush (struct nbd_handle *h, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_flush (h, NULL, flags));
}

int
nbd_unlocked_trim (struct nbd_handle *h, uint64_t count, uint64_t offset, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_trim (h, count, offset, NULL, flags));
}

int
nbd_unlocked_cache (struct nbd_handle *h, uint64_t count, uint64_t offset, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_cache (h, count, offset, NULL, flags));
}

int
nbd_unlocked_zero (struct nbd_handle *h, uint64_t count, uint64_t offset, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_zero (h, count, offset, NULL, flags));
}

int
nbd_unlocked_block_status (struct nbd_handle *h, uint64_t count, uint64_t offset,
                           nbd_extent_callback *extent, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_block_status (h, count, offset, extent,
                                                         NULL, flags));
}

int
nbd_unlocked_block_status_64 (struct nbd_handle *h, uint64_t count, uint64_t offset,
                              nbd_extent64_callback *extent64, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_block_status_64 (h, count, offset, extent64,
                                                            NULL, flags));
}

int
nbd_unlocked_block_status_filter (struct nbd_handle *h, uint64_t count, uint64_t offset,
                                  char **contexts, nbd_extent64_callback *extent64,
                                  uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  return wait_command (h, nbd_unlocked_aio_block_status_filter (h, count, offset,
                                                                contexts, extent64,
                                                                NULL, flags));
}

/* ---- Disconnecting ---- */

int
nbd_unlocked_aio_disconnect (struct nbd_handle *h, uint32_t flags)
{
  struct command *cmd;

  (void) flags;
  if (nbd_internal_act_on_cancel (h) == -1)
    return -1;
  if (h->disconnect_requested) {
    set_error (EINVAL, "a disconnect was already requested on this handle");
    return -1;
  }
  cmd = new_command (h, NBD_CMD_DISC, 0, 0, 0, NULL);
  if (!cmd)
    return -1;
  h->disconnect_requested = true;
  /* NBD_CMD_DISC has no reply: it leaves the table once sent. */
  if (issue (h, cmd) == -1)
    return -1;
  return 0;
}

static bool
closed_or_dead (struct nbd_handle *h)
{
  return h->state == STATE_CLOSED || h->state == STATE_DEAD;
}

/* LIBNBD_SHUTDOWN_ABANDON_PENDING: user requests the transport would not
 * take never reach the server and fail with ENOTCONN.  Kept: the
 * request partly handed over (its rest must follow or the stream breaks)
 * and NBD_CMD_DISC.
 */
static void
abandon_unsent (struct nbd_handle *h)
{
  struct command *c = h->to_send_head, *abandoned = NULL, **abandoned_tail = &abandoned;
  bool first = true;

  h->to_send_head = h->to_send_tail = NULL;
  while (c) {
    struct command *next = c->next;
    bool keep = (first && h->send_offset > 0) || c->type == NBD_CMD_DISC;

    first = false;
    c->next = NULL;
    if (keep) {
      if (h->to_send_tail)
        h->to_send_tail->next = c;
      else
        h->to_send_head = c;
      h->to_send_tail = c;
    }
    else {
      *abandoned_tail = c;
      abandoned_tail = &c->next;
    }
    c = next;
  }
  /* Completion callbacks run once the queue is consistent again, in
   * issue order.
   */
  while (abandoned) {
    struct command *next = abandoned->next;
    abandoned->next = NULL;
    abandoned->error = ENOTCONN;
    nbd_internal_complete_command (h, abandoned);
    abandoned = next;
  }
  /* Threads blocked on those commands: now, not at some later poll. */
  nbd_internal_flush_wakeups (h);
}

int
nbd_unlocked_shutdown (struct nbd_handle *h, uint32_t flags)
{
  if (nbd_internal_refuse_in_callback (h) == -1)
    return -1;
  if (h->state == STATE_NEGOTIATING)
    return nbd_unlocked_opt_abort (h);

  if (flags & LIBNBD_SHUTDOWN_ABANDON_PENDING) {
    /* Requests are batched: some that libnbd would already have written
     * may still be queued here.  Hand the socket all it takes first, so
     * that only what really could not be sent is abandoned.
     */
    if (h->state == STATE_TRANSMISSION && nbd_internal_transmit (h) == -1)
      return -1;
    abandon_unsent (h);
  }
  if (!h->disconnect_requested && nbd_unlocked_aio_disconnect (h, 0) == -1)
    return -1;
  while (!closed_or_dead (h))
    if (nbd_unlocked_poll (h, -1) == -1)
      return h->state == STATE_CLOSED ? 0 : -1;
  return 0;
}
