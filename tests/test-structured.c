/* Structured replies against nbdkit (and qemu-nbd for read holes, if
 * installed): nbd_pread_structured chunks, LIBNBD_CMD_FLAG_DF,
 * nbd_set_pread_initialize, chunk callback errors; nbd_block_status and
 * nbd_block_status_64 on nbdkit memory, REQ_ONE, ENOTSUP without a meta
 * context, and nbd_block_status_filter without extended headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-structured"

/* ---- Chunk recording ---- */
#define MAX_CHUNKS 256
struct chunks {
  const char *buf;              /* the read buffer */
  uint64_t offset;              /* of the request */
  size_t count;
  size_t n;
  struct { size_t rel; size_t len; uint64_t off; unsigned status; int err_in; }
    c[MAX_CHUNKS];
  int fail_at;                  /* return -1 on this chunk (index), or -1 */
  int fail_errno;               /* stored into *error when failing */
  bool fail_all;                /* return -1 on every chunk */
  int frees;
};

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct chunks *ch = user_data;
  if (ch->n < MAX_CHUNKS) {
    ch->c[ch->n].rel = (const char *) subbuf - ch->buf;
    ch->c[ch->n].len = count;
    ch->c[ch->n].off = offset;
    ch->c[ch->n].status = status;
    ch->c[ch->n].err_in = *error;
  }
  ch->n++;
  if (ch->fail_all || (int) ch->n - 1 == ch->fail_at) {
    if (ch->fail_errno >= 0)
      *error = ch->fail_errno;
    return -1;
  }
  return 0;
}

static void
chunk_free (void *user_data)
{
  struct chunks *ch = user_data;
  ch->frees++;
}

static void
chunks_init (struct chunks *ch, const void *buf, size_t count, uint64_t offset)
{
  memset (ch, 0, sizeof *ch);
  ch->buf = buf;
  ch->count = count;
  ch->offset = offset;
  ch->fail_at = -1;
}

static nbd_chunk_callback
chunk_closure (struct chunks *ch)
{
  return (nbd_chunk_callback) { .callback = chunk_cb, .user_data = ch,
                                .free = chunk_free };
}

/* The chunks cover the request exactly, each subbuf matches its
 * offset; returns the number of chunks with the given status.
 */
static size_t
check_coverage (struct chunks *ch, const char *what, unsigned count_status)
{
  static unsigned char seen[4 << 20];
  size_t nstatus = 0;

  if (ch->n > MAX_CHUNKS) {
    FAIL ("%s: too many chunks %zu", what, ch->n);
    return 0;
  }
  memset (seen, 0, ch->count);
  for (size_t i = 0; i < ch->n; i++) {
    if (ch->c[i].status == count_status)
      nstatus++;
    if (ch->c[i].status != LIBNBD_READ_DATA && ch->c[i].status != LIBNBD_READ_HOLE) {
      FAIL ("%s: chunk %zu status %u", what, i, ch->c[i].status);
      continue;
    }
    if (ch->c[i].len == 0)
      FAIL ("%s: chunk %zu has length 0", what, i);
    if (ch->c[i].off != ch->offset + ch->c[i].rel)
      FAIL ("%s: chunk %zu offset %" PRIu64 " does not match subbuf (rel %zu)",
            what, i, ch->c[i].off, ch->c[i].rel);
    if (ch->c[i].rel + ch->c[i].len > ch->count) {
      FAIL ("%s: chunk %zu outside the buffer", what, i);
      continue;
    }
    for (size_t j = ch->c[i].rel; j < ch->c[i].rel + ch->c[i].len; j++) {
      if (seen[j]) {
        FAIL ("%s: byte %zu covered twice", what, j);
        return nstatus;
      }
      seen[j] = 1;
    }
    if (ch->c[i].status == LIBNBD_READ_HOLE)
      for (size_t j = ch->c[i].rel; j < ch->c[i].rel + ch->c[i].len; j++)
        if (ch->buf[j]) {
          FAIL ("%s: hole chunk %zu byte %zu not zero", what, i, j);
          break;
        }
  }
  for (size_t j = 0; j < ch->count; j++)
    if (!seen[j]) {
      FAIL ("%s: byte %zu not covered by any chunk", what, j);
      break;
    }
  return nstatus;
}

