/* The fuzz targets' common parts: see harness.h. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "harness.h"

void
contract_failed (const char *file, int line, const char *what)
{
  fprintf (stderr, "%s:%d: API contract broken: %s\n", file, line, what);
  abort ();
}

/* ---- Feeding the client ---- */

static void
send_all_nonblocking (int fd, const uint8_t *p, size_t n)
{
  /* The socket buffer was sized for the largest segment and the client
   * has read everything before: this does not block.
   */
  while (n > 0) {
    ssize_t r = send (fd, p, n, MSG_NOSIGNAL);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0) {
      perror ("feed: send");
      abort ();
    }
    p += r;
    n -= (size_t) r;
  }
}

void
feed_start (struct feed *f, const uint8_t *prefix, size_t prefix_len,
            const uint8_t *data, size_t size)
{
  int sv[2];
  int bufsize = 4 * (MAX_SEGMENT + 1024);

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    perror ("socketpair");
    abort ();
  }
  setsockopt (sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
  fcntl (sv[1], F_SETFL, O_NONBLOCK);
  f->client_fd = sv[0];
  f->server_fd = sv[1];
  f->data = data;
  f->size = size;
  f->pos = 0;
  f->eof_sent = false;
  if (prefix_len)
    send_all_nonblocking (f->server_fd, prefix, prefix_len);
}

void
feed_done (struct feed *f)
{
  close (f->server_fd);
}

/* Send the next segment, or end-of-file after the last. */
static void
feed_next (struct feed *f)
{
  size_t len;

  if (f->eof_sent)
    return;
  if (f->size - f->pos < 2) {
    shutdown (f->server_fd, SHUT_WR);
    f->eof_sent = true;
    return;
  }
  len = (size_t) f->data[f->pos] << 8 | f->data[f->pos + 1];
  f->pos += 2;
  if (len > f->size - f->pos)
    len = f->size - f->pos;
  send_all_nonblocking (f->server_fd, f->data + f->pos, len);
  f->pos += len;
}

