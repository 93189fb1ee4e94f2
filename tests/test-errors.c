/* Server-side command errors against nbdkit's error filter: each
 * command's error reaches the caller with the right errno (EIO, ENOSPC,
 * EPERM, EINVAL, ENOMEM, ESHUTDOWN) and message, in the blocking and aio
 * forms, the connection survives, and structured reads with a generic
 * error chunk.  Plus several slow commands in flight (delay filter).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "cmdtest.h"

#define PROG "test-errors"

static int completion_calls, completion_err;

static int
completion_cb (void *user_data, int *error)
{
  (void) user_data;
  completion_calls++;
  completion_err = *error;
  return 0;
}

struct chunk_log { int calls, data, hole, error; int last_err; };

static int
chunk_cb (void *user_data, const void *subbuf, size_t count, uint64_t offset,
          unsigned status, int *error)
{
  struct chunk_log *l = user_data;
  (void) subbuf; (void) count; (void) offset;
  l->calls++;
  if (status == LIBNBD_READ_DATA) l->data++;
  if (status == LIBNBD_READ_HOLE) l->hole++;
  if (status == LIBNBD_READ_ERROR) l->error++;
  l->last_err = *error;
  return 0;
}

static int
extent_cb (void *user_data, const char *metacontext, uint64_t offset,
           uint32_t *entries, size_t nr_entries, int *error)
{
  int *calls = user_data;
  (void) metacontext; (void) offset; (void) entries; (void) nr_entries;
  (void) error;
  (*calls)++;
  return 0;
}

static void
test_error_filter (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=error", "memory", "1M",
                         "error-pread=EIO", "error-pread-rate=1",
                         "error-pwrite=ENOSPC", "error-pwrite-rate=1",
                         "error-trim=EPERM", "error-trim-rate=1",
                         "error-zero=EINVAL", "error-zero-rate=1",
                         "error-cache=ENOMEM", "error-cache-rate=1",
                         "error-extents=ESHUTDOWN", "error-extents-rate=1",
                         NULL };
  struct nbd_handle *h;
  static char buf[65536];
  int64_t c;
  int calls = 0;

  start_server (&s, argv);
  h = connect_server (&s, true);

  CHECK_FAILS (nbd_pread (h, buf, 4096, 0, 0), EIO, "nbd_pread",
               "command failed");
  CHECK_FAILS (nbd_pwrite (h, buf, 4096, 0, 0), ENOSPC, "nbd_pwrite",
               "command failed");
  CHECK_FAILS (nbd_trim (h, 4096, 0, 0), EPERM, "nbd_trim", "command failed");
  CHECK_FAILS (nbd_zero (h, 4096, 0, 0), EINVAL, "nbd_zero", "command failed");
  CHECK_FAILS (nbd_cache (h, 4096, 0, 0), ENOMEM, "nbd_cache", "command failed");
  CHECK_FAILS (nbd_block_status (h, 4096, 0,
                                 (nbd_extent_callback) { .callback = extent_cb,
                                                         .user_data = &calls },
                                 0),
               ESHUTDOWN, "nbd_block_status", "command failed");
  CHECK (calls == 0, "extent callback called %d times on error", calls);
  /* Flush has no error configured. */
  EXPECT_OK (nbd_flush (h, 0));
  CHECK (nbd_aio_is_ready (h) == 1, "connection not ready after errors");

  /* Large request error (the server reads and discards the payload). */
  CHECK_FAILS (nbd_pwrite (h, buf, sizeof buf, 65536, LIBNBD_CMD_FLAG_FUA),
               ENOSPC, "nbd_pwrite", NULL);
  CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 65536, 0), EIO, "nbd_pread", NULL);

  /* Structured read: a generic error (no offset) fails the command; the
   * chunk callback gets no data and, per libnbd, LIBNBD_READ_ERROR only
   * for errors tied to an offset (nbdkit sends NBD_REPLY_TYPE_ERROR).
   */
  {
    struct chunk_log l = { 0 };
    CHECK_FAILS (nbd_pread_structured (h, buf, 4096, 0,
                                       (nbd_chunk_callback) { .callback = chunk_cb,
                                                              .user_data = &l },
                                       0),
                 EIO, "nbd_pread_structured", "command failed");
    CHECK (l.data == 0 && l.hole == 0, "data %d hole %d chunks", l.data, l.hole);
    CHECK (l.error == 0,
           "chunk callback called with LIBNBD_READ_ERROR for a generic error "
           "chunk (%d times, error %d); libnbd only does that for "
           "NBD_REPLY_TYPE_ERROR_OFFSET", l.error, l.last_err);
  }

  /* aio: the completion callback sees the error; the command is
   * retired by nbd_aio_command_completed, which fails with it.
   */
  completion_calls = 0;
  c = nbd_aio_pread (h, buf, 4096, 0,
                     (nbd_completion_callback) { .callback = completion_cb }, 0);
  CHECK (c > 0, "aio_pread: %s", nbd_get_error ());
  EXPECT_OK (drain (h));
  CHECK (completion_calls == 1 && completion_err == EIO,
         "completion: %d calls, error %d", completion_calls, completion_err);
  CHECK (nbd_aio_peek_command_completed (h) == c, "peek");
  CHECK_FAILS (nbd_aio_command_completed (h, c), EIO,
               "nbd_aio_command_completed", "command failed");
  CHECK (nbd_aio_command_completed (h, c) == 0, "failed command not retired");
  CHECK_FAILS (nbd_aio_peek_command_completed (h), EINVAL,
               "nbd_aio_peek_command_completed", NULL);

  /* Several failing and succeeding commands mixed. */
  {
    int64_t ck[6];
    ck[0] = nbd_aio_pread (h, buf, 512, 0, NBD_NULL_COMPLETION, 0);
    ck[1] = nbd_aio_flush (h, NBD_NULL_COMPLETION, 0);
    ck[2] = nbd_aio_pwrite (h, buf, 512, 0, NBD_NULL_COMPLETION, 0);
    ck[3] = nbd_aio_flush (h, NBD_NULL_COMPLETION, 0);
    ck[4] = nbd_aio_trim (h, 512, 0, NBD_NULL_COMPLETION, 0);
    ck[5] = nbd_aio_cache (h, 512, 0, NBD_NULL_COMPLETION, 0);
    CHECK (nbd_aio_in_flight (h) == 6, "in flight %d", nbd_aio_in_flight (h));
    EXPECT_OK (drain (h));
    CHECK_FAILS (nbd_aio_command_completed (h, ck[0]), EIO,
                 "nbd_aio_command_completed", NULL);
    CHECK (nbd_aio_command_completed (h, ck[1]) == 1, "flush 1");
    CHECK_FAILS (nbd_aio_command_completed (h, ck[2]), ENOSPC,
                 "nbd_aio_command_completed", NULL);
    CHECK (nbd_aio_command_completed (h, ck[3]) == 1, "flush 2");
    CHECK_FAILS (nbd_aio_command_completed (h, ck[4]), EPERM,
                 "nbd_aio_command_completed", NULL);
    CHECK_FAILS (nbd_aio_command_completed (h, ck[5]), ENOMEM,
                 "nbd_aio_command_completed", NULL);
  }

  close_handle (h);
  stop_server (&s);
}