/* ---- Structured reads from nbdkit ---- */
static void
test_nbdkit_reads (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "data", "1 2 3 @1048576 4 5", "size=2M", NULL };
  struct nbd_handle *h;
  static char buf[2 << 20];
  struct chunks ch;

  start_server (&s, argv);
  h = connect_server (&s, false);
  CHECK (nbd_get_structured_replies_negotiated (h) == 1, "no structured replies");
  CHECK (nbd_can_df (h) == 1, "can_df");

  /* Whole disk. */
  chunks_init (&ch, buf, sizeof buf, 0);
  memset (buf, 0xaa, sizeof buf);
  EXPECT_OK (nbd_pread_structured (h, buf, sizeof buf, 0, chunk_closure (&ch), 0));
  CHECK (ch.frees == 1, "chunk .free called %d times", ch.frees);
  CHECK (ch.n >= 1, "no chunk");
  check_coverage (&ch, "nbdkit data whole", 0);
  CHECK (buf[0] == 1 && buf[1] == 2 && buf[2] == 3 && buf[3] == 0,
         "data at 0: %d %d %d", buf[0], buf[1], buf[2]);
  CHECK (buf[1048576] == 4 && buf[1048577] == 5 && buf[1048578] == 0,
         "data at 1M");
  for (size_t i = 0; i < ch.n && i < MAX_CHUNKS; i++)
    CHECK (ch.c[i].err_in == 0, "chunk %zu error in %d", i, ch.c[i].err_in);

  /* Unaligned piece, DF: exactly one data chunk covering it. */
  chunks_init (&ch, buf, 1000, 1048000);
  EXPECT_OK (nbd_pread_structured (h, buf, 1000, 1048000, chunk_closure (&ch),
                                   LIBNBD_CMD_FLAG_DF));
  CHECK (ch.n == 1, "DF read: %zu chunks", ch.n);
  CHECK (check_coverage (&ch, "DF", LIBNBD_READ_DATA) == 1, "DF: no data chunk");
  CHECK (buf[576] == 4 && buf[577] == 5, "DF data");

  /* A plain nbd_pread also works with structured replies. */
  memset (buf, 0xaa, 8);
  EXPECT_OK (nbd_pread (h, buf, 8, 0, 0));
  CHECK (memcmp (buf, "\1\2\3\0\0\0\0\0", 8) == 0, "pread data");

  /* pread_initialize: default true, buffer zeroed before the read.
   * A failing read shows it: the buffer is sanitized.
   */
  CHECK (nbd_get_pread_initialize (h) == 1, "pread_initialize default not true");
  chunks_init (&ch, buf, 4096, 8192);
  ch.fail_at = 0;
  ch.fail_errno = EPROTO;
  memset (buf, 0xaa, 4096);
  CHECK_FAILS (nbd_pread_structured (h, buf, 4096, 8192, chunk_closure (&ch), 0),
               EPROTO, "nbd_pread_structured", NULL);
  CHECK (ch.frees == 1, "chunk .free %d", ch.frees);
  for (size_t j = 0; j < 4096; j++)
    if (buf[j] == (char) 0xaa) {
      FAIL ("pread_initialize: byte %zu not sanitized", j);
      break;
    }

  /* Callback -1 with *error left 0 => EPROTO; with *error=ENOMEM => ENOMEM. */
  chunks_init (&ch, buf, 4096, 0);
  ch.fail_at = 0;
  ch.fail_errno = -1;           /* leave *error alone */
  CHECK_FAILS (nbd_pread_structured (h, buf, 4096, 0, chunk_closure (&ch), 0),
               EPROTO, "nbd_pread_structured", NULL);
  chunks_init (&ch, buf, 4096, 0);
  ch.fail_at = 0;
  ch.fail_errno = ENOMEM;
  CHECK_FAILS (nbd_pread_structured (h, buf, 4096, 0, chunk_closure (&ch), 0),
               ENOMEM, "nbd_pread_structured", NULL);
  CHECK (ch.frees == 1, "chunk .free %d", ch.frees);

  /* The connection is still usable after a callback failure. */
  memset (buf, 0, 8);
  EXPECT_OK (nbd_pread (h, buf, 8, 1048576, 0));
  CHECK (buf[0] == 4 && buf[1] == 5, "read after callback failure");

  /* aio form: the command fails; completion callback sees the error. */
  {
    int64_t c;
    chunks_init (&ch, buf, 4096, 0);
    ch.fail_at = 0;
    ch.fail_errno = ERANGE;
    c = nbd_aio_pread_structured (h, buf, 4096, 0, chunk_closure (&ch),
                                  NBD_NULL_COMPLETION, 0);
    CHECK (c > 0, "aio_pread_structured: %s", nbd_get_error ());
    EXPECT_OK (drain (h));
    CHECK_FAILS (nbd_aio_command_completed (h, c), ERANGE,
                 "nbd_aio_command_completed", NULL);
    CHECK (ch.frees == 1, "chunk .free %d", ch.frees);
  }

  close_handle (h);

  /* Without structured replies a structured read still works: the
   * whole buffer is one data chunk.
   */
  h = nbd_create ();
  EXPECT_OK (nbd_set_request_structured_replies (h, false));
  EXPECT_OK (nbd_connect_unix (h, s.sock));
  CHECK (nbd_get_structured_replies_negotiated (h) == 0, "sr negotiated");
  chunks_init (&ch, buf, 65536, 0);
  EXPECT_OK (nbd_pread_structured (h, buf, 65536, 0, chunk_closure (&ch), 0));
  CHECK (ch.n == 1 && ch.c[0].status == LIBNBD_READ_DATA && ch.c[0].len == 65536,
         "simple-reply structured read: %zu chunks", ch.n);
  CHECK (buf[0] == 1 && buf[2] == 3, "simple-reply data");
  /* DF needs structured replies. */
  CHECK (nbd_can_df (h) == 0, "can_df without structured replies");
  CHECK_FAILS (nbd_pread_structured (h, buf, 512, 0, chunk_closure (&ch),
                                     LIBNBD_CMD_FLAG_DF),
               EINVAL, "nbd_pread_structured", NULL);
  close_handle (h);

  stop_server (&s);
}