/* Throw away what the client sent, so its writes never block. */
static void
feed_drain (struct feed *f)
{
  char buf[65536];
  while (recv (f->server_fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
    ;
}

static struct feed *cur_feed;

void
harness_use_feed (struct feed *f)
{
  cur_feed = f;
}

/* Run the handle's event loop until done (h, arg), or it cannot go on. */
static void
pump (struct nbd_handle *h, bool (*done) (struct nbd_handle *, const void *),
      const void *arg)
{
  /* Each round either moves bytes or ends: bounded, the cap is belt and
   * braces against a library that spins.
   */
  for (int round = 0; round < 1000000; round++) {
    unsigned dir;
    int fd, pending = 0, r;
    struct pollfd pfd;

    if (done (h, arg) || nbd_aio_is_dead (h) == 1 || nbd_aio_is_closed (h) == 1)
      return;
    dir = nbd_aio_get_direction (h);
    fd = nbd_aio_get_fd (h);
    if (fd == -1 || (dir & LIBNBD_AIO_DIRECTION_BOTH) == 0)
      return;
    if (cur_feed) {
      feed_drain (cur_feed);
      if ((dir & LIBNBD_AIO_DIRECTION_READ)
          && ioctl (fd, FIONREAD, &pending) == 0 && pending == 0)
        /* The client has read all and wants more: the server answers. */
        feed_next (cur_feed);
    }
    pfd.fd = fd;
    pfd.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0)
      | ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
    pfd.revents = 0;
    r = poll (&pfd, 1, cur_feed ? 0 : 30000);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0) {
      /* With a feed something is always ready (bytes or end-of-file);
       * with a real server, 30 s of silence ends the session.
       */
      if (!cur_feed)
        fprintf (stderr, "harness: the server is silent\n");
      return;
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
      nbd_aio_notify_read (h);
    else if (pfd.revents & POLLOUT)
      nbd_aio_notify_write (h);
  }
  CHECK (!"the event loop makes no progress");
}

static bool
not_connecting (struct nbd_handle *h, const void *arg)
{
  (void) arg;
  return nbd_aio_is_connecting (h) != 1;
}

static bool
nothing_in_flight (struct nbd_handle *h, const void *arg)
{
  (void) arg;
  return nbd_aio_in_flight (h) <= 0;
}

static bool
never (struct nbd_handle *h, const void *arg)
{
  (void) h; (void) arg;
  return false;
}

/* ---- Closure tracking ----
 *
 * Every closure handed to the library gets a slot; its user_data points
 * at the slot.  Callbacks check that the closure is still alive and that
 * the handle is not closed; .free counts.  When a handle is closed every
 * slot must have been freed exactly once.
 */

enum kind { K_COMPLETION, K_CHUNK, K_EXTENT, K_EXTENT64, K_LIST, K_CONTEXT };

struct tracked {
  enum kind kind;
  unsigned calls, frees;
  /* A data callback's command's completion closure: once that has run
   * the data callback must not run again.
   */
  struct tracked *completion;
  int completion_ret;           /* what the completion callback returns */
  /* The request, for the data callbacks' arguments. */
  char *buf;
  uint64_t offset, count;
};

#define MAX_TRACKED 64
static struct tracked slots[MAX_TRACKED];
static size_t nr_slots;
static bool handle_closed;

static void
tracker_reset (void)
{
  memset (slots, 0, sizeof slots);
  nr_slots = 0;
  handle_closed = false;
}

static struct tracked *
new_slot (enum kind kind)
{
  struct tracked *t;

  CHECK (nr_slots < MAX_TRACKED);
  t = &slots[nr_slots++];
  t->kind = kind;
  return t;
}

static void
alive (const struct tracked *t, enum kind kind)
{
  CHECK (t->kind == kind);
  CHECK (!handle_closed);       /* no callback once nbd_close returned */
  CHECK (t->frees == 0);        /* no callback after .free */
}

static void
free_cb (void *user_data)
{
  struct tracked *t = user_data;
  CHECK (!handle_closed);
  CHECK (t->frees == 0);        /* .free exactly once */
  t->frees++;
}

/* After a synchronous call: its closures are retired with it. */
static void
check_retired (const struct tracked *t)
{
  CHECK (t->frees == 1);
}

static void
close_handle (struct nbd_handle *h)
{
  nbd_close (h);
  handle_closed = true;
  for (size_t i = 0; i < nr_slots; i++)
    CHECK (slots[i].frees == 1);
}

static int
completion_cb (void *user_data, int *error)
{
  struct tracked *t = user_data;
  alive (t, K_COMPLETION);
  CHECK (error != NULL);
  CHECK (t->calls == 0);        /* a command completes once */
  t->calls++;
  return t->completion_ret;
}

static nbd_completion_callback
track_completion (int ret)
{
  struct tracked *t = new_slot (K_COMPLETION);
  t->completion_ret = ret;
  return (nbd_completion_callback) {
    .callback = completion_cb, .user_data = t, .free = free_cb
  };
}

/* A data callback of a command: not after that command's completion. */
static void
data_alive (struct tracked *t, enum kind kind)
{
  alive (t, kind);
  CHECK (t->completion == NULL || t->completion->calls == 0);
  t->calls++;
}

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct tracked *t = user_data;
  const char *p = subbuf;

  data_alive (t, K_CHUNK);
  CHECK (error != NULL);
  CHECK (status == LIBNBD_READ_DATA || status == LIBNBD_READ_HOLE
         || status == LIBNBD_READ_ERROR);
  /* The chunk lies inside the request, and subbuf is where that part of
   * the caller's buffer is.
   */
  CHECK (count <= t->count);
  CHECK (offset >= t->offset && offset - t->offset <= t->count - count);
  CHECK (p == t->buf + (offset - t->offset));
  CHECK (p >= t->buf && p + count <= t->buf + t->count);
  return 0;
}

