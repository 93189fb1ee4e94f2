/* Commands against nbdkit: the blocking forms (pread, pwrite, flush,
 * trim, cache, zero, with FUA / NO_HOLE / FAST_ZERO) with the data
 * verified on the memory, pattern, data and null plugins; the aio forms
 * (cookies, nbd_aio_in_flight, nbd_aio_command_completed,
 * nbd_aio_peek_command_completed, auto-retirement, 64 commands in
 * flight); and the nbd_stats_* counters for known requests.
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

#include "cmdtest.h"

#define PROG "test-commands"

static void
fill (char *buf, size_t n, unsigned seed)
{
  for (size_t i = 0; i < n; i++)
    buf[i] = (char) ((i * 31 + seed * 7 + (i >> 8)) & 0xff);
}

static bool
all_zero (const char *buf, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (buf[i])
      return false;
  return true;
}

/* The byte nbdkit-pattern-plugin serves at offset o. */
static unsigned char
pattern_byte (uint64_t o)
{
  uint64_t base = o & ~(uint64_t) 7;
  return (base >> (8 * (7 - (o & 7)))) & 0xff;
}

/* ---- Blocking commands on nbdkit memory ---- */
static void
test_memory_blocking (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "1M", NULL };
  struct nbd_handle *h;
  static char wbuf[65536], rbuf[65536];

  start_server (&s, argv);
  h = connect_server (&s, false);

  CHECK (nbd_get_size (h) == 1048576, "size %" PRIi64, nbd_get_size (h));
  CHECK (nbd_is_read_only (h) == 0, "read-only");
  CHECK (nbd_can_flush (h) == 1, "can_flush");
  CHECK (nbd_can_fua (h) == 1, "can_fua");
  CHECK (nbd_can_trim (h) == 1, "can_trim");
  CHECK (nbd_can_zero (h) == 1, "can_zero");
  CHECK (nbd_can_cache (h) == 1, "can_cache");
  CHECK (nbd_can_fast_zero (h) == 1, "can_fast_zero");

  /* Fresh memory reads as zeroes (over a non-zero buffer). */
  memset (rbuf, 0xaa, sizeof rbuf);
  EXPECT_OK (nbd_pread (h, rbuf, sizeof rbuf, 0, 0));
  CHECK (all_zero (rbuf, sizeof rbuf), "fresh memory not zero");

  /* Write then read back, several sizes and offsets. */
  {
    static const struct { uint64_t off; size_t len; } cases[] = {
      { 0, 512 }, { 4096, 65536 }, { 12345, 1 }, { 1048576 - 7, 7 },
      { 200000, 33333 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      fill (wbuf, cases[i].len, (unsigned) i + 1);
      EXPECT_OK (nbd_pwrite (h, wbuf, cases[i].len, cases[i].off, 0));
      memset (rbuf, 0, sizeof rbuf);
      EXPECT_OK (nbd_pread (h, rbuf, cases[i].len, cases[i].off, 0));
      CHECK (memcmp (wbuf, rbuf, cases[i].len) == 0,
             "data mismatch at %" PRIu64 "+%zu", cases[i].off, cases[i].len);
    }
  }

  /* FUA write. */
  fill (wbuf, 8192, 99);
  EXPECT_OK (nbd_pwrite (h, wbuf, 8192, 524288, LIBNBD_CMD_FLAG_FUA));
  EXPECT_OK (nbd_pread (h, rbuf, 8192, 524288, 0));
  CHECK (memcmp (wbuf, rbuf, 8192) == 0, "FUA write data mismatch");

  /* Flush. */
  EXPECT_OK (nbd_flush (h, 0));

  /* Trim: the memory plugin reads trimmed areas as zeroes. */
  fill (wbuf, 65536, 5);
  EXPECT_OK (nbd_pwrite (h, wbuf, 65536, 0, 0));
  EXPECT_OK (nbd_trim (h, 32768, 0, 0));
  EXPECT_OK (nbd_pread (h, rbuf, 65536, 0, 0));
  CHECK (all_zero (rbuf, 32768), "trimmed area not zero");
  CHECK (memcmp (rbuf + 32768, wbuf + 32768, 32768) == 0,
         "data after trimmed area changed");
  EXPECT_OK (nbd_trim (h, 4096, 65536, LIBNBD_CMD_FLAG_FUA));

  /* Cache: no effect on data. */
  EXPECT_OK (nbd_cache (h, 65536, 0, 0));
  EXPECT_OK (nbd_pread (h, rbuf, 65536, 0, 0));
  CHECK (memcmp (rbuf + 32768, wbuf + 32768, 32768) == 0,
         "cache changed data");

  /* Zero: plain, NO_HOLE, FAST_ZERO, FUA. */
  fill (wbuf, 65536, 6);
  EXPECT_OK (nbd_pwrite (h, wbuf, 65536, 0, 0));
  EXPECT_OK (nbd_zero (h, 4096, 0, 0));
  EXPECT_OK (nbd_zero (h, 4096, 8192, LIBNBD_CMD_FLAG_NO_HOLE));
  EXPECT_OK (nbd_zero (h, 4096, 16384, LIBNBD_CMD_FLAG_FAST_ZERO));
  EXPECT_OK (nbd_zero (h, 4096, 24576,
                       LIBNBD_CMD_FLAG_FUA | LIBNBD_CMD_FLAG_NO_HOLE));
  EXPECT_OK (nbd_pread (h, rbuf, 32768, 0, 0));
  for (int blk = 0; blk < 8; blk++) {
    if (blk % 2 == 0)
      CHECK (all_zero (rbuf + blk * 4096, 4096), "zeroed block %d not zero",
             blk);
    else
      CHECK (memcmp (rbuf + blk * 4096, wbuf + blk * 4096, 4096) == 0,
             "block %d between zeroed blocks changed", blk);
  }

  /* Read with pread_initialize off still returns the server's data. */
  EXPECT_OK (nbd_set_pread_initialize (h, false));
  memset (rbuf, 0x55, 4096);
  EXPECT_OK (nbd_pread (h, rbuf, 4096, 0, 0));
  CHECK (all_zero (rbuf, 4096), "read with pread_initialize off");

  close_handle (h);
  stop_server (&s);
}

