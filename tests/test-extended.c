/* Extended headers, 64-bit block status and block-status payloads,
 * against the project's own server (tests/nbd-test-server).
 *
 * Checked here:
 *  - extended headers are negotiated by default; data commands
 *    (pread/pwrite/trim/zero/flush) with the data verified;
 *  - structured reads with holes (chunk callback offsets and statuses);
 *  - nbd_block_status_64 and nbd_block_status against a model of what
 *    was written, for base:allocation and qemu:dirty-bitmap:test;
 *  - nbd_block_status_filter: only the listed contexts are reported; an
 *    un-negotiated context is EINVAL; without extended headers ENOTSUP;
 *  - fault big-extent (status flags above 32 bits): the 32-bit call fails
 *    with EOVERFLOW, the 64-bit one reports the flags;
 *  - fault big-extent-length (one extent > 4 GiB): the 32-bit callback
 *    gets a length that fits and is not the low 32 bits of the real one;
 *  - nbd_set_request_extended_headers (false) and a server without
 *    extended headers: structured replies are used instead;
 *  - option mode: nbd_opt_extended_headers, nbd_opt_structured_reply;
 *  - trim/zero of more than 4 GiB: fine with extended headers, ERANGE
 *    without.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnbd.h>

#include "server.h"
#include "checks.h"

#define GiB (UINT64_C(1) << 30)
#define KiB 1024

/* Start the test server with extra arguments (NULL-terminated). */
#define START(s, ...)                                                   \
  start_test_server ((s), "test-extended",                              \
                     (const char *const []) { __VA_ARGS__ })

static struct nbd_handle *
new_handle (bool meta)
{
  struct nbd_handle *h = nbd_create ();
  REQUIRE (h != NULL, "nbd_create");
  if (meta) {
    REQUIRE (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0,
             "add_meta_context");
    REQUIRE (nbd_add_meta_context (h, "qemu:dirty-bitmap:test") == 0,
             "add_meta_context");
  }
  return h;
}

static void
finish_handle (struct nbd_handle *h, struct server *s)
{
  nbd_close (h);
  server_stop (s);
}

/* ---- Recording extent callbacks ---- */

#define MAX_CALLS 8
#define MAX_EXT 64
struct ext_call {
  char ctx[64];
  uint64_t offset;
  size_t n;                     /* extents */
  uint64_t len[MAX_EXT];
  uint64_t flags[MAX_EXT];
};
struct ext_log {
  int ncalls;
  struct ext_call call[MAX_CALLS];
};

static struct ext_call *
new_call (struct ext_log *log, const char *ctx, uint64_t offset)
{
  struct ext_call *c;
  if (log->ncalls >= MAX_CALLS)
    return NULL;
  c = &log->call[log->ncalls++];
  snprintf (c->ctx, sizeof c->ctx, "%s", ctx);
  c->offset = offset;
  c->n = 0;
  return c;
}

static int
ext32_cb (void *user_data, const char *ctx, uint64_t offset,
          uint32_t *entries, size_t nr_entries, int *error)
{
  struct ext_log *log = user_data;
  struct ext_call *c = new_call (log, ctx, offset);
  (void) error;
  if (!c)
    return 0;
  CHECK (nr_entries % 2 == 0, "odd nr_entries %zu", nr_entries);
  for (size_t i = 0; i + 1 < nr_entries && c->n < MAX_EXT; i += 2) {
    c->len[c->n] = entries[i];
    c->flags[c->n] = entries[i + 1];
    c->n++;
  }
  return 0;
}

static int
ext64_cb (void *user_data, const char *ctx, uint64_t offset,
          nbd_extent *entries, size_t nr_entries, int *error)
{
  struct ext_log *log = user_data;
  struct ext_call *c = new_call (log, ctx, offset);
  (void) error;
  if (!c)
    return 0;
  for (size_t i = 0; i < nr_entries && c->n < MAX_EXT; i++) {
    c->len[c->n] = entries[i].length;
    c->flags[c->n] = entries[i].flags;
    c->n++;
  }
  return 0;
}

static struct ext_call *
find_call (struct ext_log *log, const char *ctx)
{
  for (int i = 0; i < log->ncalls; i++)
    if (strcmp (log->call[i].ctx, ctx) == 0)
      return &log->call[i];
  return NULL;
}