/* A slot for a data callback of a request. */
static struct tracked *
data_slot (enum kind kind, void *buf, uint64_t count, uint64_t offset,
           struct tracked *completion)
{
  struct tracked *t = new_slot (kind);
  t->buf = buf;
  t->count = count;
  t->offset = offset;
  t->completion = completion;
  return t;
}

static nbd_chunk_callback
track_chunk (void *buf, size_t count, uint64_t offset, struct tracked *completion)
{
  return (nbd_chunk_callback) {
    .callback = chunk_cb, .free = free_cb,
    .user_data = data_slot (K_CHUNK, buf, count, offset, completion),
  };
}

/* Read every entry (so ASan sees an array shorter than it says). */
static volatile uint64_t entries_sink;

/* What both extent callbacks are promised. */
static void
extent_args (struct tracked *t, enum kind kind, const char *metacontext,
             uint64_t offset, const void *entries, size_t nr_entries, int *error)
{
  data_alive (t, kind);
  CHECK (error != NULL);
  /* May be "": like libnbd, the library keeps a context name up to its
   * first NUL byte.
   */
  CHECK (metacontext != NULL);
  CHECK (offset == t->offset);
  CHECK (nr_entries == 0 || entries != NULL);
}

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  extent_args (user_data, K_EXTENT, metacontext, offset, entries, nr_entries, error);
  CHECK (nr_entries % 2 == 0);  /* (length, flags) pairs */
  for (size_t i = 0; i < nr_entries; i++)
    entries_sink += entries[i];
  return 0;
}

static nbd_extent_callback
track_extent (uint64_t count, uint64_t offset, struct tracked *completion)
{
  return (nbd_extent_callback) {
    .callback = extent_cb, .free = free_cb,
    .user_data = data_slot (K_EXTENT, NULL, count, offset, completion),
  };
}

static int
extent64_cb (void *user_data, const char *metacontext, uint64_t offset,
             nbd_extent *entries, size_t nr_entries, int *error)
{
  extent_args (user_data, K_EXTENT64, metacontext, offset, entries, nr_entries, error);
  for (size_t i = 0; i < nr_entries; i++)
    entries_sink += entries[i].length ^ entries[i].flags;
  return 0;
}

static nbd_extent64_callback
track_extent64 (uint64_t count, uint64_t offset, struct tracked *completion)
{
  return (nbd_extent64_callback) {
    .callback = extent64_cb, .free = free_cb,
    .user_data = data_slot (K_EXTENT64, NULL, count, offset, completion),
  };
}

static int
list_cb (void *user_data, const char *name, const char *description)
{
  struct tracked *t = user_data;
  alive (t, K_LIST);
  CHECK (name != NULL && description != NULL);
  CHECK (strlen (name) <= 4096);
  t->calls++;
  return 0;
}

static int
context_cb (void *user_data, const char *name)
{
  struct tracked *t = user_data;
  alive (t, K_CONTEXT);
  CHECK (name != NULL);
  CHECK (strlen (name) <= 4096);
  t->calls++;
  return 0;
}

/* ---- Getters: they must answer, whatever the server said ---- */

static void
free_string (char *s)
{
  if (s)
    CHECK (strlen (s) <= 65536);
  free (s);
}