/* ---- Holes: qemu-nbd on a sparse file ---- */
static void
test_qemu_holes (void)
{
  struct server s;
  char dir[] = "/tmp/test-structured-XXXXXX";
  char file[128];
  struct nbd_handle *h;
  static char buf[2 << 20], data[4096];
  struct chunks ch;
  int fd;
  size_t nholes, ndata;

  if (system ("qemu-nbd --version >/dev/null 2>&1") != 0) {
    fprintf (stderr, "%s: qemu-nbd not found, skipping the hole tests\n", PROG);
    return;
  }
  if (!mkdtemp (dir)) {
    FAIL ("mkdtemp");
    return;
  }
  snprintf (file, sizeof file, "%s/disk.img", dir);
  fd = open (file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  memset (data, 'x', sizeof data);
  if (fd == -1 || ftruncate (fd, 2 << 20) == -1
      || pwrite (fd, data, sizeof data, 0) != sizeof data
      || pwrite (fd, data, sizeof data, 1 << 20) != sizeof data
      || close (fd) == -1) {
    FAIL ("create %s", file);
    return;
  }
  {
    const char *argv[] = { "qemu-nbd", "-f", "raw", "-t", "-e", "4",
                           "-k", "$SOCK", "--pid-file", "$PID", file, NULL };
    start_server (&s, argv);
  }
  h = connect_server (&s, true);

  /* Whole disk, buffer not pre-zeroed: holes must still read as zero. */
  EXPECT_OK (nbd_set_pread_initialize (h, false));
  chunks_init (&ch, buf, sizeof buf, 0);
  memset (buf, 0xaa, sizeof buf);
  EXPECT_OK (nbd_pread_structured (h, buf, sizeof buf, 0, chunk_closure (&ch), 0));
  nholes = check_coverage (&ch, "qemu-nbd whole", LIBNBD_READ_HOLE);
  ndata = ch.n - nholes;
  printf ("%s: qemu-nbd read: %zu chunks, %zu holes\n", PROG, ch.n, nholes);
  CHECK (nholes >= 1, "no hole chunk from qemu-nbd on a sparse file");
  CHECK (ndata >= 1, "no data chunk");
  CHECK (memcmp (buf, data, 4096) == 0, "data at 0");
  CHECK (memcmp (buf + (1 << 20), data, 4096) == 0, "data at 1M");
  for (size_t j = 4096; j < (1 << 20); j++)
    if (buf[j]) {
      FAIL ("byte %zu not zero", j);
      break;
    }

  /* A callback failing on every chunk: called for every chunk, the
   * first error wins, later chunks see it as *error on input.
   */
  if (ch.n >= 2) {
    size_t expected = ch.n;
    chunks_init (&ch, buf, sizeof buf, 0);
    ch.fail_all = true;
    ch.fail_errno = ENOMEM;
    CHECK_FAILS (nbd_pread_structured (h, buf, sizeof buf, 0,
                                       chunk_closure (&ch), 0),
                 ENOMEM, "nbd_pread_structured", NULL);
    CHECK (ch.n == expected, "callback called %zu times, expected %zu",
           ch.n, expected);
    for (size_t i = 1; i < ch.n && i < MAX_CHUNKS; i++)
      CHECK (ch.c[i].err_in == ENOMEM, "chunk %zu error on input %d", i,
             ch.c[i].err_in);
  }

  /* DF: one data chunk, holes included as zero data. */
  chunks_init (&ch, buf, sizeof buf, 0);
  memset (buf, 0xaa, sizeof buf);
  EXPECT_OK (nbd_pread_structured (h, buf, sizeof buf, 0, chunk_closure (&ch),
                                   LIBNBD_CMD_FLAG_DF));
  CHECK (ch.n == 1 && ch.c[0].status == LIBNBD_READ_DATA,
         "DF: %zu chunks, first status %u", ch.n, ch.c[0].status);
  check_coverage (&ch, "qemu-nbd DF", 0);
  CHECK (buf[8192] == 0 && memcmp (buf + (1 << 20), data, 4096) == 0, "DF data");

  close_handle (h);
  stop_server (&s);
  unlink (file);
  rmdir (dir);
}

/* ---- Block status ---- */
struct bs {
  int calls;
  char ctx[64];
  uint64_t offset;
  size_t n;
  uint64_t len[64], flags[64];
  int frees;
  int ret;                      /* what the callback returns */
  int set_err;
};

static int
extent32_cb (void *user_data, const char *metacontext, uint64_t offset,
             uint32_t *entries, size_t nr_entries, int *error)
{
  struct bs *b = user_data;
  b->calls++;
  snprintf (b->ctx, sizeof b->ctx, "%s", metacontext);
  b->offset = offset;
  if (nr_entries % 2 != 0)
    FAIL ("32-bit extent callback: odd nr_entries %zu", nr_entries);
  b->n = 0;
  for (size_t i = 0; i + 1 < nr_entries && b->n < 64; i += 2, b->n++) {
    b->len[b->n] = entries[i];
    b->flags[b->n] = entries[i + 1];
  }
  if (b->ret == -1 && b->set_err)
    *error = b->set_err;
  return b->ret;
}

static int
extent64_cb (void *user_data, const char *metacontext, uint64_t offset,
             nbd_extent *entries, size_t nr_entries, int *error)
{
  struct bs *b = user_data;
  b->calls++;
  snprintf (b->ctx, sizeof b->ctx, "%s", metacontext);
  b->offset = offset;
  b->n = 0;
  for (size_t i = 0; i < nr_entries && b->n < 64; i++, b->n++) {
    b->len[b->n] = entries[i].length;
    b->flags[b->n] = entries[i].flags;
  }
  if (b->ret == -1 && b->set_err)
    *error = b->set_err;
  return b->ret;
}

static void
count_free_bs (void *user_data)
{
  struct bs *b = user_data;
  b->frees++;
}

/* The flags the extents give for byte o (relative to b->offset), or -1. */
static int64_t
flags_at (struct bs *b, uint64_t o)
{
  uint64_t pos = b->offset;
  for (size_t i = 0; i < b->n; i++) {
    if (o >= pos && o < pos + b->len[i])
      return (int64_t) b->flags[i];
    pos += b->len[i];
  }
  return -1;
}

static void
check_map (struct bs *b, const char *what, uint64_t start, uint64_t count)
{
  uint64_t total = 0;
  CHECK (b->calls == 1, "%s: callback called %d times", what, b->calls);
  CHECK (strcmp (b->ctx, "base:allocation") == 0, "%s: context \"%s\"", what,
         b->ctx);
  CHECK (b->offset == start, "%s: offset %" PRIu64, what, b->offset);
  for (size_t i = 0; i < b->n; i++) {
    CHECK (b->len[i] > 0, "%s: extent %zu has length 0", what, i);
    total += b->len[i];
  }
  /* The server may stop short, and the last extent may go beyond the
   * request (the NBD spec allows it), but no extent may start past it.
   */
  CHECK (total > 0 && total - b->len[b->n - 1] < count,
         "%s: extents total %" PRIu64 " for a request of %" PRIu64,
         what, total, count);
  /* Written: 0..64K and 512K..576K; the rest is a hole reading as zero. */
  static const struct { uint64_t o; int64_t f; } probes[] = {
    { 0, 0 }, { 65535, 0 }, { 65536, 3 }, { 300000, 3 }, { 524288, 0 },
    { 589823, 0 }, { 589824, 3 }, { 1048575, 3 },
  };
  for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
    int64_t f;
    if (probes[i].o < start || probes[i].o >= start + total)
      continue;
    f = flags_at (b, probes[i].o);
    CHECK (f == probes[i].f, "%s: flags at %" PRIu64 " are %" PRIi64
           ", expected %" PRIi64, what, probes[i].o, f, probes[i].f);
  }
}