/* Compare a context's extents with the expected list exactly. */
static void
check_extents (struct ext_log *log, const char *ctx, uint64_t offset,
               const uint64_t *exp, size_t nexp, const char *what)
{
  struct ext_call *c = find_call (log, ctx);
  int count = 0;
  for (int i = 0; i < log->ncalls; i++)
    count += strcmp (log->call[i].ctx, ctx) == 0;
  CHECK (count == 1, "%s: context %s reported %d times", what, ctx, count);
  if (!c)
    return;
  CHECK (c->offset == offset, "%s: %s offset %" PRIu64, what, ctx, c->offset);
  CHECK (c->n == nexp, "%s: %s has %zu extents, expected %zu", what, ctx,
         c->n, nexp);
  for (size_t i = 0; i < c->n && i < nexp; i++) {
    CHECK (c->len[i] == exp[2 * i] && c->flags[i] == exp[2 * i + 1],
           "%s: %s extent %zu is (%" PRIu64 ", 0x%" PRIx64 "), expected (%"
           PRIu64 ", 0x%" PRIx64 ")", what, ctx, i, c->len[i], c->flags[i],
           exp[2 * i], exp[2 * i + 1]);
  }
}

/* ---- Recording chunk callback ---- */

struct chunk_rec { uint64_t off; size_t len; unsigned status; };
struct chunk_log { int n; struct chunk_rec r[64]; const char *base; uint64_t base_off; bool ptr_ok; };

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct chunk_log *log = user_data;
  (void) error;
  if (log->base &&
      (const char *) subbuf != log->base + (offset - log->base_off))
    log->ptr_ok = false;
  if (log->n < 64)
    log->r[log->n++] = (struct chunk_rec) { offset, count, status };
  return 0;
}

/* ---- The model of the 1 MiB export after the writes below ---- */

#define EXP_SIZE (1024 * KiB)
static unsigned char model[EXP_SIZE];
static bool model_hole[EXP_SIZE / 4096];   /* reads back as an unwritten hole */

static void
fill (unsigned char *p, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char) (seed + i * 7 + (i >> 8));
}

/* ---- Tests ---- */

/* Default server: extended headers, data commands, structured reads,
 * block status (32 and 64 bit), filter.
 */