static void
query_handle (struct nbd_handle *h)
{
  static const char *const contexts[] = {
    LIBNBD_CONTEXT_BASE_ALLOCATION, "qemu:dirty-bitmap:b0", "x:y",
  };
  ssize_t n;

  nbd_get_size (h);
  nbd_is_read_only (h);
  nbd_is_rotational (h);
  nbd_can_flush (h);
  nbd_can_fua (h);
  nbd_can_trim (h);
  nbd_can_zero (h);
  nbd_can_fast_zero (h);
  nbd_can_df (h);
  nbd_can_multi_conn (h);
  nbd_can_cache (h);
  nbd_can_block_status_payload (h);
  for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; i++)
    nbd_can_meta_context (h, contexts[i]);
  for (int i = LIBNBD_SIZE_MINIMUM; i <= LIBNBD_SIZE_PAYLOAD; i++)
    nbd_get_block_size (h, i);
  nbd_get_protocol (h);
  nbd_get_structured_replies_negotiated (h);
  nbd_get_extended_headers_negotiated (h);
  nbd_get_tls_negotiated (h);
  nbd_get_handshake_flags (h);
  free_string (nbd_get_canonical_export_name (h));
  free_string (nbd_get_export_description (h));
  free_string (nbd_get_export_name (h));
  n = nbd_get_nr_meta_contexts (h);
  for (ssize_t i = 0; i < n; i++) {
    char *name = nbd_get_meta_context (h, (size_t) i);
    CHECK (name != NULL);
    free_string (name);
  }
  nbd_connection_state (h);
  nbd_stats_bytes_received (h);
  nbd_stats_chunks_received (h);
}

/* ---- The command mix ---- */

/* Returns whether the command was retired now. */
static bool
retire (struct nbd_handle *h, int64_t cookie)
{
  int r;

  if (cookie <= 0)
    return false;
  r = nbd_aio_command_completed (h, (uint64_t) cookie);
  if (r != 0)
    /* Retired (1: success, -1: the command's error): the cookie is gone,
     * and libnbd then answers false.
     */
    CHECK (nbd_aio_command_completed (h, (uint64_t) cookie) == 0);
  return r != 0;
}

/* One command alone, as a synchronous call would: issue, wait, retire;
 * then its closures (if any) are freed, whether it was issued or not.
 */
static void
one_command (struct nbd_handle *h, int64_t cookie, const struct tracked *a,
             const struct tracked *b)
{
  bool gone = cookie <= 0;      /* never issued: freed before the call returned */

  if (cookie > 0) {
    pump (h, nothing_in_flight, NULL);
    gone = retire (h, cookie);
  }
  if (a && gone)
    check_retired (a);
  if (b && gone)
    check_retired (b);
}

/* Commands one at a time (replies read one by one), then a batch of
 * six in flight together (many replies per read).  The same requests
 * whatever the server says, unless the client refuses one locally.
 */
static bool
completion_ran (struct nbd_handle *h, const void *arg)
{
  const struct tracked *completion = arg;
  (void) h;
  return completion->calls > 0;
}