static void
test_block_status (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "1M", NULL };
  struct nbd_handle *h;
  static char buf[65536];
  struct bs b;

  start_server (&s, argv);

  /* No meta context requested: ENOTSUP before sending. */
  h = connect_server (&s, false);
  CHECK (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0,
         "base:allocation negotiated without asking");
  memset (&b, 0, sizeof b);
  {
    uint64_t sent = nbd_stats_bytes_sent (h);
    CHECK_FAILS (nbd_block_status (h, 65536, 0,
                                   (nbd_extent_callback) { .callback = extent32_cb,
                                                           .user_data = &b,
                                                           .free = count_free_bs },
                                   0),
                 ENOTSUP, "nbd_block_status", NULL);
    CHECK_FAILS (nbd_block_status_64 (h, 65536, 0,
                                      (nbd_extent64_callback) { .callback = extent64_cb,
                                                                .user_data = &b },
                                      0),
                 ENOTSUP, "nbd_block_status_64", NULL);
    CHECK (nbd_stats_bytes_sent (h) == sent, "block status without context sent");
    CHECK (b.calls == 0, "callback called");
    CHECK (b.frees == 1, "extent .free called %d times on early failure", b.frees);
  }
  close_handle (h);

  h = connect_server (&s, true);
  CHECK (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1,
         "base:allocation not negotiated");
  memset (buf, 'z', sizeof buf);
  EXPECT_OK (nbd_pwrite (h, buf, 65536, 0, 0));
  EXPECT_OK (nbd_pwrite (h, buf, 65536, 524288, 0));

  memset (&b, 0, sizeof b);
  EXPECT_OK (nbd_block_status (h, 1048576, 0,
                               (nbd_extent_callback) { .callback = extent32_cb,
                                                       .user_data = &b,
                                                       .free = count_free_bs },
                               0));
  check_map (&b, "block_status", 0, 1048576);
  CHECK (b.frees == 1, ".free %d", b.frees);
  CHECK (b.n >= 4, "block_status: only %zu extents", b.n);

  memset (&b, 0, sizeof b);
  EXPECT_OK (nbd_block_status_64 (h, 1048576, 0,
                                  (nbd_extent64_callback) { .callback = extent64_cb,
                                                            .user_data = &b,
                                                            .free = count_free_bs },
                                  0));
  check_map (&b, "block_status_64", 0, 1048576);
  CHECK (b.frees == 1, ".free %d", b.frees);

  /* Partial ranges. */
  memset (&b, 0, sizeof b);
  EXPECT_OK (nbd_block_status_64 (h, 600000, 32768,
                                  (nbd_extent64_callback) { .callback = extent64_cb,
                                                            .user_data = &b }, 0));
  check_map (&b, "block_status_64 partial", 32768, 600000);

  /* REQ_ONE: a single extent. */
  memset (&b, 0, sizeof b);
  EXPECT_OK (nbd_block_status (h, 1048576, 0,
                               (nbd_extent_callback) { .callback = extent32_cb,
                                                       .user_data = &b },
                               LIBNBD_CMD_FLAG_REQ_ONE));
  CHECK (b.n == 1, "REQ_ONE: %zu extents", b.n);
  check_map (&b, "block_status REQ_ONE", 0, 1048576);
  memset (&b, 0, sizeof b);
  EXPECT_OK (nbd_block_status_64 (h, 1048576 - 65536, 65536,
                                  (nbd_extent64_callback) { .callback = extent64_cb,
                                                            .user_data = &b },
                                  LIBNBD_CMD_FLAG_REQ_ONE));
  CHECK (b.n == 1 && b.flags[0] == 3, "REQ_ONE at 64K: %zu extents flags %"
         PRIu64, b.n, b.flags[0]);
  check_map (&b, "block_status_64 REQ_ONE", 65536, 1048576 - 65536);

  /* Extent callback failing: the command fails with its error. */
  memset (&b, 0, sizeof b);
  b.ret = -1;
  b.set_err = EXDEV;
  CHECK_FAILS (nbd_block_status_64 (h, 65536, 0,
                                    (nbd_extent64_callback) { .callback = extent64_cb,
                                                              .user_data = &b },
                                    0),
               EXDEV, "nbd_block_status_64", NULL);
  memset (&b, 0, sizeof b);
  b.ret = -1;
  CHECK_FAILS (nbd_block_status (h, 65536, 0,
                                 (nbd_extent_callback) { .callback = extent32_cb,
                                                         .user_data = &b },
                                 0),
               EPROTO, "nbd_block_status", NULL);
  /* Still usable. */
  EXPECT_OK (nbd_pread (h, buf, 512, 0, 0));

  /* aio form. */
  {
    int64_t c;
    memset (&b, 0, sizeof b);
    c = nbd_aio_block_status_64 (h, 1048576, 0,
                                 (nbd_extent64_callback) { .callback = extent64_cb,
                                                           .user_data = &b,
                                                           .free = count_free_bs },
                                 NBD_NULL_COMPLETION, 0);
    CHECK (c > 0, "aio_block_status_64: %s", nbd_get_error ());
    EXPECT_OK (drain (h));
    CHECK (nbd_aio_command_completed (h, c) == 1, "aio block status");
    check_map (&b, "aio_block_status_64", 0, 1048576);
    CHECK (b.frees == 1, ".free %d", b.frees);
  }

  /* Filtering needs extended headers, which nbdkit 1.32 lacks. */
  CHECK (nbd_get_extended_headers_negotiated (h) == 0,
         "extended headers negotiated with nbdkit 1.32?");
  CHECK (nbd_can_block_status_payload (h) == 0, "can_block_status_payload");
  {
    char *ctxs[] = { (char *) LIBNBD_CONTEXT_BASE_ALLOCATION, NULL };
    uint64_t sent = nbd_stats_bytes_sent (h);
    memset (&b, 0, sizeof b);
    CHECK_FAILS (nbd_block_status_filter (h, 65536, 0, ctxs,
                                          (nbd_extent64_callback) { .callback = extent64_cb,
                                                                    .user_data = &b,
                                                                    .free = count_free_bs },
                                          0),
                 ENOTSUP, "nbd_block_status_filter", NULL);
    CHECK (b.calls == 0, "callback called");
    CHECK (b.frees == 1, "filter: .free %d on early failure", b.frees);
    CHECK (nbd_stats_bytes_sent (h) == sent, "filter request was sent");
  }

  close_handle (h);
  stop_server (&s);
}

int
main (void)
{
  static void (*const tests[]) (void) = {
    test_nbdkit_reads, test_qemu_holes, test_block_status, NULL
  };

  return run_tests (PROG, tests);
}