static void
test_default (void)
{
  struct server s;
  struct nbd_handle *h;
  static unsigned char buf[256 * KiB], wbuf[64 * KiB];
  struct ext_log log;

  START (&s, NULL);
  h = new_handle (true);
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");

  CHECK (nbd_get_extended_headers_negotiated (h) == 1, "eh not negotiated");
  CHECK (nbd_get_structured_replies_negotiated (h) == 1,
         "structured replies not reported with extended headers");
  CHECK (nbd_can_block_status_payload (h) == 1, "no block status payload");
  CHECK (nbd_can_meta_context (h, "base:allocation") == 1, "base:allocation");
  CHECK (nbd_can_meta_context (h, "qemu:dirty-bitmap:test") == 1, "dirty bitmap");
  CHECK (nbd_can_df (h) == 1, "df");
  CHECK (nbd_get_size (h) == EXP_SIZE, "size %" PRId64, nbd_get_size (h));

  /* Initially all holes reading as zero. */
  memset (model, 0, sizeof model);
  for (size_t i = 0; i < EXP_SIZE / 4096; i++)
    model_hole[i] = true;

  /* Write [0, 64K) and [128K, 136K). */
  fill (wbuf, sizeof wbuf, 1);
  CHECK (nbd_pwrite (h, wbuf, 64 * KiB, 0, 0) == 0, "pwrite: %s", nbd_get_error ());
  memcpy (model, wbuf, 64 * KiB);
  for (int b = 0; b < 16; b++) model_hole[b] = false;
  fill (wbuf, 8 * KiB, 99);
  CHECK (nbd_pwrite (h, wbuf, 8 * KiB, 128 * KiB, LIBNBD_CMD_FLAG_FUA) == 0,
         "pwrite fua: %s", nbd_get_error ());
  memcpy (model + 128 * KiB, wbuf, 8 * KiB);
  model_hole[32] = model_hole[33] = false;

  /* Trim [16K, 32K): the server punches holes. */
  CHECK (nbd_trim (h, 16 * KiB, 16 * KiB, 0) == 0, "trim: %s", nbd_get_error ());
  memset (model + 16 * KiB, 0, 16 * KiB);
  for (int b = 4; b < 8; b++) model_hole[b] = true;

  /* Zero [128K, 132K) (hole) and [132K, 136K) with NO_HOLE (data). */
  CHECK (nbd_zero (h, 4 * KiB, 128 * KiB, 0) == 0, "zero: %s", nbd_get_error ());
  CHECK (nbd_zero (h, 4 * KiB, 132 * KiB, LIBNBD_CMD_FLAG_NO_HOLE) == 0,
         "zero no_hole: %s", nbd_get_error ());
  memset (model + 128 * KiB, 0, 8 * KiB);
  model_hole[32] = true;
  CHECK (nbd_flush (h, 0) == 0, "flush: %s", nbd_get_error ());

  /* Unaligned write inside the data area. */
  fill (wbuf, 1000, 55);
  CHECK (nbd_pwrite (h, wbuf, 1000, 40 * KiB + 17, 0) == 0, "pwrite: %s",
         nbd_get_error ());
  memcpy (model + 40 * KiB + 17, wbuf, 1000);

  /* Plain read of everything written. */
  memset (buf, 0xaa, sizeof buf);
  CHECK (nbd_pread (h, buf, 192 * KiB, 0, 0) == 0, "pread: %s", nbd_get_error ());
  CHECK (memcmp (buf, model, 192 * KiB) == 0, "pread data differs from model");

  /* DF read: one data chunk. */
  {
    struct chunk_log cl = { .base = (char *) buf, .base_off = 0, .ptr_ok = true };
    memset (buf, 0xaa, sizeof buf);
    CHECK (nbd_pread_structured (h, buf, 100 * KiB, 0,
                                 (nbd_chunk_callback) { .callback = chunk_cb, .user_data = &cl },
                                 LIBNBD_CMD_FLAG_DF) == 0,
           "pread_structured DF: %s", nbd_get_error ());
    CHECK (cl.n == 1 && cl.r[0].status == LIBNBD_READ_DATA && cl.r[0].off == 0
           && cl.r[0].len == 100 * KiB, "DF read: %d chunks", cl.n);
    CHECK (memcmp (buf, model, 100 * KiB) == 0, "DF read data differs");
    CHECK (cl.ptr_ok, "subbuf not inside the caller's buffer");
  }

  /* Structured read with holes over [0, 192K). */
  {
    struct chunk_log cl = { .base = (char *) buf, .base_off = 0, .ptr_ok = true };
    uint64_t pos = 0;
    static const struct chunk_rec expect[] = {
      { 0, 16 * KiB, LIBNBD_READ_DATA },
      { 16 * KiB, 16 * KiB, LIBNBD_READ_HOLE },
      { 32 * KiB, 32 * KiB, LIBNBD_READ_DATA },
      { 64 * KiB, 64 * KiB, LIBNBD_READ_HOLE },
      { 128 * KiB, 4 * KiB, LIBNBD_READ_HOLE },
      { 132 * KiB, 4 * KiB, LIBNBD_READ_DATA },
      { 136 * KiB, 56 * KiB, LIBNBD_READ_HOLE },
    };
    memset (buf, 0xaa, sizeof buf);
    CHECK (nbd_pread_structured (h, buf, 192 * KiB, 0,
                                 (nbd_chunk_callback) { .callback = chunk_cb, .user_data = &cl },
                                 0) == 0,
           "pread_structured: %s", nbd_get_error ());
    CHECK (memcmp (buf, model, 192 * KiB) == 0, "structured read data differs");
    CHECK (cl.ptr_ok, "subbuf not inside the caller's buffer");
    CHECK (cl.n == (int) (sizeof expect / sizeof expect[0]), "%d chunks", cl.n);
    for (int i = 0; i < cl.n; i++) {
      const struct chunk_rec *r = &cl.r[i];
      /* In order, contiguous (this server sends them in order). */
      CHECK (r->off == pos, "chunk %d at %" PRIu64 ", expected %" PRIu64,
             i, r->off, pos);
      pos = r->off + r->len;
      if (i < (int) (sizeof expect / sizeof expect[0]))
        CHECK (r->off == expect[i].off && r->len == expect[i].len
               && r->status == expect[i].status,
               "chunk %d: (%" PRIu64 ", %zu, %u) expected (%" PRIu64 ", %zu, %u)",
               i, r->off, r->len, r->status, expect[i].off, expect[i].len,
               expect[i].status);
      /* Holes must match the model. */
      if (r->status == LIBNBD_READ_HOLE)
        for (uint64_t b = r->off / 4096; b < (r->off + r->len) / 4096; b++)
          CHECK (model_hole[b], "hole chunk covers written block %" PRIu64, b);
    }
    CHECK (pos == 192 * KiB, "chunks cover %" PRIu64, pos);
  }

  /* An unaligned structured read inside a hole and data. */
  {
    struct chunk_log cl = { .base = (char *) buf + 1, .base_off = 60 * KiB + 3, .ptr_ok = true };
    memset (buf, 0xaa, sizeof buf);
    CHECK (nbd_pread_structured (h, buf + 1, 10 * KiB, 60 * KiB + 3,
                                 (nbd_chunk_callback) { .callback = chunk_cb, .user_data = &cl },
                                 0) == 0,
           "pread_structured: %s", nbd_get_error ());
    CHECK (memcmp (buf + 1, model + 60 * KiB + 3, 10 * KiB) == 0, "data differs");
    CHECK (cl.ptr_ok, "subbuf offset wrong");
    CHECK (cl.n == 2 && cl.r[0].status == LIBNBD_READ_DATA
           && cl.r[0].off == 60 * KiB + 3 && cl.r[0].len == 4 * KiB - 3
           && cl.r[1].status == LIBNBD_READ_HOLE && cl.r[1].off == 64 * KiB
           && cl.r[1].len == 6 * KiB + 3, "unaligned read: %d chunks", cl.n);
  }

  /* Block status, 64-bit, whole export. */
  static const uint64_t exp_alloc[] = {
    16 * KiB, 0,
    16 * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO,
    32 * KiB, 0,
    68 * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO,
    4 * KiB, 0,
    (1024 - 136) * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO,
  };
  static const uint64_t exp_dirty[] = {
    64 * KiB, LIBNBD_STATE_DIRTY,
    64 * KiB, 0,
    8 * KiB, LIBNBD_STATE_DIRTY,
    (1024 - 136) * KiB, 0,
  };
  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status_64 (h, EXP_SIZE, 0,
                              (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                              0) == 0, "block_status_64: %s", nbd_get_error ());
  CHECK (log.ncalls == 2, "block_status_64: %d calls", log.ncalls);
  check_extents (&log, "base:allocation", 0, exp_alloc, 6, "bs64");
  check_extents (&log, "qemu:dirty-bitmap:test", 0, exp_dirty, 4, "bs64");

  /* 32-bit block status: same answer. */
  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status (h, EXP_SIZE, 0,
                           (nbd_extent_callback) { .callback = ext32_cb, .user_data = &log },
                           0) == 0, "block_status: %s", nbd_get_error ());
  CHECK (log.ncalls == 2, "block_status: %d calls", log.ncalls);
  check_extents (&log, "base:allocation", 0, exp_alloc, 6, "bs32");
  check_extents (&log, "qemu:dirty-bitmap:test", 0, exp_dirty, 4, "bs32");

  /* Sub-range with REQ_ONE, starting mid-extent. */
  {
    static const uint64_t e1[] = { 8 * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO };
    static const uint64_t e2[] = { 40 * KiB, LIBNBD_STATE_DIRTY };
    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_64 (h, 100 * KiB, 24 * KiB,
                                (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                LIBNBD_CMD_FLAG_REQ_ONE) == 0,
           "block_status_64 req_one: %s", nbd_get_error ());
    check_extents (&log, "base:allocation", 24 * KiB, e1, 1, "req_one");
    check_extents (&log, "qemu:dirty-bitmap:test", 24 * KiB, e2, 1, "req_one");
  }

  /* Filter: only the listed context is reported. */
  {
    char *only_base[] = { (char *) "base:allocation", NULL };
    char *only_dirty[] = { (char *) "qemu:dirty-bitmap:test", NULL };
    char *both[] = { (char *) "qemu:dirty-bitmap:test", (char *) "base:allocation", NULL };
    char *bad[] = { (char *) "base:allocation", (char *) "qemu:allocation-depth", NULL };

    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_filter (h, EXP_SIZE, 0, only_base,
                                    (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                    0) == 0, "filter base: %s", nbd_get_error ());
    CHECK (log.ncalls == 1, "filter base: %d calls", log.ncalls);
    check_extents (&log, "base:allocation", 0, exp_alloc, 6, "filter base");

    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_filter (h, EXP_SIZE, 0, only_dirty,
                                    (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                    0) == 0, "filter dirty: %s", nbd_get_error ());
    CHECK (log.ncalls == 1, "filter dirty: %d calls", log.ncalls);
    check_extents (&log, "qemu:dirty-bitmap:test", 0, exp_dirty, 4, "filter dirty");

    /* PAYLOAD_LEN passed by the caller is fine (auto flag). */
    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_filter (h, EXP_SIZE, 0, both,
                                    (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                    LIBNBD_CMD_FLAG_PAYLOAD_LEN) == 0,
           "filter both: %s", nbd_get_error ());
    CHECK (log.ncalls == 2, "filter both: %d calls", log.ncalls);

    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_filter (h, EXP_SIZE, 0, bad,
                                    (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                    0) == -1, "filter with un-negotiated context succeeded");
    CHECK_ERR (EINVAL, "nbd_block_status_filter", NULL);
    CHECK (log.ncalls == 0, "callback called %d times", log.ncalls);
  }

  /* Server-side errors do not break the connection. */
  CHECK (nbd_pread (h, buf, 4096, EXP_SIZE, 0) == -1, "read past end worked");
  CHECK (nbd_aio_is_dead (h) == 0, "dead after a bounds error");
  CHECK (nbd_set_strict_mode (h, 0) == 0, "strict");
  CHECK (nbd_pread (h, buf, 4096, EXP_SIZE, 0) == -1, "read past end worked");
  CHECK_ERR (EINVAL, "nbd_pread", NULL);
  CHECK (nbd_aio_is_dead (h) == 0, "dead after a server error");
  CHECK (nbd_pread (h, buf, 4096, 0, 0) == 0 && memcmp (buf, model, 4096) == 0,
         "read after server error: %s", nbd_get_error ());

  CHECK (nbd_shutdown (h, 0) == 0, "shutdown: %s", nbd_get_error ());
  finish_handle (h, &s);
}