/* Simple replies (no structured replies): errors the same way. */
static void
test_error_simple (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=error", "memory", "1M",
                         "error-pread=ESHUTDOWN", "error-pread-rate=1",
                         NULL };
  struct nbd_handle *h;
  static char buf[4096];

  start_server (&s, argv);
  h = nbd_create ();
  EXPECT_OK (nbd_set_request_structured_replies (h, false));
  EXPECT_OK (nbd_connect_unix (h, s.sock));
  CHECK (nbd_get_structured_replies_negotiated (h) == 0, "sr negotiated");
  CHECK_FAILS (nbd_pread (h, buf, 4096, 0, 0), ESHUTDOWN, "nbd_pread",
               "command failed");
  /* The simple error reply has no payload: the stream stays in sync. */
  EXPECT_OK (nbd_pwrite (h, buf, 4096, 0, 0));
  CHECK_FAILS (nbd_pread (h, buf, 4096, 0, 0), ESHUTDOWN, "nbd_pread", NULL);
  EXPECT_OK (nbd_flush (h, 0));
  close_handle (h);
  stop_server (&s);
}

/* Slow reads: several in flight at once. */
static void
test_delay (void)
{
  struct server s;
  const char *argv[] = { "nbdkit", "-f", "-U", "$SOCK", "-P", "$PID",
                         "--filter=delay", "memory", "1M",
                         "delay-read=500ms", NULL };
  struct nbd_handle *h;
  enum { N = 8 };
  static char wbuf[N][4096], rbuf[N][4096];
  int64_t ck[N];
  double t0, t;

  start_server (&s, argv);
  h = connect_server (&s, false);
  for (int i = 0; i < N; i++) {
    memset (wbuf[i], 'a' + i, 4096);
    EXPECT_OK (nbd_pwrite (h, wbuf[i], 4096, i * 4096, 0));
  }
  t0 = monotonic_seconds ();
  for (int i = 0; i < N; i++) {
    memset (rbuf[i], 0, 4096);
    ck[i] = nbd_aio_pread (h, rbuf[i], 4096, (N - 1 - i) * 4096,
                           NBD_NULL_COMPLETION, 0);
    CHECK (ck[i] > 0, "aio_pread %d: %s", i, nbd_get_error ());
  }
  CHECK (nbd_aio_in_flight (h) == N, "in flight %d", nbd_aio_in_flight (h));
  /* A non-blocking poll completes nothing yet. */
  CHECK (nbd_poll (h, 0) >= 0, "poll 0: %s", nbd_get_error ());
  CHECK (nbd_aio_in_flight (h) == N, "in flight %d after poll 0",
         nbd_aio_in_flight (h));
  for (int i = 0; i < N; i++)
    CHECK (nbd_aio_command_completed (h, ck[i]) == 0, "%d completed early", i);
  /* A blocking call waits behind them. */
  EXPECT_OK (nbd_pread (h, rbuf[0], 4096, (N - 1) * 4096, 0));
  EXPECT_OK (drain (h));
  t = monotonic_seconds () - t0;
  printf ("%s: %d delayed reads + 1 blocking read took %.2fs\n", PROG, N, t);
  CHECK (t >= 0.45, "reads were not delayed (%.2fs)", t);
  CHECK (t < 4.4, "reads were not concurrent (%.2fs)", t);
  for (int i = 0; i < N; i++) {
    CHECK (nbd_aio_command_completed (h, ck[i]) == 1, "read %d", i);
    CHECK (memcmp (rbuf[i], wbuf[N - 1 - i], 4096) == 0, "read %d data", i);
  }
  close_handle (h);
  stop_server (&s);
}

int
main (void)
{
  static void (*const tests[]) (void) = {
    test_error_filter, test_error_simple, test_delay, NULL
  };

  return run_tests (PROG, tests);
}