/* ---- pattern, data and null plugins ---- */
static void
test_plugins (void)
{
  struct server s;
  struct nbd_handle *h;
  static unsigned char buf[65536];

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "pattern", "size=1M", NULL };
    start_server (&s, argv);
    h = connect_server (&s, false);
    static const struct { uint64_t off; size_t len; } cases[] = {
      { 0, 64 }, { 8, 8 }, { 3, 13 }, { 65536, 65536 }, { 1048576 - 5, 5 },
      { 777777, 4097 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      memset (buf, 0xee, sizeof buf);
      EXPECT_OK (nbd_pread (h, buf, cases[i].len, cases[i].off, 0));
      for (size_t j = 0; j < cases[i].len; j++)
        if (buf[j] != pattern_byte (cases[i].off + j)) {
          FAIL ("pattern byte at %" PRIu64 " is 0x%02x, expected 0x%02x",
                cases[i].off + j, buf[j], pattern_byte (cases[i].off + j));
          break;
        }
    }
    /* Spot check of the encoding itself. */
    EXPECT_OK (nbd_pread (h, buf, 16, 0x10000, 0));
    CHECK (buf[5] == 0x01 && buf[6] == 0 && buf[7] == 0 && buf[13] == 1,
           "pattern at 0x10000: %02x %02x %02x", buf[5], buf[6], buf[7]);
    close_handle (h);
    stop_server (&s);
  }

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "data", "0x48 0x69 @4096 1 2 3 @8190 0xfe 0xff",
                           "size=16384", NULL };
    start_server (&s, argv);
    h = connect_server (&s, false);
    CHECK (nbd_get_size (h) == 16384, "data size %" PRIi64, nbd_get_size (h));
    memset (buf, 0xee, sizeof buf);
    EXPECT_OK (nbd_pread (h, buf, 16384, 0, 0));
    for (size_t j = 0; j < 16384; j++) {
      unsigned char want = 0;
      switch (j) {
      case 0: want = 0x48; break;
      case 1: want = 0x69; break;
      case 4096: want = 1; break;
      case 4097: want = 2; break;
      case 4098: want = 3; break;
      case 8190: want = 0xfe; break;
      case 8191: want = 0xff; break;
      }
      if (buf[j] != want) {
        FAIL ("data plugin byte %zu is 0x%02x, expected 0x%02x", j, buf[j],
              want);
        break;
      }
    }
    /* A read crossing the boundary. */
    EXPECT_OK (nbd_pread (h, buf, 4, 8189, 0));
    CHECK (buf[0] == 0 && buf[1] == 0xfe && buf[2] == 0xff && buf[3] == 0,
           "data plugin boundary read %02x %02x %02x %02x",
           buf[0], buf[1], buf[2], buf[3]);
    close_handle (h);
    stop_server (&s);
  }

  {
    const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                           "null", "1M", NULL };
    start_server (&s, argv);
    h = connect_server (&s, false);
    memset (buf, 0x77, sizeof buf);
    EXPECT_OK (nbd_pwrite (h, buf, sizeof buf, 0, 0));
    EXPECT_OK (nbd_set_pread_initialize (h, false));
    EXPECT_OK (nbd_pread (h, buf, sizeof buf, 0, 0));
    CHECK (all_zero ((char *) buf, sizeof buf), "null plugin read not zero");
    EXPECT_OK (nbd_zero (h, 1048576, 0, 0));
    EXPECT_OK (nbd_trim (h, 1048576, 0, 0));
    EXPECT_OK (nbd_flush (h, 0));
    close_handle (h);
    stop_server (&s);
  }
}