static void
command_mix (struct nbd_handle *h, bool use_df, bool extents64, bool close_early)
{
  static char buf[16896], wbuf[4096];
  char abuf[2][2048];
  struct tracked *c[6];
  int64_t cookie[6];
  uint32_t df = use_df && nbd_can_df (h) == 1 ? LIBNBD_CMD_FLAG_DF : 0;
  uint32_t fua = nbd_can_fua (h) == 1 ? LIBNBD_CMD_FLAG_FUA : 0;
  nbd_completion_callback cb;
  nbd_chunk_callback chunk;
  nbd_extent_callback ext;
  nbd_extent64_callback ext64;

  memset (wbuf, 0x5a, sizeof wbuf);

  one_command (h, nbd_aio_pread (h, buf, 512, 0, NBD_NULL_COMPLETION, 0),
               NULL, NULL);
  /* Large enough to be received straight into the caller's buffer. */
  cb = track_completion (0);
  one_command (h, nbd_aio_pread (h, buf, sizeof buf, 65536, cb, 0),
               cb.user_data, NULL);

  cb = track_completion (0);
  chunk = track_chunk (buf, 2048, 4096, cb.user_data);
  one_command (h, nbd_aio_pread_structured (h, buf, 2048, 4096, chunk, cb, df),
               chunk.user_data, cb.user_data);

  cb = track_completion (0);
  ext = track_extent (REPLIES_EXPORT_SIZE, 0, cb.user_data);
  one_command (h, nbd_aio_block_status (h, REPLIES_EXPORT_SIZE, 0, ext, cb, 0),
               ext.user_data, cb.user_data);

  if (extents64) {
    ext64 = track_extent64 (65536, 8192, NULL);
    one_command (h, nbd_aio_block_status_64 (h, 65536, 8192, ext64,
                                             NBD_NULL_COMPLETION,
                                             LIBNBD_CMD_FLAG_REQ_ONE),
                 ext64.user_data, NULL);
  }

  cb = track_completion (0);
  one_command (h, nbd_aio_pwrite (h, wbuf, 512, 0, cb, fua), cb.user_data, NULL);
  one_command (h, nbd_aio_trim (h, 4096, 8192, NBD_NULL_COMPLETION, 0), NULL, NULL);
  one_command (h, nbd_aio_zero (h, 4096, 16384, NBD_NULL_COMPLETION, 0), NULL, NULL);
  one_command (h, nbd_aio_cache (h, 4096, 0, NBD_NULL_COMPLETION, 0), NULL, NULL);
  one_command (h, nbd_aio_flush (h, NBD_NULL_COMPLETION, 0), NULL, NULL);

  /* Six in flight together. */
  cb = track_completion (1);    /* auto-retire */
  c[0] = cb.user_data;
  cookie[0] = nbd_aio_pread (h, abuf[0], 1024, 0, cb, 0);

  cb = track_completion (0);
  c[1] = cb.user_data;
  chunk = track_chunk (abuf[1], 2048, 8192, c[1]);
  cookie[1] = nbd_aio_pread_structured (h, abuf[1], 2048, 8192, chunk, cb, df);

  cb = track_completion (0);
  c[2] = cb.user_data;
  if (extents64) {
    ext64 = track_extent64 (REPLIES_EXPORT_SIZE, 0, c[2]);
    cookie[2] = nbd_aio_block_status_64 (h, REPLIES_EXPORT_SIZE, 0, ext64, cb, 0);
  }
  else {
    ext = track_extent (REPLIES_EXPORT_SIZE, 0, c[2]);
    cookie[2] = nbd_aio_block_status (h, REPLIES_EXPORT_SIZE, 0, ext, cb, 0);
  }

  cb = track_completion (0);
  c[3] = cb.user_data;
  cookie[3] = nbd_aio_pwrite (h, wbuf, 1024, 4096, cb, 0);

  cb = track_completion (0);
  c[4] = cb.user_data;
  cookie[4] = nbd_aio_zero (h, 8192, 0, cb, LIBNBD_CMD_FLAG_NO_HOLE);

  c[5] = NULL;
  cookie[5] = nbd_aio_flush (h, NBD_NULL_COMPLETION, 0);

  if (close_early) {
    /* nbd_close with commands in flight (and some done, unretired)
     * must free each closure once, calling nothing after.
     */
    pump (h, completion_ran, c[1]);
    return;
  }
  pump (h, nothing_in_flight, NULL);
  nbd_aio_peek_command_completed (h);
  for (int i = 1; i < 6; i++)
    retire (h, cookie[i]);
  /* The auto-retired one is gone once its completion ran. */
  if (cookie[0] > 0 && c[0]->calls == 1)
    CHECK (nbd_aio_command_completed (h, (uint64_t) cookie[0]) == 0);

  /* NBD_CMD_DISC, then the server's end-of-file. */
  if (nbd_aio_disconnect (h, 0) == 0)
    pump (h, never, NULL);
}

/* ---- The hostile-server session ---- */