/* Fault big-extent: first base:allocation extent has flags bit 32 set. */
static void
test_big_extent (void)
{
  struct server s;
  struct nbd_handle *h;
  struct ext_log log;
  char buf[512];

  START (&s, "--fault", "big-extent", NULL);
  h = new_handle (true);
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  REQUIRE (nbd_get_extended_headers_negotiated (h) == 1, "eh");

  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status (h, 64 * KiB, 0,
                           (nbd_extent_callback) { .callback = ext32_cb, .user_data = &log },
                           0) == -1, "32-bit block status passed big flags");
  CHECK_ERR (EOVERFLOW, "nbd_block_status", NULL);
  CHECK (find_call (&log, "base:allocation") == NULL,
         "base:allocation delivered with truncated flags");
  CHECK (nbd_aio_is_dead (h) == 0, "EOVERFLOW killed the connection");

  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status_64 (h, 64 * KiB, 0,
                              (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                              0) == 0, "block_status_64: %s", nbd_get_error ());
  {
    struct ext_call *c = find_call (&log, "base:allocation");
    CHECK (c && c->n == 1 && c->len[0] == 64 * KiB
           && c->flags[0] == ((UINT64_C(1) << 32) | 3),
           "64-bit flags not reported: n=%zu flags=0x%" PRIx64,
           c ? c->n : 0, c && c->n ? c->flags[0] : 0);
  }
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0, "pread: %s", nbd_get_error ());
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