/* ---- aio ---- */
static int cb_calls;
static int cb_last_error;

static int
completion_retire (void *user_data, int *error)
{
  int *ret = user_data;
  cb_calls++;
  cb_last_error = *error;
  return *ret;
}

/* A 4 KiB read at 0 into rbuf whose completion (completion_retire)
 * returns *ret; checks it gets cookie, runs until nothing is in flight.
 * Returns the cookie it got.
 */
static int64_t
read_and_retire (struct nbd_handle *h, char *rbuf, int *ret, int64_t cookie)
{
  int64_t c = nbd_aio_pread (h, rbuf, 4096, 0,
                             (nbd_completion_callback) {
                               .callback = completion_retire,
                               .user_data = ret }, 0);
  CHECK (c == cookie, "cookie %" PRIi64, c);
  EXPECT_OK (drain (h));
  return c;
}

static void
test_aio (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "8M", NULL };
  struct nbd_handle *h;
  static char wbuf[65536], rbuf[3][4096];
  int64_t c[3], c4;

  start_server (&s, argv);
  h = connect_server (&s, false);

  /* Nothing in flight. */
  CHECK (nbd_aio_in_flight (h) == 0, "in flight %d", nbd_aio_in_flight (h));
  CHECK_FAILS (nbd_aio_peek_command_completed (h), EINVAL,
               "nbd_aio_peek_command_completed", NULL);
  /* As libnbd: cookie 0 is invalid; an unknown cookie is "not
   * completed" (false), not an error.
   */
  CHECK_FAILS (nbd_aio_command_completed (h, 0), EINVAL,
               "nbd_aio_command_completed", NULL);
  CHECK (nbd_aio_command_completed (h, 1) == 0, "unknown cookie 1");
  CHECK (nbd_aio_command_completed (h, 12345) == 0, "unknown cookie 12345");

  fill (wbuf, sizeof wbuf, 3);
  c[0] = nbd_aio_pwrite (h, wbuf, 4096, 0, NBD_NULL_COMPLETION, 0);
  c[1] = nbd_aio_pwrite (h, wbuf + 4096, 4096, 4096, NBD_NULL_COMPLETION, 0);
  c[2] = nbd_aio_flush (h, NBD_NULL_COMPLETION, 0);
  CHECK (c[0] == 1, "first cookie is %" PRIi64 ", expected 1", c[0]);
  CHECK (c[1] == 2 && c[2] == 3, "cookies %" PRIi64 " %" PRIi64, c[1], c[2]);
  /* Replies are only processed when the handle is polled. */
  CHECK (nbd_aio_in_flight (h) == 3, "in flight %d, expected 3",
         nbd_aio_in_flight (h));
  CHECK (nbd_aio_command_completed (h, c[0]) == 0,
         "command_completed while in flight");
  CHECK (nbd_aio_peek_command_completed (h) == 0,
         "peek while in flight: %" PRIi64, nbd_aio_peek_command_completed (h));
  EXPECT_OK (drain (h));
  CHECK (nbd_aio_in_flight (h) == 0, "in flight %d after drain",
         nbd_aio_in_flight (h));
  /* Completed but not retired: peek gives one of them. */
  {
    int64_t p = nbd_aio_peek_command_completed (h);
    CHECK (p >= 1 && p <= 3, "peek returned %" PRIi64, p);
  }
  for (int i = 0; i < 3; i++) {
    int r = nbd_aio_command_completed (h, c[i]);
    CHECK (r == 1, "command_completed (%" PRIi64 ") = %d: %s", c[i], r,
           r == -1 ? nbd_get_error () : "");
    /* Retired: no longer found, false again. */
    CHECK (nbd_aio_command_completed (h, c[i]) == 0,
           "second command_completed (%" PRIi64 ") not false", c[i]);
  }
  CHECK_FAILS (nbd_aio_peek_command_completed (h), EINVAL,
               "nbd_aio_peek_command_completed", NULL);

  /* Reads issued together; peek in order of retirement. */
  for (int i = 0; i < 3; i++) {
    memset (rbuf[i], 0, 4096);
    c[i] = nbd_aio_pread (h, rbuf[i], 4096, 4096 * (i % 2), NBD_NULL_COMPLETION,
                          0);
    CHECK (c[i] == 4 + i, "cookie %" PRIi64 ", expected %d", c[i], 4 + i);
  }
  CHECK (nbd_aio_in_flight (h) == 3, "in flight %d", nbd_aio_in_flight (h));
  EXPECT_OK (drain (h));
  for (int n = 0; n < 3; n++) {
    int64_t p = nbd_aio_peek_command_completed (h);
    CHECK (p >= 4 && p <= 6, "peek %" PRIi64, p);
    if (p < 4 || p > 6)
      break;
    CHECK (nbd_aio_command_completed (h, p) == 1, "completed %" PRIi64, p);
  }
  for (int i = 0; i < 3; i++)
    CHECK (memcmp (rbuf[i], wbuf + 4096 * (i % 2), 4096) == 0,
           "aio read %d mismatch", i);

  /* Completion callback returning 1: auto-retired. */
  {
    int ret1 = 1, ret0 = 0;
    cb_calls = 0;
    c4 = read_and_retire (h, rbuf[0], &ret1, 7);
    CHECK (cb_calls == 1, "callback called %d times", cb_calls);
    CHECK (cb_last_error == 0, "callback error %d", cb_last_error);
    CHECK (nbd_aio_command_completed (h, c4) == 0,
           "auto-retired command still found");
    CHECK_FAILS (nbd_aio_peek_command_completed (h), EINVAL,
                 "nbd_aio_peek_command_completed", NULL);

    /* Returning 0: kept for nbd_aio_command_completed. */
    c4 = read_and_retire (h, rbuf[0], &ret0, 8);
    CHECK (cb_calls == 2, "callback called %d times", cb_calls);
    CHECK (nbd_aio_peek_command_completed (h) == c4, "peek");
    CHECK (nbd_aio_command_completed (h, c4) == 1, "completed");
  }

  /* nbd_aio_notify_read/aio_get_direction driven loop is covered by
   * nbd_poll; blocking calls while aio commands are in flight. */
  c4 = nbd_aio_pread (h, rbuf[1], 4096, 4096, NBD_NULL_COMPLETION, 0);
  EXPECT_OK (nbd_pread (h, rbuf[2], 4096, 0, 0));
  CHECK (memcmp (rbuf[2], wbuf, 4096) == 0, "blocking read mismatch");
  EXPECT_OK (drain (h));
  CHECK (nbd_aio_command_completed (h, c4) == 1, "completed after blocking");
  CHECK (memcmp (rbuf[1], wbuf + 4096, 4096) == 0, "aio read mismatch");

  /* 64 commands in flight: writes then reads, data checked. */
  {
    enum { QD = 64, BS = 65536 };
    static char wb[QD][BS], rb[QD][BS];
    int64_t ck[QD];
    bool done[QD];
    int ndone = 0;

    for (int i = 0; i < QD; i++) {
      fill (wb[i], BS, 100 + i);
      ck[i] = nbd_aio_pwrite (h, wb[i], BS, (uint64_t) i * BS,
                              NBD_NULL_COMPLETION, 0);
      if (ck[i] == -1)
        FAIL ("aio_pwrite %d: %s", i, nbd_get_error ());
    }
    CHECK (nbd_aio_in_flight (h) == QD, "in flight %d", nbd_aio_in_flight (h));
    for (int i = 1; i < QD; i++)
      CHECK (ck[i] == ck[i - 1] + 1, "cookies not increasing");
    EXPECT_OK (drain (h));
    for (int i = QD - 1; i >= 0; i--)
      CHECK (nbd_aio_command_completed (h, ck[i]) == 1, "write %d", i);

    for (int i = 0; i < QD; i++) {
      memset (rb[i], 0, BS);
      ck[i] = nbd_aio_pread (h, rb[i], BS, (uint64_t) (QD - 1 - i) * BS,
                             NBD_NULL_COMPLETION, 0);
      done[i] = false;
    }
    while (ndone < QD) {
      int64_t p;
      if (nbd_aio_in_flight (h) > 0 && nbd_poll (h, -1) == -1) {
        FAIL ("poll: %s", nbd_get_error ());
        break;
      }
      while ((p = nbd_aio_peek_command_completed (h)) > 0) {
        int i;
        for (i = 0; i < QD; i++)
          if (ck[i] == p)
            break;
        if (i == QD || done[i]) {
          FAIL ("peek returned unknown cookie %" PRIi64, p);
          ndone = QD;
          break;
        }
        CHECK (nbd_aio_command_completed (h, p) == 1, "read %d", i);
        done[i] = true;
        ndone++;
      }
      if (p == -1 && ndone < QD) {
        FAIL ("peek failed: %s", nbd_get_error ());
        break;
      }
    }
    for (int i = 0; i < QD; i++)
      CHECK (memcmp (rb[i], wb[QD - 1 - i], BS) == 0, "QD read %d mismatch", i);
  }

  close_handle (h);
  stop_server (&s);
}