struct nbd_handle *
server_session_handle (unsigned settings)
{
  struct nbd_handle *h = nbd_create ();

  CHECK (h != NULL);
  tracker_reset ();
  nbd_set_request_structured_replies (h, (settings & SET_STRUCTURED) != 0);
  nbd_set_request_extended_headers (h, (settings & SET_EXTENDED) != 0);
  nbd_set_opt_mode (h, (settings & SET_OPT_MODE) != 0);
  if (settings & SET_META) {
    nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
    nbd_add_meta_context (h, "qemu:dirty-bitmap:b0");
  }
  if (settings & SET_NOT_STRICT)
    nbd_set_strict_mode (h, 0);
  nbd_set_full_info (h, (settings & SET_FULL_INFO) != 0);
  nbd_set_tls (h, settings & SET_TLS_ALLOW ? LIBNBD_TLS_ALLOW : LIBNBD_TLS_DISABLE);
  if (settings & SET_OLD_FLAGS)
    nbd_set_handshake_flags (h, 0);
  return h;
}

static bool
option_done (struct nbd_handle *h, const void *arg)
{
  const struct tracked *completion = arg;
  return completion->calls > 0 || nbd_aio_is_connecting (h) != 1;
}

/* An nbd_aio_opt_* call has been made with `completion' (its return
 * value `r'): wait for the option to finish.  False if negotiation
 * cannot go on.
 */
static bool
option (struct nbd_handle *h, int r, const struct tracked *completion)
{
  if (r == 0)
    pump (h, option_done, completion);
  return nbd_aio_is_negotiating (h) == 1;
}

static void
negotiate (struct nbd_handle *h, unsigned settings)
{
  nbd_completion_callback cb;
  nbd_list_callback list;
  nbd_context_callback ctx;

  cb = track_completion (0);
  list = (nbd_list_callback) {
    .callback = list_cb, .user_data = new_slot (K_LIST), .free = free_cb
  };
  if (!option (h, nbd_aio_opt_list (h, list, cb), cb.user_data))
    return;

  cb = track_completion (0);
  if (!option (h, nbd_aio_opt_info (h, cb), cb.user_data))
    return;
  query_handle (h);

  if (settings & SET_META) {
    cb = track_completion (0);
    ctx = (nbd_context_callback) {
      .callback = context_cb, .user_data = new_slot (K_CONTEXT), .free = free_cb
    };
    if (!option (h, nbd_aio_opt_list_meta_context (h, ctx, cb), cb.user_data))
      return;
  }
  if (settings & SET_EXTENDED) {
    cb = track_completion (0);
    if (!option (h, nbd_aio_opt_extended_headers (h, cb), cb.user_data))
      return;
  }
  if (settings & SET_STRUCTURED) {
    cb = track_completion (0);
    if (!option (h, nbd_aio_opt_structured_reply (h, cb), cb.user_data))
      return;
  }
  if (settings & SET_META) {
    cb = track_completion (0);
    ctx = (nbd_context_callback) {
      .callback = context_cb, .user_data = new_slot (K_CONTEXT), .free = free_cb
    };
    if (!option (h, nbd_aio_opt_set_meta_context (h, ctx, cb), cb.user_data))
      return;
  }
  cb = track_completion (0);
  if (option (h, nbd_aio_opt_go (h, cb), cb.user_data)
      && nbd_aio_opt_abort (h) == 0)
    /* GO failed: give up politely. */
    pump (h, never, NULL);
}

void
server_session_run (struct nbd_handle *h, int fd, unsigned settings)
{
  if (nbd_aio_connect_socket (h, fd) == 0)
    pump (h, not_connecting, NULL);
  if ((settings & SET_OPT_MODE) && nbd_aio_is_negotiating (h) == 1)
    negotiate (h, settings);
  query_handle (h);
  if (nbd_aio_is_ready (h) == 1)
    command_mix (h, (settings & SET_STRUCTURED) != 0,
                 (settings & SET_EXTENDED) != 0, false);
  query_handle (h);
  close_handle (h);
}

/* ---- The reply-decoder session ---- */