/* Fault big-extent-length: one base:allocation extent of the whole
 * request length, here more than 4 GiB.
 */
static void
test_big_extent_length (void)
{
  struct server s;
  struct nbd_handle *h;
  struct ext_log log;
  uint64_t count = 5 * GiB;

  START (&s, "--size", "8G", "--fault", "big-extent-length", NULL);
  h = new_handle (true);
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  REQUIRE (nbd_get_extended_headers_negotiated (h) == 1, "eh");

  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status_64 (h, count, 0,
                              (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                              0) == 0, "block_status_64: %s", nbd_get_error ());
  {
    struct ext_call *c = find_call (&log, "base:allocation");
    CHECK (c && c->n == 1 && c->len[0] == count
           && c->flags[0] == (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO),
           "64-bit: n=%zu len=%" PRIu64, c ? c->n : 0, c && c->n ? c->len[0] : 0);
  }

  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status (h, count, 0,
                           (nbd_extent_callback) { .callback = ext32_cb, .user_data = &log },
                           0) == 0, "block_status: %s", nbd_get_error ());
  {
    struct ext_call *c = find_call (&log, "base:allocation");
    CHECK (c != NULL, "no base:allocation call");
    if (c) {
      CHECK (c->n >= 1, "no extents");
      if (c->n >= 1) {
        /* Fits, is not the low 32 bits (1 GiB) and is a sensible
         * (block-aligned, near 4 GiB) shortening of the real extent.
         */
        fprintf (stderr, "test-extended: big-extent-length: 32-bit callback got "
                 "%zu extent(s), first length %" PRIu64 "\n", c->n, c->len[0]);
        CHECK (c->len[0] <= UINT32_MAX, "len %" PRIu64, c->len[0]);
        CHECK (c->len[0] != (count & UINT32_MAX), "length truncated to low bits");
        CHECK (c->len[0] > 4 * GiB - 64 * KiB, "length %" PRIu64 " too short",
               c->len[0]);
        CHECK (c->len[0] % 512 == 0, "length %" PRIu64 " unaligned", c->len[0]);
        CHECK (c->flags[0] == (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO),
               "flags 0x%" PRIx64, c->flags[0]);
      }
      /* The sum of what is reported may not exceed the real extent. */
      uint64_t sum = 0;
      for (size_t i = 0; i < c->n; i++)
        sum += c->len[i];
      CHECK (sum <= count, "32-bit extents sum to %" PRIu64, sum);
    }
  }
  CHECK (nbd_aio_is_dead (h) == 0, "dead");
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