/* ---- stats ---- */
struct stats { uint64_t bs, br, cs, cr; };

static struct stats
get_stats (struct nbd_handle *h)
{
  struct stats st = {
    nbd_stats_bytes_sent (h), nbd_stats_bytes_received (h),
    nbd_stats_chunks_sent (h), nbd_stats_chunks_received (h)
  };
  return st;
}

#define CHECK_DELTA(a, b, dbs, dbr, dcs, dcr, what)                     \
  CHECK ((b).bs - (a).bs == (dbs) && (b).br - (a).br == (dbr)           \
         && (b).cs - (a).cs == (dcs) && (b).cr - (a).cr == (dcr),       \
         "%s: deltas sent %" PRIu64 "/%" PRIu64 " received %" PRIu64    \
         "/%" PRIu64 ", expected %" PRIu64 "/%" PRIu64 " %" PRIu64      \
         "/%" PRIu64, what, (b).bs - (a).bs, (b).cs - (a).cs,           \
         (b).br - (a).br, (b).cr - (a).cr, (uint64_t) (dbs),            \
         (uint64_t) (dcs), (uint64_t) (dbr), (uint64_t) (dcr))

static void
test_stats (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "memory", "1M", NULL };
  struct nbd_handle *h;
  static char buf[4096];
  struct stats a, b;

  start_server (&s, argv);

  /* Structured replies (the default). */
  h = connect_server (&s, false);
  CHECK (nbd_get_structured_replies_negotiated (h) == 1, "no structured replies");
  a = get_stats (h);
  CHECK (a.bs > 0 && a.br > 0 && a.cs > 0 && a.cr > 0,
         "handshake not counted: %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64,
         a.bs, a.br, a.cs, a.cr);
  EXPECT_OK (nbd_pwrite (h, buf, 4096, 0, 0));
  b = get_stats (h);
  CHECK_DELTA (a, b, 28 + 4096, 16, 1, 1, "pwrite 4096");
  a = b;
  EXPECT_OK (nbd_pread (h, buf, 4096, 0, 0));
  b = get_stats (h);
  /* One OFFSET_DATA chunk: 20-byte header, 8-byte offset, data. */
  CHECK_DELTA (a, b, 28, 20 + 8 + 4096, 1, 1, "structured pread 4096");
  a = b;
  EXPECT_OK (nbd_flush (h, 0));
  b = get_stats (h);
  CHECK_DELTA (a, b, 28, 16, 1, 1, "flush");
  close_handle (h);

  /* Simple replies only. */
  h = nbd_create ();
  EXPECT_OK (nbd_set_request_structured_replies (h, false));
  EXPECT_OK (nbd_connect_unix (h, s.sock));
  CHECK (nbd_get_structured_replies_negotiated (h) == 0,
         "structured replies negotiated");
  a = get_stats (h);
  EXPECT_OK (nbd_pread (h, buf, 4096, 0, 0));
  b = get_stats (h);
  CHECK_DELTA (a, b, 28, 16 + 4096, 1, 1, "simple pread 4096");
  a = b;
  EXPECT_OK (nbd_pwrite (h, buf, 100, 1000, 0));
  b = get_stats (h);
  CHECK_DELTA (a, b, 28 + 100, 16, 1, 1, "pwrite 100");
  /* A structured read needs structured replies. */
  close_handle (h);

  stop_server (&s);
}

int
main (void)
{
  static void (*const tests[]) (void) = {
    test_memory_blocking, test_plugins, test_aio, test_stats, NULL
  };

  return run_tests (PROG, tests);
}