struct nbd_handle *
replies_session_handle (enum reply_mode mode)
{
  struct nbd_handle *h = nbd_create ();

  CHECK (h != NULL);
  tracker_reset ();
  nbd_set_tls (h, LIBNBD_TLS_DISABLE);
  nbd_set_request_structured_replies (h, mode != MODE_SIMPLE);
  nbd_set_request_extended_headers (h, mode == MODE_EXTENDED);
  if (mode != MODE_SIMPLE)
    nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  /* The client checks nothing locally: every request of the mix goes
   * out whatever the export's flags, so the cookies the replies name are
   * the same in the recording and in the canned handshake.
   */
  nbd_set_strict_mode (h, 0);
  return h;
}

static uint8_t *
put_be (uint8_t *p, uint64_t v, int bytes)
{
  for (int i = bytes - 1; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t) v;
  return p + bytes;
}

static uint8_t *
option_reply (uint8_t *p, uint32_t option, uint32_t type, const void *data,
              uint32_t len)
{
  p = put_be (p, 0x3e889045565a9ULL, 8);        /* option reply magic */
  p = put_be (p, option, 4);
  p = put_be (p, type, 4);
  p = put_be (p, len, 4);
  if (len)
    memcpy (p, data, len);
  return p + len;
}

size_t
replies_canned_handshake (enum reply_mode mode, uint32_t context_id, uint8_t *buf)
{
  enum {
    OPT_GO = 7, OPT_STRUCTURED_REPLY = 8, OPT_SET_META_CONTEXT = 10,
    OPT_EXTENDED_HEADERS = 11,
    REP_ACK = 1, REP_INFO = 3, REP_META_CONTEXT = 4,
  };
  /* HAS_FLAGS, SEND_FLUSH, SEND_FUA, SEND_TRIM, SEND_WRITE_ZEROES,
   * SEND_DF, CAN_MULTI_CONN, SEND_CACHE, SEND_FAST_ZERO.
   */
  const uint16_t eflags = 0x0ded;
  uint8_t info[12], meta[4 + 15], *p = buf;

  memcpy (p, "NBDMAGIC", 8);
  p = put_be (p + 8, 0x49484156454F5054ULL, 8); /* IHAVEOPT */
  p = put_be (p, 3, 2);                 /* FIXED_NEWSTYLE | NO_ZEROES */
  if (mode == MODE_EXTENDED)
    p = option_reply (p, OPT_EXTENDED_HEADERS, REP_ACK, NULL, 0);
  if (mode == MODE_STRUCTURED)
    p = option_reply (p, OPT_STRUCTURED_REPLY, REP_ACK, NULL, 0);
  if (mode != MODE_SIMPLE) {
    put_be (meta, context_id, 4);
    memcpy (meta + 4, LIBNBD_CONTEXT_BASE_ALLOCATION, 15);
    p = option_reply (p, OPT_SET_META_CONTEXT, REP_META_CONTEXT, meta, sizeof meta);
    p = option_reply (p, OPT_SET_META_CONTEXT, REP_ACK, NULL, 0);
  }
  put_be (info, 0, 2);                  /* NBD_INFO_EXPORT */
  put_be (info + 2, REPLIES_EXPORT_SIZE, 8);
  put_be (info + 10, eflags, 2);
  p = option_reply (p, OPT_GO, REP_INFO, info, sizeof info);
  p = option_reply (p, OPT_GO, REP_ACK, NULL, 0);
  return (size_t) (p - buf);
}

bool
replies_session_connect (struct nbd_handle *h, int fd)
{
  if (nbd_aio_connect_socket (h, fd) == -1)
    return false;
  pump (h, not_connecting, NULL);
  return nbd_aio_is_ready (h) == 1;
}

void
replies_session_commands (struct nbd_handle *h, enum reply_mode mode,
                          bool close_early)
{
  if (nbd_aio_is_ready (h) == 1)
    command_mix (h, mode != MODE_SIMPLE, mode == MODE_EXTENDED, close_early);
  query_handle (h);
  close_handle (h);
}