/* Large trim/zero with and without extended headers. */
static void
test_large_requests (bool eh)
{
  struct server s;
  struct nbd_handle *h;
  struct ext_log log;
  uint64_t count = 5 * GiB;

  START (&s, "--size", "8G", NULL);
  h = new_handle (true);
  if (!eh)
    REQUIRE (nbd_set_request_extended_headers (h, false) == 0, "set eh");
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  CHECK (nbd_get_extended_headers_negotiated (h) == (eh ? 1 : 0), "eh");

  /* Write a little data at 1 GiB so the zero has something to clear. */
  {
    char d[4096];
    memset (d, 0x5a, sizeof d);
    CHECK (nbd_pwrite (h, d, sizeof d, GiB, 0) == 0, "pwrite: %s", nbd_get_error ());
  }

  if (eh) {
    char d[4096];
    CHECK (nbd_zero (h, count, 0, 0) == 0, "zero 5G: %s", nbd_get_error ());
    CHECK (nbd_pread (h, d, sizeof d, GiB, 0) == 0, "pread: %s", nbd_get_error ());
    for (size_t i = 0; i < sizeof d; i++)
      if (d[i] != 0) {
        CHECK (false, "byte %zu not zeroed", i);
        break;
      }
    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_64 (h, count, 0,
                                (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                0) == 0, "bs64: %s", nbd_get_error ());
    {
      struct ext_call *c = find_call (&log, "base:allocation");
      CHECK (c && c->n == 1 && c->len[0] == count
             && c->flags[0] == (LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO),
             "after zero: n=%zu len=%" PRIu64, c ? c->n : 0,
             c && c->n ? c->len[0] : 0);
    }
    CHECK (nbd_trim (h, count, 2 * GiB, 0) == 0, "trim 5G: %s", nbd_get_error ());
    CHECK (nbd_cache (h, count, 0, 0) == 0, "cache 5G: %s", nbd_get_error ());
  }
  else {
    CHECK (nbd_zero (h, count, 0, 0) == -1, "zero 5G worked without eh");
    CHECK_ERR (ERANGE, "nbd_zero", NULL);
    CHECK (nbd_trim (h, count, 0, 0) == -1, "trim 5G worked without eh");
    CHECK_ERR (ERANGE, "nbd_trim", NULL);
    CHECK (nbd_block_status_64 (h, count, 0,
                                (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                0) == -1, "bs64 5G worked without eh");
    CHECK_ERR (ERANGE, "nbd_block_status_64", NULL);
    CHECK (nbd_block_status (h, count, 0,
                             (nbd_extent_callback) { .callback = ext32_cb, .user_data = &log },
                             0) == -1, "bs32 5G worked without eh");
    CHECK_ERR (ERANGE, "nbd_block_status", NULL);
    CHECK (nbd_cache (h, count, 0, 0) == -1, "cache 5G worked without eh");
    CHECK_ERR (ERANGE, "nbd_cache", NULL);
    /* Exactly UINT32_MAX is still allowed. */
    CHECK (nbd_zero (h, UINT32_MAX, 0, 0) == 0, "zero 4G-1: %s", nbd_get_error ());
    CHECK (nbd_aio_is_dead (h) == 0, "dead");
  }
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

/* Structured replies without extended headers, either because the
 * client did not ask or because the server refused.
 */
static void
test_no_eh (bool client_side)
{
  struct server s;
  struct nbd_handle *h;
  struct ext_log log;
  char buf[64 * KiB], w[8 * KiB];
  struct chunk_log cl = { .ptr_ok = true };
  char *only_base[] = { (char *) "base:allocation", NULL };

  if (client_side)
    START (&s, NULL);
  else
    START (&s, "--no-extended-headers", NULL);
  h = new_handle (true);
  if (client_side) {
    CHECK (nbd_get_request_extended_headers (h) == 1, "default request eh");
    REQUIRE (nbd_set_request_extended_headers (h, false) == 0, "set eh");
    CHECK (nbd_get_request_extended_headers (h) == 0, "request eh");
  }
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  CHECK (nbd_get_extended_headers_negotiated (h) == 0, "eh negotiated");
  CHECK (nbd_get_structured_replies_negotiated (h) == 1, "sr not negotiated");
  CHECK (nbd_can_block_status_payload (h) == 0, "block status payload");
  CHECK (nbd_can_meta_context (h, "base:allocation") == 1, "base:allocation");

  fill ((unsigned char *) w, sizeof w, 3);
  CHECK (nbd_pwrite (h, w, sizeof w, 8 * KiB, 0) == 0, "pwrite: %s", nbd_get_error ());
  cl.base = buf;
  cl.base_off = 0;
  memset (buf, 0xaa, sizeof buf);
  CHECK (nbd_pread_structured (h, buf, sizeof buf, 0,
                               (nbd_chunk_callback) { .callback = chunk_cb, .user_data = &cl },
                               0) == 0, "pread_structured: %s", nbd_get_error ());
  CHECK (cl.n == 3 && cl.r[0].status == LIBNBD_READ_HOLE && cl.r[0].len == 8 * KiB
         && cl.r[1].status == LIBNBD_READ_DATA && cl.r[1].off == 8 * KiB
         && cl.r[2].status == LIBNBD_READ_HOLE && cl.r[2].off == 16 * KiB
         && cl.r[2].len == 48 * KiB, "chunks: %d", cl.n);
  CHECK (cl.ptr_ok, "subbuf pointers");
  {
    bool ok = true;
    for (size_t i = 0; i < sizeof buf; i++)
      if ((unsigned char) buf[i] != (i >= 8 * KiB && i < 16 * KiB ?
                                     (unsigned char) w[i - 8 * KiB] : 0))
        ok = false;
    CHECK (ok, "read data differs");
  }
  CHECK (nbd_trim (h, 4 * KiB, 8 * KiB, 0) == 0, "trim: %s", nbd_get_error ());
  CHECK (nbd_flush (h, 0) == 0, "flush: %s", nbd_get_error ());

  {
    static const uint64_t ea[] = {
      12 * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO,
      4 * KiB, 0,
      48 * KiB, LIBNBD_STATE_HOLE | LIBNBD_STATE_ZERO,
    };
    static const uint64_t ed[] = { 8 * KiB, 0, 8 * KiB, 1, 48 * KiB, 0 };
    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status (h, 64 * KiB, 0,
                             (nbd_extent_callback) { .callback = ext32_cb, .user_data = &log },
                             0) == 0, "block_status: %s", nbd_get_error ());
    check_extents (&log, "base:allocation", 0, ea, 3, "sr bs32");
    check_extents (&log, "qemu:dirty-bitmap:test", 0, ed, 3, "sr bs32");
    memset (&log, 0, sizeof log);
    CHECK (nbd_block_status_64 (h, 64 * KiB, 0,
                                (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                0) == 0, "block_status_64: %s", nbd_get_error ());
    check_extents (&log, "base:allocation", 0, ea, 3, "sr bs64");
    check_extents (&log, "qemu:dirty-bitmap:test", 0, ed, 3, "sr bs64");
  }

  /* Filtering needs extended headers. */
  memset (&log, 0, sizeof log);
  CHECK (nbd_block_status_filter (h, 64 * KiB, 0, only_base,
                                  (nbd_extent64_callback) { .callback = ext64_cb, .user_data = &log },
                                  0) == -1, "filter worked without eh");
  CHECK_ERR (ENOTSUP, "nbd_block_status_filter", NULL);
  CHECK (log.ncalls == 0, "callback called");
  CHECK (nbd_aio_is_dead (h) == 0, "dead");
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

/* Option mode. */
static void
test_opt_mode (int order)
{
  struct server s;
  struct nbd_handle *h;
  char buf[4096];

  START (&s, NULL);
  h = new_handle (true);
  REQUIRE (nbd_set_opt_mode (h, true) == 0, "opt mode");
  REQUIRE (nbd_set_request_extended_headers (h, false) == 0, "eh");
  REQUIRE (nbd_set_request_structured_replies (h, false) == 0, "sr");
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  CHECK (nbd_aio_is_negotiating (h) == 1, "not negotiating");
  CHECK (nbd_get_extended_headers_negotiated (h) == 0, "eh before option");
  CHECK (nbd_get_structured_replies_negotiated (h) == 0, "sr before option");

  if (order == 0) {
    /* Extended headers first, then structured replies. */
    CHECK (nbd_opt_extended_headers (h) == 1, "opt_extended_headers: %s",
           nbd_get_error ());
    CHECK (nbd_get_extended_headers_negotiated (h) == 1, "eh after option");
    CHECK (nbd_get_structured_replies_negotiated (h) == 1,
           "extended headers imply structured replies");
    /* Asking for structured replies afterwards (this server accepts)
     * must not downgrade the connection from extended headers.
     */
    int r = nbd_opt_structured_reply (h);
    fprintf (stderr, "test-extended: opt_structured_reply after extended "
             "headers returned %d\n", r);
    CHECK (r == 0 || r == 1, "opt_structured_reply: %d %s", r, nbd_get_error ());
    CHECK (nbd_get_extended_headers_negotiated (h) == 1, "eh lost after SR option");
    CHECK (nbd_get_structured_replies_negotiated (h) == 1, "sr");
    /* And again: still 1. */
    CHECK (nbd_opt_extended_headers (h) == 1, "second opt_extended_headers: %s",
           nbd_get_error ());
  }
  else {
    CHECK (nbd_opt_structured_reply (h) == 1, "opt_structured_reply: %s",
           nbd_get_error ());
    CHECK (nbd_get_structured_replies_negotiated (h) == 1, "sr");
    CHECK (nbd_get_extended_headers_negotiated (h) == 0, "eh");
    CHECK (nbd_opt_extended_headers (h) == 1, "opt_extended_headers: %s",
           nbd_get_error ());
    CHECK (nbd_get_extended_headers_negotiated (h) == 1, "eh after option");
  }
  CHECK (nbd_opt_go (h) == 0, "opt_go: %s", nbd_get_error ());
  CHECK (nbd_aio_is_ready (h) == 1, "not ready");
  CHECK (nbd_get_extended_headers_negotiated (h) == 1, "eh after go");
  CHECK (nbd_can_meta_context (h, "base:allocation") == 1, "meta after go");
  CHECK (nbd_can_block_status_payload (h) == 1, "payload after go");
  memset (buf, 1, sizeof buf);
  CHECK (nbd_pwrite (h, buf, sizeof buf, 0, 0) == 0, "pwrite: %s", nbd_get_error ());
  memset (buf, 0, sizeof buf);
  CHECK (nbd_pread (h, buf, sizeof buf, 0, 0) == 0 && buf[0] == 1 && buf[4095] == 1,
         "pread: %s", nbd_get_error ());
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

/* Opt mode against a server refusing extended headers. */
static void
test_opt_refused (void)
{
  struct server s;
  struct nbd_handle *h;

  START (&s, "--no-extended-headers", NULL);
  h = new_handle (false);
  REQUIRE (nbd_set_opt_mode (h, true) == 0, "opt mode");
  REQUIRE (nbd_set_request_extended_headers (h, false) == 0, "eh");
  REQUIRE (nbd_set_request_structured_replies (h, false) == 0, "sr");
  REQUIRE (nbd_connect_unix (h, s.sock) == 0, "connect");
  CHECK (nbd_opt_extended_headers (h) == 0, "refused EH reported as %s",
         nbd_get_error ());
  CHECK (nbd_get_extended_headers_negotiated (h) == 0, "eh");
  CHECK (nbd_aio_is_negotiating (h) == 1, "not negotiating after refusal");
  CHECK (nbd_opt_structured_reply (h) == 1, "opt_structured_reply: %s",
         nbd_get_error ());
  CHECK (nbd_opt_go (h) == 0, "opt_go: %s", nbd_get_error ());
  CHECK (nbd_get_extended_headers_negotiated (h) == 0, "eh");
  CHECK (nbd_get_structured_replies_negotiated (h) == 1, "sr");
  nbd_shutdown (h, 0);
  finish_handle (h, &s);
}

int
main (void)
{
  alarm (30);

  test_default ();
  test_big_extent ();
  test_big_extent_length ();
  test_large_requests (true);
  test_large_requests (false);
  test_no_eh (true);
  test_no_eh (false);
  test_opt_mode (0);
  test_opt_mode (1);
  test_opt_refused ();

  return check_status ("test-extended");
}
